"""Cross-validation of emotion vectors by held-out topics, with a label-permutation baseline.

Every story is classified once, by vectors fitted on stories of other topics only, so neither the story nor
anything written about its topic was seen in the fit. A story's scores come from a *readout*: ``projection``
(the centred activation projected on each unit direction, as monitoring does) or ``lda`` (shrinkage linear
discriminant: the directions whitened by the Ledoit-Wolf within-emotion covariance, which discounts directions
that vary with topic and length rather than emotion). The steering vectors are always the mean-difference
directions; the readout only changes how a text is scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.covariance import ledoit_wolf
from torch import Tensor

from emovec.vectors.design import emotion_effects
from emovec.vectors.extract import project_out

Readout = Literal["projection", "lda"]
READOUTS: tuple[Readout, ...] = ("projection", "lda")


@dataclass(frozen=True)
class Recipe:
    """How vectors are fitted and read in cross-validation (and in extraction)."""

    topic_removal: bool = True
    readout: Readout = "projection"


@dataclass(frozen=True)
class Scorer:
    """A fitted readout at one layer: ``scores = acts @ weight.T + bias`` (``[n, E]``)."""

    weight: Tensor
    bias: Tensor

    def scores(self, acts: Tensor) -> Tensor:
        return acts.float() @ self.weight.T + self.bias


def fit_scorer(acts: Tensor, emotion_codes: Tensor, topic_codes: Tensor | None, n_emotions: int,
               basis: Tensor | None, readout: Readout) -> Scorer:
    """Fit emotion directions on ``acts`` ``[n, d]`` (one layer) and a readout for them.

    Args:
        acts: per-story activations.
        emotion_codes: ``[n]`` emotion index of each story (every index below ``n_emotions`` present).
        topic_codes: ``[n]`` topic index of each story, or ``None`` for no topic removal.
        n_emotions: number of emotions.
        basis: ``[k, d]`` orthonormal neutral-text directions projected out of the directions, or ``None``.
        readout: ``projection`` or ``lda``.
    """
    emo = [str(int(c)) for c in emotion_codes]
    top = [str(int(c)) for c in topic_codes] if topic_codes is not None else None
    names, effects, centre = emotion_effects(acts, emo, top)
    order = torch.tensor([int(n) for n in names]).argsort()
    effects = effects[order]
    if len(names) != n_emotions:
        raise ValueError(f"the fitting stories cover {len(names)} of {n_emotions} emotions")
    directions = project_out(effects, basis) if basis is not None else effects
    if readout == "projection":
        weight = torch.nn.functional.normalize(directions, dim=-1)
        return Scorer(weight, -(weight @ centre))
    # Within-emotion scatter (topic variation included, so the readout learns to discount it).
    resid = acts.double().clone()
    means = torch.zeros(n_emotions, acts.shape[1], dtype=torch.float64).index_add_(0, emotion_codes, resid)
    means /= torch.bincount(emotion_codes, minlength=n_emotions).clamp_min(1)[:, None]
    resid = resid - means[emotion_codes]
    cov, _ = ledoit_wolf(resid.numpy(), assume_centered=True)
    precision = torch.from_numpy(np.linalg.inv(cov)).float()
    weight = directions @ precision
    bias = -(weight @ centre) - 0.5 * (weight * directions).sum(-1)
    return Scorer(weight, bias)


def topic_folds(topics: Sequence[str], n_folds: int) -> list[NDArray[np.int64]]:
    """Test indices of each fold: topics in first-seen order are dealt round-robin to ``n_folds`` folds."""
    order = list(dict.fromkeys(topics))
    if len(order) < 2:
        raise ValueError("cross-validation by topic needs stories from at least 2 topics")
    k = min(n_folds, len(order))
    fold_of = {t: i % k for i, t in enumerate(order)}
    labels = np.array([fold_of[t] for t in topics])
    return [np.flatnonzero(labels == f) for f in range(k)]


def _codes(labels: Sequence[str], names: Sequence[str]) -> Tensor:
    index = {n: i for i, n in enumerate(names)}
    return torch.tensor([index[x] for x in labels])


def ranks_of_truth(scores: Tensor, truth: Tensor) -> Tensor:
    """1-based rank of the true emotion's score in each row (ties count against the truth)."""
    own = scores.gather(1, truth[:, None])
    return (scores >= own).sum(1)


def cross_validated_ranks(
    acts: Tensor,
    emotions: Sequence[str],
    topics: Sequence[str],
    bases: Sequence[Tensor | None],
    recipe: Recipe,
    *,
    n_folds: int = 6,
    fit_index: NDArray[np.int64] | None = None,
    on_fold: Callable[[int], None] | None = None,
) -> Tensor:
    """Rank of the true emotion for every story, each scored by vectors fitted without its topic.

    Args:
        acts: ``[n, L, d]`` per-story activations.
        emotions: the emotion label of each story.
        topics: the topic label of each story.
        bases: per layer, the neutral directions to project out (or ``None``).
        recipe: topic removal on/off and the readout.
        n_folds: topics are dealt to this many folds.
        fit_index: restrict to these stories (for nested selection); ranks are returned for them only.
        on_fold: called with 1 after each fold (progress).

    Returns:
        ``[L, n]`` int ranks (1 = the true emotion scored highest).
    """
    idx = np.arange(len(emotions)) if fit_index is None else fit_index
    names = sorted(set(emotions))
    e_all = _codes(emotions, names)
    t_all = _codes(topics, sorted(set(topics)))
    sub_topics = [topics[i] for i in idx]
    ranks = torch.zeros(acts.shape[1], len(idx), dtype=torch.long)
    for test in topic_folds(sub_topics, n_folds):
        train = np.setdiff1d(np.arange(len(idx)), test)
        tr, te = torch.from_numpy(idx[train]), torch.from_numpy(idx[test])
        e_tr = e_all[tr]
        present = torch.unique(e_tr)
        if len(present) < len(names):
            raise ValueError("a fold leaves some emotion with no fitting story; use fewer folds")
        for j in range(acts.shape[1]):
            scorer = fit_scorer(acts[tr, j], e_tr, t_all[tr] if recipe.topic_removal else None, len(names),
                                bases[j], recipe.readout)
            ranks[j, torch.from_numpy(test)] = ranks_of_truth(scorer.scores(acts[te, j]), e_all[te])
        if on_fold is not None:
            on_fold(1)
    return ranks


def nested_layer_choice(
    acts: Tensor,
    emotions: Sequence[str],
    topics: Sequence[str],
    bases: Sequence[Tensor | None],
    recipe: Recipe,
    candidates: Sequence[int],
    *,
    n_folds: int = 6,
    on_fold: Callable[[int], None] | None = None,
) -> tuple[Tensor, list[int]]:
    """Ranks of every story at a layer chosen *without* its topic: an unbiased figure for 'the best layer'.

    For each outer fold, the layer is chosen by inner cross-validation on the other folds' stories (highest
    top-5, ties by mean rank) among ``candidates`` (positions in the layer axis), then the outer fold is scored
    at that layer. ``on_fold`` is called with 1 after each outer fold (progress).

    Returns:
        ``(ranks [n], chosen position per outer fold)``.
    """
    out = torch.zeros(len(emotions), dtype=torch.long)
    chosen: list[int] = []
    names = sorted(set(emotions))
    e_all = _codes(emotions, names)
    t_all = _codes(topics, sorted(set(topics)))
    for test in topic_folds(topics, n_folds):
        train = np.setdiff1d(np.arange(len(emotions)), test)
        sub = acts[:, list(candidates)]
        inner = cross_validated_ranks(sub, emotions, topics, [bases[c] for c in candidates], recipe,
                                      n_folds=n_folds - 1, fit_index=train)
        top5 = (inner <= 5).float().mean(1)
        mean_rank = inner.float().mean(1)
        best = max(range(len(candidates)), key=lambda i: (round(float(top5[i]), 6), -float(mean_rank[i])))
        j = candidates[best]
        chosen.append(j)
        tr, te = torch.from_numpy(train), torch.from_numpy(test)
        scorer = fit_scorer(acts[tr, j], e_all[tr], t_all[tr] if recipe.topic_removal else None, len(names),
                            bases[j], recipe.readout)
        out[te] = ranks_of_truth(scorer.scores(acts[te, j]), e_all[te])
        if on_fold is not None:
            on_fold(1)
    return out, chosen


def permuted_labels(emotions: Sequence[str], topics: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Emotion labels shuffled within each topic (the design is kept; the emotion-text link is broken)."""
    out = list(emotions)
    by_topic: dict[str, list[int]] = {}
    for i, t in enumerate(topics):
        by_topic.setdefault(t, []).append(i)
    for rows in by_topic.values():
        labels = [emotions[i] for i in rows]
        rng.shuffle(labels)
        for i, lab in zip(rows, labels, strict=True):
            out[i] = lab
    return out


def permutation_baseline(
    acts: Tensor,
    emotions: Sequence[str],
    topics: Sequence[str],
    basis: Tensor | None,
    recipe: Recipe,
    *,
    n_permutations: int = 100,
    n_folds: int = 6,
    seed: int = 0,
    on_permutation: Callable[[int], None] | None = None,
) -> NDArray[np.float64]:
    """Top-1, top-5 and mean rank ``[n_permutations, 3]`` of the same cross-validation on shuffled labels.

    Args:
        acts: ``[n, d]`` activations at one layer.
        on_permutation: called with 1 after each permutation (progress).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_permutations):
        shuffled = permuted_labels(emotions, topics, rng)
        ranks = cross_validated_ranks(acts[:, None], shuffled, topics, [basis], recipe, n_folds=n_folds)[0]
        rows.append([float((ranks == 1).float().mean()), float((ranks <= 5).float().mean()),
                     float(ranks.float().mean())])
        if on_permutation is not None:
            on_permutation(1)
    return np.asarray(rows)
