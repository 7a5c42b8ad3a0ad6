"""``validate``: every figure of ``emovec inspect``, computed from activations of the model the vectors came from.

Classification is cross-validated by held-out topic: vectors are refitted without each fold's topics by the
same recipe and score that fold's stories, so every story is classified once by vectors that never saw its
topic. The headline figure comes from nested cross-validation (the layer is chosen without the scored fold);
the per-layer curve shows every layer; a label-permutation baseline shows what a shuffled corpus scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from torch import Tensor

from emovec._files import sha256_of
from emovec._progress import stage
from emovec.capture import FIRST_CONTENT_TOKEN, TokenSelection, capture, embedding_means, readable
from emovec.corpus import load_corpus
from emovec.errors import CorpusError
from emovec.metrics import Estimate, cluster_bootstrap, percentile, readout
from emovec.models.loading import LoadedModel
from emovec.validation.crossval import (
    Readout,
    Recipe,
    cross_validated_ranks,
    nested_layer_choice,
    permutation_baseline,
)
from emovec.validation.diagnostic import PairCosines, pair_cosines
from emovec.validation.external import (
    ExternalDataMissing,
    SubsetValence,
    ValenceAxis,
    correlate_subsets,
    nrc_polarity,
    sample_snippets,
    vader_compound,
    vader_snippets,
    valence_axis,
)
from emovec.validation.geometry import ImplicitResult, implicit_emotion, logit_lens, pca_geometry
from emovec.validation.identity import IdentityFigures, identity_figures
from emovec.validation.text_baseline import TextBaseline, text_baseline
from emovec.validation.valence_probe import ValenceProbe, held_out, valence_probe
from emovec.vectors.extract import LabeledActivations, extract_emotion_vectors, long_enough, neutral_subspace
from emovec.vectors.story_cache import load_stories, tensors_hash
from emovec.vectors.vector_set import VectorSet

SNIPPET_TOKEN_START = FIRST_CONTENT_TOKEN


class LayerCV(BaseModel):
    """Topic-held-out classification of every story at one layer (intervals: bootstrap over topics)."""

    layer: int
    top1: Estimate
    top5: Estimate
    mean_rank: Estimate


class NestedCV(BaseModel):
    """Topic-held-out classification at a layer chosen without the scored topics (the unbiased headline)."""

    top1: Estimate
    top5: Estimate
    mean_rank: Estimate
    chosen_layers: list[int]


class PermutationBaseline(BaseModel):
    """The same cross-validation with emotion labels shuffled within topics, at the recommended layer."""

    layer: int
    n_permutations: int
    top1_mean: float
    top1_p99: float
    top5_mean: float
    top5_p99: float
    mean_rank_mean: float
    mean_rank_p01: float


class ExternalChecks(BaseModel):
    """Valence on human-rated text (VADER snippets) and human word labels (NRC EmoLex)."""

    axis: ValenceAxis | None = None
    probe: ValenceProbe | None = None
    subsets: list[SubsetValence] = []
    sources: list[str] = []
    skipped: list[str] = []


class ValidationReport(BaseModel):
    """All figures of ``emovec inspect``."""

    model: str
    layers: list[int]
    n_emotions: int
    n_stories: int
    n_topics: int
    n_folds: int
    recipe: dict[str, object]
    chance_top1: float
    chance_top5: float
    chance_mean_rank: float
    recommended_layer: int
    cv: list[LayerCV]
    nested: NestedCV | None
    permutation: PermutationBaseline | None
    diagnostic: list[PairCosines]
    text_baseline: TextBaseline | None = None
    text_baseline_skipped: str | None = None
    pca_explained: list[float]
    pca_coords: dict[str, tuple[float, float]]
    pc1_top: list[str]
    pc1_bottom: list[str]
    pc2_top: list[str]
    pc2_bottom: list[str]
    nearest: dict[str, list[tuple[str, float]]]
    implicit: ImplicitResult | None
    logit_lens: dict[str, list[str]]
    logit_lens_suppressed: dict[str, list[str]]
    external: ExternalChecks
    identity: IdentityFigures | None = None
    provenance: dict[str, object]

    def cv_at(self, layer: int) -> LayerCV:
        return next(c for c in self.cv if c.layer == layer)


def stories_from_corpus(lm: LoadedModel, vectors: VectorSet, show_progress: bool = False) -> tuple[
        LabeledActivations, list[Tensor | None]]:
    """Re-read every story (and the neutral texts) a set was fitted on, with the settings its provenance records."""
    info = vectors.provenance.corpus
    if info is None:
        raise CorpusError("this vector set records no story corpus; validate it with the activations from extraction")
    params = vectors.provenance.method_params
    max_length = params.get("max_length")
    denoise = params.get("denoise_variance")
    ext = extract_emotion_vectors(
        lm, load_corpus(info.path), layers=list(vectors.layers), token_start=vectors.provenance.token_selection.start,
        denoise_variance=float(denoise) if isinstance(denoise, float) else None,
        topic_removal=bool(params.get("topic_removal", False)), show_progress=show_progress,
        stories_per_emotion=info.stories_per_emotion, topics=info.topics_limit, neutral_limit=info.neutral_limit,
        max_length=int(max_length) if isinstance(max_length, int) else None, skip_short=bool(params.get("skip_short")),
    )
    return ext.stories, ext.bases


def _embedding_inputs(lm: LoadedModel, vectors: VectorSet, labels: Sequence[str]) -> tuple[
        Tensor | None, Tensor | None]:
    """Per-story means of the input embeddings for the embedding-layer null (the stories the activations hold, in
    their order) and the neutral texts' basis; ``(None, None)`` when the corpus cannot be read back unchanged."""
    info = vectors.provenance.corpus
    if info is None:
        return None, None
    try:
        if sha256_of([info.path]) != info.sha256:
            return None, None
        corpus = load_corpus(info.path)
    except (CorpusError, OSError):
        return None, None
    if any(x is not None for x in (info.stories_per_emotion, info.neutral_limit, info.topics_limit)):
        corpus = corpus.subset(info.stories_per_emotion, info.neutral_limit, info.topics_limit)  # as extraction did
    params = vectors.provenance.method_params
    start = vectors.provenance.token_selection.start
    limit = params.get("max_length")
    max_length = limit if isinstance(limit, int) else None
    stories = long_enough(lm, corpus.stories, start, max_length)
    if [str(r.emotion) for r in stories] != list(labels):
        return None, None
    acts = embedding_means(lm, [r.text for r in stories], token_start=start, max_length=max_length)
    denoise = params.get("denoise_variance")
    neutral = long_enough(lm, corpus.neutral, start, max_length)
    if not isinstance(denoise, float) or len(neutral) < 2:
        return acts, None
    n_acts = embedding_means(lm, [r.text for r in neutral], token_start=start, max_length=max_length)
    return acts, neutral_subspace(n_acts, denoise)[0]


def _estimates(ranks: Tensor, topics: Sequence[str], n_resamples: int, seed: int) -> tuple[Estimate, ...]:
    r = ranks.numpy().astype(np.float64)
    return tuple(cluster_bootstrap(v, topics, n_resamples=n_resamples, seed=seed)
                 for v in ((r == 1).astype(float), (r <= 5).astype(float), r))


def _text_baseline(vectors: VectorSet, n_folds: int, n_resamples: int, seed: int) -> tuple[
        TextBaseline | None, str | None]:
    """The word classifier on the stories the set was fitted on, read back from its recorded corpus."""
    info = vectors.provenance.corpus
    if info is None:
        return None, "the vector set records no story corpus"
    try:
        if sha256_of([info.path]) != info.sha256:
            return None, f"the corpus file {info.path} changed since the vectors were fitted"
        corpus = load_corpus(info.path).subset(info.stories_per_emotion, info.neutral_limit, info.topics_limit)
    except (CorpusError, OSError) as exc:
        return None, f"the corpus {info.path} could not be read ({exc})"
    names = set(vectors.names)
    stories = [r for r in corpus.stories if r.emotion in names]
    try:
        return text_baseline([r.text for r in stories], [str(r.emotion) for r in stories],
                             [r.topic for r in stories], n_folds=n_folds, n_resamples=n_resamples, seed=seed), None
    except CorpusError as exc:
        return None, str(exc)


def _probe(story_acts: Tensor, labels: Sequence[str], polarity: dict[str, int], layer: int,
           checks: ExternalChecks) -> np.ndarray | None:
    try:
        checks.probe, weights = valence_probe(story_acts, labels, polarity, layer)
    except ValueError as exc:
        checks.skipped.append(f"valence probe: {exc}")
        return None
    return weights


def _external(lm: LoadedModel, vectors: VectorSet, layer: int, per_subset: int | None, seed: int,
              story_acts: Tensor, story_labels: Sequence[str], show_progress: bool = False) -> ExternalChecks:
    checks = ExternalChecks()
    j = vectors.layer_index(layer)
    try:
        polarity = nrc_polarity()
        axis_summary, axis = valence_axis(vectors.directions[j], vectors.names, layer, polarity)
        checks.axis = axis_summary
        checks.sources.append(f"NRC EmoLex (nrclex package, MIT): {len(polarity)} words with one polarity; "
                              f"{axis_summary.n_positive} positive, {axis_summary.n_negative} negative emotion words")
    except (ExternalDataMissing, ValueError) as exc:
        checks.skipped.append(f"valence axis: {exc}")
        return checks
    try:
        snippets = sample_snippets(held_out(vader_snippets()), per_subset, seed)
    except ExternalDataMissing as exc:
        checks.skipped.append(f"sentence valence: {exc}")
        return checks
    checks.sources.append(
        f"VADER snippets (vadersentiment 3.3.2 source archive, hutto_ICWSM_2014, MIT): {len(snippets)} read of "
        f"{len(vader_snippets())}, the probe's development sample left out"
        + (f" ({per_subset} sampled per subset, seed {seed})" if per_subset else "")
    )
    weights = _probe(story_acts, story_labels, polarity, layer, checks)
    # The first tokens of every text carry the model's attention-sink activations (norms far above the rest),
    # which swamp a mean over a 20-token snippet; they are skipped (measured: docs/results/recipe.md).
    snippets = [s for s, ok in zip(snippets, readable(lm, [s.text for s in snippets], SNIPPET_TOKEN_START),
                                   strict=True) if ok]
    res = capture(lm, [s.text for s in snippets], [layer], selection=TokenSelection.from_index(SNIPPET_TOKEN_START),
                  show_progress=show_progress, description="validate/human-rated text",
                  detail=f"VADER snippets at layer {layer}")
    centre = vectors.center[j] if vectors.center is not None else res.means[:, 0].mean(0)
    gen = torch.Generator().manual_seed(seed)
    rand = torch.nn.functional.normalize(torch.randn(res.means.shape[-1], 100, generator=gen), dim=0).T
    vader = vader_compound([s.text for s in snippets])
    checks.subsets = correlate_subsets(snippets, readout(res.means[:, 0], axis, centre).numpy(),
                                       readout(res.means[:, 0], rand, centre).numpy(), vader,
                                       None if weights is None else res.means[:, 0].double().numpy() @ weights)
    return checks


def _stories_for(lm: LoadedModel, vectors: VectorSet, stories: LabeledActivations | None,
                 bases: Sequence[Tensor | None] | None, cache_dir: str | Path | None,
                 show_progress: bool) -> tuple[LabeledActivations, list[Tensor | None]]:
    """The stories' activations and neutral bases: as given, from the vector set's cache, or read again; they must
    cover at least 3 topics."""
    if stories is None and cache_dir is not None:
        cached = load_stories(cache_dir, tensors_hash(cache_dir))
        if cached is not None:
            stories, bases = cached
    if stories is None:
        stories, bases = stories_from_corpus(lm, vectors, show_progress)
    if stories.topics is None or len(stories.labels) == 0:
        raise CorpusError("validation needs every story's activations with its topic (from extraction)")
    n_topics = len(set(stories.topics))
    if n_topics < 3:
        raise CorpusError(f"the stories cover {n_topics} topics; cross-validation by held-out topic needs at least 3")
    return stories, list(bases) if bases is not None else [None] * len(stories.layers)


def _layer_cv(stories: LabeledActivations, layer_bases: list[Tensor | None], recipe: Recipe, folds: int,
              n_resamples: int, seed: int, show_progress: bool) -> tuple[list[LayerCV], list[int], int]:
    """Topic-held-out cross-validation at every layer, the layers a recommendation may pick (never the first
    block's output when deeper layers were read) and the best of them."""
    assert stories.topics is not None
    topics = stories.topics
    what = f"{len(stories.labels)} stories, {len(set(topics))} topics, {len(stories.layers)} layers"
    with stage("validate/cross-validation", folds, unit="folds", detail=what, show=show_progress) as advance:
        ranks = cross_validated_ranks(stories.acts, stories.labels, topics, layer_bases, recipe, n_folds=folds,
                                      on_fold=advance)
    cv = []
    for j, layer in enumerate(stories.layers):
        top1, top5, mean_rank = _estimates(ranks[j], topics, n_resamples // 2, seed)
        cv.append(LayerCV(layer=layer, top1=top1, top5=top5, mean_rank=mean_rank))
    candidates = [j for j, layer in enumerate(stories.layers) if layer > 0] or list(range(len(stories.layers)))
    best = max(candidates, key=lambda j: (round(cv[j].top5.value, 6), -cv[j].mean_rank.value))
    return cv, candidates, best


def _nested(stories: LabeledActivations, layer_bases: list[Tensor | None], recipe: Recipe, candidates: list[int],
            folds: int, n_resamples: int, seed: int, show_progress: bool) -> NestedCV:
    """The headline figure with the layer chosen inside cross-validation (unbiased by the choice)."""
    assert stories.topics is not None
    with stage("validate/nested layer choice", folds, unit="folds", detail=f"{len(candidates)} layers",
               show=show_progress) as advance:
        nested_ranks, chosen = nested_layer_choice(stories.acts, stories.labels, stories.topics, layer_bases, recipe,
                                                   candidates, n_folds=folds, on_fold=advance)
    n1, n5, nr = _estimates(nested_ranks, stories.topics, n_resamples, seed)
    return NestedCV(top1=n1, top5=n5, mean_rank=nr, chosen_layers=[stories.layers[c] for c in chosen])


def _permutations(stories: LabeledActivations, best: int, basis: Tensor | None, recipe: Recipe,
                  n_permutations: int, folds: int, seed: int, show_progress: bool) -> PermutationBaseline:
    """Cross-validation at the recommended layer with the labels permuted: what chance gives."""
    assert stories.topics is not None
    layer = stories.layers[best]
    with stage("validate/permutations", n_permutations, unit="permutations", detail=f"layer {layer}",
               show=show_progress) as advance:
        table = permutation_baseline(stories.acts[:, best], stories.labels, stories.topics, basis, recipe,
                                     n_permutations=n_permutations, n_folds=folds, seed=seed,
                                     on_permutation=advance)
    return PermutationBaseline(
        layer=layer, n_permutations=n_permutations, top1_mean=float(table[:, 0].mean()),
        top1_p99=percentile(table[:, 0], 99), top5_mean=float(table[:, 1].mean()),
        top5_p99=percentile(table[:, 1], 99), mean_rank_mean=float(table[:, 2].mean()),
        mean_rank_p01=percentile(table[:, 2], 1),
    )


def _identity(lm: LoadedModel, vectors: VectorSet, stories: LabeledActivations, best: int, basis: Tensor | None,
              recipe: Recipe, folds: int, n_resamples: int, seed: int,
              show_progress: bool) -> tuple[TextBaseline | None, str | None, IdentityFigures]:
    """The word baseline, the input-embedding and group identity checks at the recommended layer."""
    assert stories.topics is not None
    with stage("validate/identity checks", 3, unit="checks", detail="word baseline, input embeddings, groups",
               show=show_progress) as advance:
        words, words_skipped = _text_baseline(vectors, folds, n_resamples, seed)
        advance()
        emb_acts, emb_basis = _embedding_inputs(lm, vectors, stories.labels)
        advance()
        identity = identity_figures(stories.acts[:, best], stories.labels, stories.topics, basis, recipe,
                                    stories.layers[best], embedding_acts=emb_acts, embedding_basis=emb_basis,
                                    n_folds=folds, n_resamples=n_resamples // 2, seed=seed)
        advance()
    return words, words_skipped, identity


def validate(
    lm: LoadedModel,
    vectors: VectorSet,
    stories: LabeledActivations | None = None,
    bases: Sequence[Tensor | None] | None = None,
    *,
    readout: Readout = "projection",
    n_folds: int = 6,
    n_permutations: int = 100,
    nested: bool = True,
    snippets_per_subset: int | None = None,
    external: bool = True,
    n_resamples: int = 1000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    show_progress: bool = False,
    force: bool = False,
) -> ValidationReport:
    """Validate an emotion vector set on the model it came from.

    Args:
        lm: the model (checked against the set's provenance).
        vectors: the emotion vectors.
        stories: every story's activations, from ``extract_emotion_vectors``; re-read from the corpus when ``None``.
        bases: the neutral bases, from ``extract_emotion_vectors``; re-read from the corpus when ``None``.
        readout: how cross-validation scores a story: ``projection`` (as monitoring does) or ``lda``.
        n_folds: topics are dealt to this many cross-validation folds.
        n_permutations: label permutations for the baseline (0: none).
        nested: also choose the layer inside cross-validation for an unbiased headline figure.
        snippets_per_subset: VADER snippets read per subset (``None``: all 23,703).
        external: run the checks on human-rated text (skipped with a note when the data is not installed).
        n_resamples: bootstrap resamples for intervals.
        cache_dir: the vector set's directory; its ``stories.safetensors`` (written by ``emovec extract``) is used
            instead of re-reading the corpus when it belongs to these vectors.
        show_progress: report each stage (re-reading stories, cross-validation, nested CV, permutations,
            human-rated text, identity checks): a bar in a terminal, else one line per stage.
        force: validate on a model other than the one the vectors were made from (same width).

    Returns:
        A ``ValidationReport``; ``report.recommended_layer`` is the best topic-held-out layer.

    Example:
        >>> report = validate(lm, VectorSet.load("runs/demo"))
        >>> report.nested.top5.fmt()
    """
    vectors.check_compatible(lm, force=force)
    stories, layer_bases = _stories_for(lm, vectors, stories, bases, cache_dir, show_progress)
    topics = stories.topics
    assert topics is not None  # _stories_for checked
    n_topics = len(set(topics))
    folds = min(n_folds, n_topics)
    recipe = Recipe(topic_removal=bool(vectors.provenance.method_params.get("topic_removal", False)), readout=readout)
    cv, candidates, best = _layer_cv(stories, layer_bases, recipe, folds, n_resamples, seed, show_progress)
    layer = stories.layers[best]
    nested_cv = (_nested(stories, layer_bases, recipe, candidates, folds, n_resamples, seed, show_progress)
                 if nested and len(candidates) > 1 and folds >= 3 else None)
    perm = (_permutations(stories, best, layer_bases[best], recipe, n_permutations, folds, seed, show_progress)
            if n_permutations > 0 else None)
    ratio, coords = pca_geometry(vectors, layer)
    order1 = coords[:, 0].argsort(descending=True).tolist()
    order2 = coords[:, 1].argsort(descending=True).tolist()
    names = vectors.names
    promoted, suppressed = logit_lens(lm, vectors, layer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ext = _external(lm, vectors, layer, snippets_per_subset, seed, stories.acts[:, best], stories.labels,
                        show_progress) if external else ExternalChecks(skipped=["external checks not requested"])
    n = len(names)
    words, words_skipped, identity = _identity(lm, vectors, stories, best, layer_bases[best], recipe, folds,
                                               n_resamples, seed, show_progress)
    return ValidationReport(
        model=vectors.provenance.model.name, layers=list(stories.layers), n_emotions=n, n_stories=len(stories.labels),
        n_topics=n_topics, n_folds=folds,
        recipe={"topic_removal": recipe.topic_removal, "readout": readout,
                "token_start": vectors.provenance.token_selection.start,
                "denoise_variance": vectors.provenance.method_params.get("denoise_variance")},
        chance_top1=1 / n, chance_top5=min(5, n) / n, chance_mean_rank=(n + 1) / 2, recommended_layer=layer,
        cv=cv, nested=nested_cv, permutation=perm,
        diagnostic=pair_cosines(stories.acts, stories.labels, topics, stories.layers),
        text_baseline=words, text_baseline_skipped=words_skipped,
        pca_explained=ratio, pca_coords={nm: (float(coords[i, 0]), float(coords[i, 1])) for i, nm in enumerate(names)},
        pc1_top=[names[i] for i in order1[:10]], pc1_bottom=[names[i] for i in order1[-10:][::-1]],
        pc2_top=[names[i] for i in order2[:10]], pc2_bottom=[names[i] for i in order2[-10:][::-1]],
        nearest={nm: vectors.nearest(nm, layer, k=5) for nm in names},
        implicit=implicit_emotion(lm, vectors, layer), logit_lens=promoted, logit_lens_suppressed=suppressed,
        external=ext, identity=identity, provenance=vectors.provenance.model_dump(mode="json"),
    )
