"""Stability of emotion vectors: do we get the same direction from different data?

All measures start from per-story mean activations at one layer (story tokens only), from which an emotion
vector is the mean of its stories minus the mean over the emotions present (the recipe's centring). With
``E`` emotions in the pool (the key vectors plus background emotions that set the centre):

- ``split_half``: the stories are split at random into two halves, by topic when the stories have topics (half
  the topics to each half, the same for every emotion, so topic effects cancel as in the crossed recipe; a split
  per emotion would give an emotion's halves different topics, and where topics outweigh emotions the halves'
  vectors would disagree for that reason alone); cosine between the vectors from each half, over ``n_splits``
  random splits (mean and percentile interval);
- ``split_half_null``: what split-half gives without emotion, as a permutation test: the emotion labels are
  shuffled within each topic (so topic structure and story counts stay as they are), ``n_splits`` times, and
  each shuffle's split-half is the mean over ``NULL_HALVINGS`` halvings, like the reported figure; split-half
  means something only above this null's 97.5th percentile (``high``); ``split_half_null_pooled`` is the same
  null for the mean split-half over the targets (per shuffle, the mean over targets), against which the mean is
  tested (it is narrower than each target's null when the targets' draws are not all alike);
- ``resample``: vectors from random subsamples (two thirds of the topics, or of each emotion's stories without
  topics; one subsample per seed); the mean pairwise cosine across seeds;
- ``template``: the same stories read inside other framings (a dialogue turn, a news report; only story
  tokens are read) against the plain story: cosine per framing, interval from bootstrapping stories;
- ``corpus``: any two corpora (e.g. stories against model-written dialogues): cosine of their vectors;
- ``readout_auc``: consistency of the readout on held-out stories: with vectors fitted on one half, the AUC
  with which an emotion's vector scores that emotion's held-out stories (on the other half's topics) above other
  emotions' stories.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from emovec.capture import FIRST_CONTENT_TOKEN, TokenSelection, capture
from emovec.corpus import Corpus
from emovec.errors import CorpusError
from emovec.metrics import Estimate, permuted_within, readout, stratified_indices
from emovec.models.loading import LoadedModel

TEMPLATES: dict[str, str] = {
    "story": "{story}",
    "dialogue": "A: You look like something happened. What's going on?\nB: {story}\nA: I see.",
    "report": "The following account was submitted to the local newspaper.\n\n{story}\n\n(End of account.)",
}

NULL_HALVINGS = 10  # halvings averaged per shuffle in the split-half null


@dataclass
class StoryActivations:
    """Per-story mean activations at one layer, per template. ``acts[template]``: ``[n_stories, d_model]``."""

    layer: int
    emotions: list[str]
    labels: np.ndarray  # [n_stories] index into emotions
    acts: dict[str, Tensor] = field(default_factory=dict)
    mean_norm: float = float("nan")  # mean residual norm of the plain stories' tokens at the layer
    topics: np.ndarray | None = None  # [n_stories] topic index: halves and subsamples split by topic


def story_activations(lm: LoadedModel, corpus: Corpus, emotions: Sequence[str], layer: int, *,
                      per_emotion: int = 6, max_length: int = 160,
                      templates: Mapping[str, str] | None = None, show_progress: bool = False) -> StoryActivations:
    """Capture each story's mean activation (story tokens only, never the sequence's first two positions: the
    attention sink would dominate the mean) under each template; ``show_progress`` reports each capture."""
    order = {t: i for i, t in enumerate(corpus.topics())}
    chosen = []
    for e in emotions:  # each emotion's stories on the corpus's first topics, so every emotion shares them
        stories = sorted((r for r in corpus.stories if r.emotion == e), key=lambda r: order[r.topic])[:per_emotion]
        if len(stories) < 4:
            raise CorpusError(f"emotion {e!r} has {len(stories)} stories in the corpus; stability needs at least 4")
        chosen += stories
    labels = np.array([list(emotions).index(str(r.emotion)) for r in chosen])
    topics = np.array([order[r.topic] for r in chosen])
    out = StoryActivations(layer, list(emotions), labels, topics=topics if len(set(topics)) > 1 else None)
    for name, template in (templates or {"story": "{story}"}).items():
        head = template.split("{story}")[0]
        texts = [template.format(story=r.text) for r in chosen]
        spans = [[(len(head), len(head) + len(r.text))] for r in chosen]
        res = capture(lm, texts, [layer], selection=TokenSelection.char_spans(FIRST_CONTENT_TOKEN), spans=spans,
                      max_length=max_length + len(lm.tokenizer(head)["input_ids"]) + 16, show_progress=show_progress,
                      detail=f"{len(emotions)} emotions x {per_emotion} stories, {name} framing, layer {layer}")
        out.acts[name] = res.means[:, 0]
        if name == "story":
            out.mean_norm = float(res.mean_norm[0])
    return out


def vectors_from(acts: Tensor, labels: np.ndarray, n_emotions: int, rows: np.ndarray | None = None) -> Tensor:
    """``[n_emotions, d]`` emotion means minus their mean, from the chosen story rows."""
    idx = np.arange(len(labels)) if rows is None else rows
    means = torch.stack([acts[idx[labels[idx] == e]].mean(0) for e in range(n_emotions)])
    return means - means.mean(0, keepdim=True)


def _cos(a: Tensor, b: Tensor) -> np.ndarray:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).numpy()


def _halves(labels: np.ndarray, n_emotions: int, rng: np.random.Generator,
            topics: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of the stories. With ``topics``, half the topics (drawn once, the same for every emotion) go to
    each half, so a topic's effect cannot differ between an emotion's halves: split per emotion, an emotion's
    halves would cover different topics, and where topics outweigh emotions the two vectors would point apart
    for that reason alone. An emotion with stories in only one half of the topics is split at random."""
    kept = set(rng.permutation(np.unique(topics))[: len(np.unique(topics)) // 2]) if topics is not None else set()
    a, b = [], []
    for e in range(n_emotions):
        rows = rng.permutation(np.flatnonzero(labels == e))
        if topics is not None:
            first = np.array([r for r in rows if topics[r] in kept], dtype=int)
            second = np.array([r for r in rows if topics[r] not in kept], dtype=int)
            if len(first) and len(second):
                a += list(first)
                b += list(second)
                continue
        a += list(rows[: len(rows) // 2])
        b += list(rows[len(rows) // 2:])
    return np.array(a), np.array(b)


def _subsample(labels: np.ndarray, n_emotions: int, rng: np.random.Generator,
               topics: np.ndarray | None = None) -> np.ndarray:
    """Two thirds of the stories: of the topics (the same for every emotion) when ``topics`` are given, else of
    each emotion's stories; an emotion left with no story keeps a random two thirds of its own."""
    chosen = None
    if topics is not None:
        unique = np.unique(topics)
        chosen = set(rng.choice(unique, size=max(2, (2 * len(unique)) // 3), replace=False))
    rows: list[int] = []
    for e in range(n_emotions):
        mine = np.flatnonzero(labels == e)
        picked = [int(r) for r in mine if topics is not None and chosen is not None and topics[r] in chosen]
        rows += picked or [int(r) for r in rng.choice(mine, size=max(2, (2 * len(mine)) // 3), replace=False)]
    return np.array(rows)


def _spread(samples: np.ndarray, what: str) -> Estimate:
    """Mean of per-draw values (random splits or seeds) with their 2.5-97.5% spread."""
    return Estimate.from_draws(float(np.nanmean(samples)) if np.isfinite(samples).any() else float("nan"),
                               samples, int(np.isfinite(samples).sum()), f"mean and spread over {what}")


@dataclass
class StabilityResult:
    """Per emotion name: each measure as an ``Estimate``."""

    split_half: dict[str, Estimate]
    resample: dict[str, Estimate]
    template: dict[str, dict[str, Estimate]]  # framing -> emotion -> estimate
    readout_auc: dict[str, Estimate]
    genre: dict[str, Estimate] | None = None  # stories vs another genre (corpus_stability), when measured
    split_half_null: dict[str, Estimate] | None = None  # labels shuffled within topics (absent in old results)
    split_half_null_pooled: Estimate | None = None  # the null of the mean split-half over the targets

    def as_dict(self) -> dict[str, object]:
        return {"split_half": {k: v.as_dict() for k, v in self.split_half.items()},
                "resample": {k: v.as_dict() for k, v in self.resample.items()},
                "template": {t: {k: v.as_dict() for k, v in d.items()} for t, d in self.template.items()},
                "readout_auc": {k: v.as_dict() for k, v in self.readout_auc.items()},
                "genre": None if self.genre is None else {k: v.as_dict() for k, v in self.genre.items()},
                "split_half_null": None if self.split_half_null is None
                else {k: v.as_dict() for k, v in self.split_half_null.items()},
                "split_half_null_pooled": None if self.split_half_null_pooled is None
                else self.split_half_null_pooled.as_dict()}


def _halvings(sa: StoryActivations, cols: list[int], n_splits: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per random halving: the two halves' cosine per target, and the held-out readout AUC per target (vectors
    and centre from half a, stories of half b)."""
    n_e, base = len(sa.emotions), sa.acts["story"]
    halves, aucs = [], []
    for _ in range(n_splits):
        a, b = _halves(sa.labels, n_e, rng, sa.topics)
        va, vb = vectors_from(base, sa.labels, n_e, a), vectors_from(base, sa.labels, n_e, b)
        halves.append(_cos(va, vb)[cols])
        centre = torch.stack([base[a[sa.labels[a] == e]].mean(0) for e in range(n_e)]).mean(0)
        scores = readout(base[b], torch.nn.functional.normalize(va, dim=-1), centre).numpy()
        row = []
        for c in cols:
            truth = sa.labels[b] == c
            row.append(roc_auc_score(truth, scores[:, c]) if 0 < truth.sum() < len(b) else np.nan)
        aucs.append(row)
    return np.array(halves), np.array(aucs)


def _null(sa: StoryActivations, cols: list[int], n_splits: int, seed: int) -> np.ndarray:
    """Split-half with the labels shuffled within topics: one shuffle per draw, each draw the mean over
    ``NULL_HALVINGS`` halvings (as the reported figure is), on a stream of its own so the other draws stay put."""
    n_e, base = len(sa.emotions), sa.acts["story"]
    null, null_rng = [], np.random.default_rng([seed, 1])
    for _ in range(n_splits):
        shuffled = permuted_within(sa.labels, sa.topics, null_rng)
        draws = []
        for _ in range(NULL_HALVINGS):
            a, b = _halves(shuffled, n_e, null_rng, sa.topics)
            draws.append(_cos(vectors_from(base, shuffled, n_e, a), vectors_from(base, shuffled, n_e, b))[cols])
        null.append(np.mean(draws, axis=0))
    return np.array(null)


def _templates(sa: StoryActivations, targets: Sequence[str], cols: list[int], n_splits: int,
               rng: np.random.Generator) -> dict[str, dict[str, Estimate]]:
    """Per other framing: each target's cosine to the plain stories' vector, bootstrapping stories."""
    n_e, base = len(sa.emotions), sa.acts["story"]
    full = vectors_from(base, sa.labels, n_e)
    template: dict[str, dict[str, Estimate]] = {}
    for name, acts in sa.acts.items():
        if name == "story":
            continue
        boots = []
        for _ in range(n_splits):
            rows = stratified_indices(sa.labels, rng)
            boots.append(_cos(vectors_from(base, sa.labels, n_e, rows), vectors_from(acts, sa.labels, n_e, rows))[cols])
        point = _cos(full, vectors_from(acts, sa.labels, n_e))[cols]
        arr = np.array(boots)
        template[name] = {t: Estimate.from_draws(float(point[k]), arr[:, k], len(arr),
                                                 "percentile bootstrap over stories within each emotion")
                          for k, t in enumerate(targets)}
    return template


def measure_stability(sa: StoryActivations, targets: Sequence[str], *, n_splits: int = 50, n_seeds: int = 10,
                      seed: int = 0) -> StabilityResult:
    """Every stability measure for the ``targets`` among ``sa.emotions`` (see module docs).

    Example:
        >>> res = measure_stability(story_activations(lm, corpus, emotions, 12), ["calm", "afraid"])
    """
    missing = [t for t in targets if t not in sa.emotions]
    if missing:
        raise KeyError(f"{missing[0]!r} is not among the captured emotions {sa.emotions}")
    if n_splits < 10 or n_seeds < 3:
        raise ValueError("intervals need at least 10 splits and 3 seeds")
    rng = np.random.default_rng(seed)
    n_e, base = len(sa.emotions), sa.acts["story"]
    cols = [sa.emotions.index(t) for t in targets]
    h, au = _halvings(sa, cols, n_splits, rng)
    nu = _null(sa, cols, n_splits, seed)
    subs = [vectors_from(base, sa.labels, n_e, _subsample(sa.labels, n_e, rng, sa.topics)) for _ in range(n_seeds)]
    pair = np.array([_cos(subs[i], subs[j])[cols] for i in range(n_seeds) for j in range(i + 1, n_seeds)])
    template = _templates(sa, targets, cols, n_splits, rng)
    return StabilityResult(
        split_half={t: _spread(h[:, k], f"{n_splits} random halvings") for k, t in enumerate(targets)},
        resample={t: _spread(pair[:, k], f"{len(pair)} seed pairs") for k, t in enumerate(targets)},
        template=template,
        readout_auc={t: _spread(au[:, k], f"{n_splits} random halvings") for k, t in enumerate(targets)},
        split_half_null={t: _spread(nu[:, k], f"{n_splits} shuffles of the labels within topics, "
                                              f"{NULL_HALVINGS} halvings each")
                         for k, t in enumerate(targets)},
        split_half_null_pooled=_spread(nu.mean(1), f"{n_splits} shuffles of the labels within topics, mean over "
                                                   f"the {len(targets)} targets"),
    )


def corpus_stability(lm: LoadedModel, a: Corpus, b: Corpus, emotions: Sequence[str], layer: int, *,
                     targets: Sequence[str] | None = None, per_emotion: int = 6, n_boot: int = 200,
                     seed: int = 0) -> dict[str, Estimate]:
    """Cosine per emotion between vectors from two corpora (e.g. stories and model-written dialogues, see
    ``emovec stories --genre dialogue``) at ``layer``; the interval resamples each corpus's texts."""
    sa = story_activations(lm, a, emotions, layer, per_emotion=per_emotion)
    sb = story_activations(lm, b, emotions, layer, per_emotion=per_emotion)
    n_e = len(emotions)
    cols = [list(emotions).index(t) for t in (targets or emotions)]
    point = _cos(vectors_from(sa.acts["story"], sa.labels, n_e), vectors_from(sb.acts["story"], sb.labels, n_e))
    rng = np.random.default_rng(seed)
    boots = np.array([_cos(vectors_from(sa.acts["story"], sa.labels, n_e, stratified_indices(sa.labels, rng)),
                           vectors_from(sb.acts["story"], sb.labels, n_e, stratified_indices(sb.labels, rng)))
                      for _ in range(n_boot)])
    return {emotions[c]: Estimate.from_draws(float(point[c]), boots[:, c], n_boot,
                                             "percentile bootstrap over each corpus's texts within each emotion")
            for c in cols}
