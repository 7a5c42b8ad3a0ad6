"""Extraction: the paper's emotion recipe and contrastive directions for any concept.

Emotion recipe (Sofroniew et al., 2026): for each story, average the residual stream over its tokens from
``token_start`` on; average those per emotion; subtract the mean across emotions; then project out the top
principal components of neutral texts' activations that together explain ``denoise_variance`` of their
variance. All layers come from the same forward passes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from emovec._files import sha256_of
from emovec._progress import stage
from emovec.capture import CaptureResult, TokenSelection, capture
from emovec.corpus import Corpus, CorpusRecord
from emovec.errors import CorpusError
from emovec.executors import ExecutorOptions, make_executor
from emovec.models.loading import LoadedModel
from emovec.vectors.design import DesignSummary, emotion_effects, summarize_design
from emovec.vectors.methods import get_method
from emovec.vectors.vector_set import CorpusInfo, Provenance, VectorSet


@dataclass(frozen=True)
class LabeledActivations:
    """Per-text mean activations ``[n_texts, n_layers, d_model]`` with an emotion (and topic) per text."""

    labels: list[str]
    layers: list[int]
    acts: Tensor
    topics: list[str] | None = None


@dataclass(frozen=True)
class EmotionExtraction:
    """The result of ``extract_emotion_vectors``.

    Attributes:
        vectors: the emotion vectors (fitted on every story).
        stories: every story's activations with its emotion and topic, for cross-validation.
        bases: per layer, the neutral-text directions projected out of the vectors (``None``: no denoising).
        denoise_components: how many directions that was per layer.
        design: how the stories fill the emotion x topic grid.
    """

    vectors: VectorSet
    stories: LabeledActivations
    bases: list[Tensor | None]
    denoise_components: list[int]
    design: DesignSummary


def neutral_subspace(neutral: Tensor, variance: float) -> tuple[Tensor, int]:
    """Top principal directions ``[k, d]`` of ``neutral`` ``[n, d]`` explaining at least ``variance``."""
    centered = (neutral - neutral.mean(0)).double()
    _, sing, vh = torch.linalg.svd(centered, full_matrices=False)
    explained = (sing**2) / (sing**2).sum().clamp_min(1e-30)
    k = int((explained.cumsum(0) < variance).sum().item()) + 1
    return vh[: min(k, len(vh))].float(), min(k, len(vh))


def project_out(vectors: Tensor, basis: Tensor) -> Tensor:
    """Remove from each row of ``vectors`` its component in the row space of orthonormal ``basis``."""
    return vectors - (vectors @ basis.T) @ basis


def long_enough(lm: LoadedModel, records: Sequence[CorpusRecord], token_start: int,
                max_length: int | None) -> list[CorpusRecord]:
    """The records with at least one token at or after ``token_start`` (after truncation to ``max_length``)."""
    if not records:
        return []
    lengths = [len(ids) for ids in lm.tokenizer([r.text for r in records])["input_ids"]]
    limit = max_length or max(lengths)
    return [r for r, n in zip(records, lengths, strict=True) if min(n, limit) > token_start]


def _drop_short(lm: LoadedModel, records: list[CorpusRecord], token_start: int, max_length: int | None,
                what: str, allowed: bool) -> list[CorpusRecord]:
    kept = long_enough(lm, records, token_start, max_length)
    if len(kept) == len(records):
        return records
    short = [r.id for r in records if r not in kept]
    if not allowed:
        raise CorpusError(
            f"{len(short)} of {len(records)} {what} are not longer than the token start {token_start} "
            f"(e.g. {short[0]!r}). Use a smaller token start (--token-start), or drop them (--skip-short)."
        )
    warnings.warn(f"{len(short)} of {len(records)} {what} are not longer than the token start {token_start} "
                  f"and were left out ({', '.join(short[:3])}{', ...' if len(short) > 3 else ''})", stacklevel=3)
    return kept


def _use_topic_removal(corpus: Corpus, stories: Sequence[CorpusRecord], topic_removal: bool | None) -> DesignSummary:
    emotions = [str(r.emotion) for r in stories]
    topics = [r.topic for r in stories]
    if topic_removal is None:
        loose = summarize_design(emotions, topics, corpus.design, crossed=False)
        topic_removal = corpus.design == "crossed" or (corpus.design is None and loose.fill >= 0.5)
        if not topic_removal:
            return loose
    return summarize_design(emotions, topics, corpus.design, crossed=topic_removal)


READ_CHUNK = 64  # texts per work item when reading on an executor


@dataclass(frozen=True)
class _ReadJob:
    layers: list[int]
    token_start: int
    batch_tokens: int
    max_length: int | None


def read_batch(lm: LoadedModel, job: _ReadJob, texts: list[str], state: dict[str, Any]
               ) -> tuple[Tensor, Tensor, Tensor]:
    """One chunk's per-text means ``[n, L, d]``, selected-token counts and mean norm (an executor's work item)."""
    res = capture(lm, texts, job.layers, selection=TokenSelection.from_index(job.token_start),
                  batch_tokens=job.batch_tokens, max_length=job.max_length)
    return res.means, res.token_counts, res.mean_norm


def read_texts(lm: LoadedModel, texts: Sequence[str], layers: Sequence[int] | None, *, token_start: int,
               batch_tokens: int = 8192, max_length: int | None = None, show_progress: bool = False,
               executor: ExecutorOptions | None = None, detail: str = "") -> CaptureResult:
    """Per-text mean activations from ``token_start`` on, in this process or, with a Ray executor, in chunks of
    ``READ_CHUNK`` texts on its workers; the mean norm of the chunks is combined weighted by their tokens, so
    the result is the local one up to float rounding. ``show_progress`` reports the ``capture`` stage, with
    ``detail`` saying what the texts are."""
    chosen = lm.check_layers(layers)
    detail = f"{detail}{', ' if detail else ''}{len(chosen)} layers"
    if executor is None or executor.kind == "local":
        return capture(lm, texts, chosen, selection=TokenSelection.from_index(token_start), batch_tokens=batch_tokens,
                       show_progress=show_progress, max_length=max_length, detail=detail)

    chunks = [list(texts[i: i + READ_CHUNK]) for i in range(0, len(texts), READ_CHUNK)]
    parts: list[tuple[Tensor, Tensor, Tensor] | None] = [None] * len(chunks)
    with stage("capture", len(texts), unit="texts", detail=f"{detail}, {executor.kind}",
               show=show_progress) as advance:

        def keep(i: int, part: tuple[Tensor, Tensor, Tensor]) -> None:
            parts[i] = part
            advance(len(chunks[i]))

        make_executor(executor, lm).map(read_batch, _ReadJob(chosen, token_start, batch_tokens, max_length), chunks,
                                        keep)
    done = [p for p in parts if p is not None]
    if len(done) != len(chunks):
        raise RuntimeError(f"{len(chunks) - len(done)} of {len(chunks)} chunks came back empty from the executor")
    tokens = torch.cat([p[1] for p in done])
    weights = torch.stack([p[1].sum() for p in done]).float()
    norm = (torch.stack([p[2] for p in done]) * weights[:, None]).sum(0) / weights.sum().clamp(min=1)
    return CaptureResult(layers=chosen, groups=list(range(len(texts))), means=torch.cat([p[0] for p in done]),
                         counts=torch.ones(len(texts), dtype=torch.long), token_counts=tokens, mean_norm=norm)


def extract_emotion_vectors(
    lm: LoadedModel,
    corpus: Corpus,
    *,
    layers: Sequence[int] | None = None,
    token_start: int = 50,
    denoise_variance: float | None = 0.5,
    topic_removal: bool | None = None,
    batch_tokens: int = 8192,
    show_progress: bool = False,
    stories_per_emotion: int | None = None,
    topics: int | None = None,
    neutral_limit: int | None = None,
    max_length: int | None = None,
    skip_short: bool = False,
    executor: ExecutorOptions | None = None,
) -> EmotionExtraction:
    """Emotion vectors by the paper's recipe with topic effects removed, all layers in one pass per batch.

    Per story, the residual stream is averaged over tokens from ``token_start`` on. In a crossed corpus
    (every topic written for every emotion) per-topic means are removed before per-emotion means are taken
    (``emovec.vectors.design.emotion_effects``); the mean over emotions is subtracted; then the top principal
    components of neutral texts' activations explaining ``denoise_variance`` of their variance are projected
    out. Every story's activations are returned for cross-validation by held-out topic (``validate``).

    Args:
        lm: the model to read.
        corpus: stories (and neutral texts, for denoising).
        layers: block indices (default: all).
        token_start: first token position averaged in each story (the paper: 50). Lower it for short stories.
        denoise_variance: fraction of neutral-text variance whose principal components are projected out;
            ``None`` or 0 turns denoising off.
        topic_removal: remove topic effects (default: when the corpus is crossed). ``True`` on a corpus of
            another design raises ``CorpusError``.
        batch_tokens: padded tokens per batch.
        show_progress: report the reading of the texts (a bar in a terminal, else one ``capture`` line).
        stories_per_emotion: use only the first this many stories of each emotion (recorded).
        topics: use only the stories of the first this many topics (recorded).
        neutral_limit: use only this many neutral texts (recorded).
        max_length: truncate every text to this many tokens (recorded); ``None`` keeps whole texts.
        skip_short: drop stories with no token past ``token_start`` (warned and recorded) instead of raising.
            Neutral texts that short are always dropped with a warning.
        executor: ``ExecutorOptions(kind="ray", ...)`` reads the texts in chunks on Ray workers, each with its
            own copy of the model (``read_texts``); the vectors match a local read.

    Returns:
        ``EmotionExtraction`` with the ``VectorSet`` and every story's activations.

    Example:
        >>> ext = extract_emotion_vectors(load_model(), load_corpus(), token_start=50)
        >>> ext.vectors.save("runs/vectors")
    """
    if stories_per_emotion is not None or neutral_limit is not None or topics is not None:
        corpus = corpus.subset(stories_per_emotion, neutral_limit, topics)
    denoise = bool(denoise_variance)
    stories, neutral = _usable_texts(lm, corpus, token_start, max_length, skip_short, denoise)
    design = _use_topic_removal(corpus, stories, topic_removal)
    removing = design.topic_removal
    texts = [r.text for r in stories] + [r.text for r in neutral]
    what = f"{design.n_emotions} emotions x {design.n_topics} topics, {len(stories)} stories + {len(neutral)} neutral"
    res = read_texts(lm, texts, layers, token_start=token_start, batch_tokens=batch_tokens, max_length=max_length,
                     show_progress=show_progress, executor=executor, detail=what)
    story_acts = res.means[: len(stories)]
    emotions = [str(r.emotion) for r in stories]
    topic_labels = [r.topic for r in stories]
    names, effects, centre = emotion_effects(story_acts, emotions, topic_labels if removing else None)
    directions = effects.transpose(0, 1).contiguous()  # [L, E, d]
    components: list[int] = []
    bases: list[Tensor | None] = [None] * len(res.layers)
    if denoise:
        neutral_acts = res.means[len(stories):]
        for j in range(len(res.layers)):
            basis, k = neutral_subspace(neutral_acts[:, j], float(denoise_variance or 0))
            directions[j] = project_out(directions[j], basis)
            bases[j] = basis
            components.append(k)
    info = CorpusInfo(
        path=corpus.source, sha256=sha256_of([corpus.source]), n_train=len(stories), n_heldout=0,
        n_neutral=len(neutral), stories_per_emotion=stories_per_emotion, neutral_limit=neutral_limit,
        topics_limit=topics, design=design.design, n_topics=design.n_topics,
        cells_filled=design.cells_filled, cells_total=design.cells_total,
    )
    prov = Provenance(
        model=lm.source, method="emotion_mean",
        method_params=_recipe_params(denoise_variance, components, removing, max_length, skip_short,
                                     len(corpus.stories) - len(stories)),
        token_selection=TokenSelection.from_index(token_start), corpus=info,
    )
    vectors = VectorSet(
        names=tuple(names), layers=tuple(res.layers), directions=directions, mean_norm=res.mean_norm,
        provenance=prov, center=centre,
    )
    labeled = LabeledActivations(labels=emotions, layers=res.layers, acts=story_acts, topics=topic_labels)
    return EmotionExtraction(vectors=vectors, stories=labeled, bases=bases, denoise_components=components,
                             design=design)


def _usable_texts(lm: LoadedModel, corpus: Corpus, token_start: int, max_length: int | None, skip_short: bool,
                  denoise: bool) -> tuple[list[CorpusRecord], list[CorpusRecord]]:
    """The stories and (for denoising) neutral texts long enough to read from ``token_start``; an error when
    there are no stories, or fewer than 2 neutral texts to denoise with."""
    stories = _drop_short(lm, corpus.stories, token_start, max_length, "stories", skip_short)
    neutral = _drop_short(lm, corpus.neutral, token_start, max_length, "neutral texts", True) if denoise else []
    if not stories:
        raise CorpusError(f"{corpus.source} holds no stories; generate them with `emovec stories`")
    if denoise and len(neutral) < 2:
        raise CorpusError(
            f"{corpus.source} has {len(neutral)} neutral texts long enough for token start {token_start}; "
            "denoising needs at least 2 "
            "(generate them with `emovec stories --neutral-per-subject 2`, or pass denoise_variance=None)"
        )
    return stories, neutral


def _recipe_params(denoise_variance: float | None, components: list[int], removing: bool, max_length: int | None,
                   skip_short: bool, skipped: int) -> dict[str, Any]:
    """What the provenance records of the recipe: denoising, topic removal, truncation and skipped stories."""
    return {
        "denoise_variance": float(denoise_variance) if denoise_variance else None,
        "denoise_components_min": min(components) if components else 0,
        "denoise_components_max": max(components) if components else 0,
        "topic_removal": bool(removing),
        "aggregation": ("mean over tokens; per-topic means removed before per-emotion means (two-way "
                        "backfitting); minus mean over emotions") if removing else
                       "mean over tokens, then over stories, minus mean over emotions",
        "max_length": max_length,
        "skip_short": skip_short,
        "stories_skipped_short": skipped,
    }


def extract_concepts(
    lm: LoadedModel,
    concepts: Mapping[str, tuple[Sequence[str], Sequence[str]]],
    *,
    method: str = "mean_diff",
    layers: Sequence[int] | None = None,
    selection: TokenSelection | None = None,
    batch_tokens: int = 8192,
    show_progress: bool = False,
) -> VectorSet:
    """Contrastive directions for any concepts from positive and negative texts.

    Args:
        lm: the model.
        concepts: ``{name: (positive_texts, negative_texts)}``, e.g. harmful vs harmless prompts for a refusal
            direction.
        method: a name in ``emovec.vectors.methods.METHODS`` (``mean_diff``, ``pca``, ``logistic``).
        layers: block indices (default: all).
        selection: token positions (default: the last token, where a prompt's meaning has been read).

    Returns:
        A ``VectorSet`` with one direction per concept at each layer.

    Example:
        >>> refusal = extract_concepts(lm, {"refusal": (harmful, harmless)}, method="mean_diff")
    """
    fn = get_method(method)
    sel = selection or TokenSelection.last()
    if not concepts:
        raise CorpusError("no concepts given: pass {name: (positive_texts, negative_texts)}")
    texts: list[str] = []
    spans: dict[str, tuple[slice, slice]] = {}
    for name, (pos, neg) in concepts.items():
        if not pos or not neg:
            raise CorpusError(f"concept {name!r} needs positive and negative texts; got {len(pos)} and {len(neg)}")
        a = len(texts)
        texts += list(pos)
        b = len(texts)
        texts += list(neg)
        spans[name] = (slice(a, b), slice(b, len(texts)))
    res = capture(lm, texts, layers, selection=sel, batch_tokens=batch_tokens, show_progress=show_progress,
                  detail=f"{len(concepts)} concepts ({method})")
    acts = res.means  # [n_texts, L, d], groups are the text indices in order
    names = list(concepts)
    directions = torch.stack(
        [torch.stack([fn(acts[spans[n][0], j], acts[spans[n][1], j]) for n in names]) for j in range(len(res.layers))]
    )
    prov = Provenance(model=lm.source, method=method, method_params={"n_texts": len(texts)}, token_selection=sel)
    center = acts.mean(0)
    return VectorSet(names=tuple(names), layers=tuple(res.layers), directions=directions, mean_norm=res.mean_norm,
                     provenance=prov, center=center)
