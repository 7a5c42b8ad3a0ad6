"""The story corpus's design and topic-effect removal.

A story's mean activation is modelled as ``grand mean + topic effect + emotion effect + residual``. In the
paper's crossed design every emotion meets every topic, so emotion means are free of topic effects; when cells
are missing (stories filtered out, an interrupted run), subtracting per-topic means before per-emotion means
(and iterating the two, which is backfitting for a two-way additive model) keeps topics out of the emotion
effects.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence

import torch
from pydantic import BaseModel
from torch import Tensor

from emovec.errors import CorpusError


class DesignSummary(BaseModel):
    """How stories fill the emotion x topic grid."""

    design: str
    n_emotions: int
    n_topics: int
    n_stories: int
    cells_filled: int
    cells_total: int
    min_topics_per_emotion: int
    topic_removal: bool = False

    @property
    def fill(self) -> float:
        return self.cells_filled / max(self.cells_total, 1)


def summarize_design(emotions: Sequence[str], topics: Sequence[str], declared: str | None = None,
                     crossed: bool = True) -> DesignSummary:
    """Check the grid of stories before topic effects are removed.

    Args:
        emotions, topics: one label each per story.
        declared: the design the corpus's meta file records (``crossed``, ``rotating``) if any.
        crossed: the caller treats the corpus as crossed (topic CV, topic removal).

    Raises:
        CorpusError: an emotion has stories in fewer than 2 topics (topic effects cannot be separated from it,
            and no topic can be held out), or the corpus is read as crossed but was made in another design
            (fewer than half of the cells filled).

    Example:
        >>> summarize_design(["a", "b", "a", "b"], ["t1", "t1", "t2", "t2"]).fill
        1.0
    """
    if len(emotions) != len(topics):
        raise ValueError(f"{len(emotions)} emotion labels for {len(topics)} topic labels")
    if not emotions:
        raise CorpusError("the corpus holds no stories; generate them with `emovec stories`")
    cells = Counter(zip(emotions, topics, strict=True))
    per_emotion = Counter(e for e, _ in cells)
    names, topic_names = set(emotions), set(topics)
    few = sorted(e for e in names if per_emotion[e] < 2)
    if few and crossed:
        raise CorpusError(
            f"{len(few)} emotions have stories in fewer than 2 topics ({', '.join(few[:8])}"
            f"{', ...' if len(few) > 8 else ''}): topic effects cannot be told from them and no topic can be held "
                "out. "
            "Generate more topics for them (`emovec stories --design crossed --topics N` resumes) or drop them."
        )
    summary = DesignSummary(
        design=declared or ("crossed" if len(cells) == len(names) * len(topic_names) else "unknown"),
        n_emotions=len(names), n_topics=len(topic_names), n_stories=len(emotions), cells_filled=len(cells),
        cells_total=len(names) * len(topic_names), min_topics_per_emotion=min(per_emotion.values()),
        topic_removal=crossed,
    )
    if crossed and (declared not in (None, "crossed") or summary.fill < 0.5):
        raise CorpusError(
            "the corpus is read as crossed but "
            f"{'was made in the ' + repr(declared) + ' design and ' if declared else ''}fills only "
            f"{summary.cells_filled} of {summary.cells_total} emotion x topic cells. Generate a crossed "
            "corpus (`emovec stories --design crossed`), or extract with --no-topic-removal."
        )
    if crossed and summary.cells_filled < summary.cells_total:
        warnings.warn(
            f"{summary.cells_total - summary.cells_filled} of {summary.cells_total} emotion x topic cells have no "
            "story; topic effects are still removed (two-way backfitting)", stacklevel=2,
        )
    return summary


def _codes(labels: Sequence[str]) -> tuple[list[str], Tensor]:
    names = list(dict.fromkeys(labels))
    index = {n: i for i, n in enumerate(names)}
    return names, torch.tensor([index[x] for x in labels])


def _group_mean(x: Tensor, codes: Tensor, n: int) -> Tensor:
    sums = torch.zeros(n, *x.shape[1:], dtype=x.dtype).index_add_(0, codes, x)
    counts = torch.bincount(codes, minlength=n).to(x.dtype).clamp_min(1)
    return sums / counts.view(-1, *([1] * (x.dim() - 1)))


def emotion_effects(acts: Tensor, emotions: Sequence[str], topics: Sequence[str] | None = None,
                    *, max_iter: int = 20, tol: float = 1e-6) -> tuple[list[str], Tensor, Tensor]:
    """Per-emotion effects of story activations, with topic effects removed when ``topics`` are given.

    Args:
        acts: ``[n_stories, ...]`` per-story mean activations (any trailing shape, e.g. ``[layers, d_model]``).
        emotions: an emotion label per story.
        topics: a topic label per story, or ``None`` for plain per-emotion means (no topic removal).
        max_iter, tol: backfitting stops when an iteration changes the effects by less than ``tol`` relative.

    Returns:
        ``(names, effects, centre)``: emotion names in first-seen order, their effects ``[E, ...]`` (mean zero
        over emotions) and the centre ``[...]`` that effects are measured from (the mean of the emotion means).

    Example:
        >>> names, eff, centre = emotion_effects(acts, ["calm", "angry"], ["walk", "walk"])
    """
    x = acts.double()
    names, e_codes = _codes(emotions)
    if topics is None:
        means = _group_mean(x, e_codes, len(names))
        centre = means.mean(0)
        return names, (means - centre).float(), centre.float()
    _, t_codes = _codes(topics)
    n_topics = int(t_codes.max()) + 1
    mu = x.mean(0)
    emo = torch.zeros(len(names), *x.shape[1:], dtype=x.dtype)
    for _ in range(max_iter):
        top = _group_mean(x - mu - emo[e_codes], t_codes, n_topics)
        new = _group_mean(x - mu - top[t_codes], e_codes, len(names))
        shift = (new - emo).norm() / new.norm().clamp_min(1e-30)
        emo = new
        if shift < tol:
            break
    offset = emo.mean(0)
    # The centre is the grand mean plus the mean emotion effect: a story with the average emotion on the
    # average topic sits there.
    return names, (emo - offset).float(), (mu + offset).float()
