"""Stability against sample size: how split-half cosine, its shuffled-label null and the held-out readout AUC
grow with the number of stories per emotion.

The stories are read once, at the largest count; a smaller count keeps each emotion's stories on the corpus's
first topics, exactly the stories ``story_activations`` would pick for that count. Each count is then measured
by ``emovec.validation.stability.measure_stability`` (topic halvings, labels shuffled within topics for the
null), so the figures are those the policy-dominance study would report with that many stories.
``emovec study stability`` prints the table and writes it as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, computed_field

from emovec._progress import stage
from emovec._version import __version__
from emovec.corpus import Corpus, load_corpus
from emovec.metrics import Estimate
from emovec.models.loading import LoadedModel
from emovec.studies._kit import StudyError, StudyResult, write_result
from emovec.validation.stability import StoryActivations, measure_stability, story_activations


class CountRow(BaseModel):
    """The stability figures at one count of stories per emotion, per key emotion; the means over them are
    derived (and written to JSON with the rest)."""

    per_emotion: int
    n_stories: int
    split_half: dict[str, Estimate]
    split_half_null: dict[str, Estimate]
    split_half_null_pooled: Estimate  # the null of the mean split-half over the key emotions
    readout_auc: dict[str, Estimate]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mean_split_half(self) -> float:
        return float(np.mean([v.value for v in self.split_half.values()]))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mean_null_high(self) -> float:
        """What ``mean_split_half`` must beat: the 97.5th percentile of its null."""
        return self.split_half_null_pooled.high

    @computed_field  # type: ignore[prop-decorator]
    @property
    def above_null(self) -> int:
        """Key emotions whose split-half is above their own null's 97.5th percentile."""
        return sum(v.value > self.split_half_null[k].high for k, v in self.split_half.items())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mean_readout_auc(self) -> float:
        """Chance is 0.5."""
        aucs = [v.value for v in self.readout_auc.values()]
        return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")


class StabilityCurve(StudyResult):
    """Stability at several counts of stories per emotion, with what it was measured on."""

    model: str
    fingerprint: str
    layer: int
    keys: list[str]
    pool: list[str]
    n_splits: int
    seed: int
    emovec_version: str
    rows: list[CountRow]

    def table(self) -> str:
        """A plain-text table, one line per count."""
        lines = ["stories/emotion  split-half  null 97.5%  above null  readout AUC (chance 0.5)"]
        lines += [f"{r.per_emotion:>15}  {r.mean_split_half:>10.2f}  {r.mean_null_high:>10.2f}  "
                  f"{r.above_null:>6}/{len(self.keys):<3}  {r.mean_readout_auc:>11.2f}" for r in self.rows]
        return "\n".join(lines)


def _first(sa: StoryActivations, count: int) -> np.ndarray:
    """Rows of each emotion's first ``count`` stories in topic order (the stories ``story_activations`` picks)."""
    rows: list[int] = []
    for e in range(len(sa.emotions)):
        mine = np.flatnonzero(sa.labels == e)
        if sa.topics is not None:
            mine = mine[np.argsort(sa.topics[mine], kind="stable")]
        rows += mine[:count].tolist()
    return np.array(sorted(rows))


def _subset(sa: StoryActivations, rows: np.ndarray) -> StoryActivations:
    topics = None if sa.topics is None else sa.topics[rows]
    return StoryActivations(sa.layer, sa.emotions, sa.labels[rows], {k: v[rows] for k, v in sa.acts.items()},
                            sa.mean_norm, topics if topics is not None and len(set(topics.tolist())) > 1 else None)


def _count_row(sa: StoryActivations, keys: Sequence[str], count: int, n_splits: int, seed: int) -> CountRow:
    """The figures at one count of stories per emotion (its first stories of each emotion)."""
    part = _subset(sa, _first(sa, count))
    res = measure_stability(part, keys, n_splits=n_splits, n_seeds=3, seed=seed)
    assert res.split_half_null is not None and res.split_half_null_pooled is not None  # measure_stability() measures it
    return CountRow(per_emotion=count, n_stories=len(part.labels), split_half=res.split_half,
                    split_half_null=res.split_half_null, split_half_null_pooled=res.split_half_null_pooled,
                    readout_auc=res.readout_auc)


def stability_curve(lm: LoadedModel, keys: Sequence[str], pool: Sequence[str], layer: int, *,
                    counts: Sequence[int] = (6, 12, 20), corpus: Corpus | None = None, max_length: int = 100,
                    n_splits: int = 50, seed: int = 0, log: Callable[[str], None] | None = None,
                    show_progress: bool = False) -> StabilityCurve:
    """Split-half cosine, its null and the held-out readout AUC of ``keys`` at each count in ``counts``.

    Args:
        lm: the model.
        keys: the emotions measured (each must be in ``pool``).
        pool: every emotion read; the vectors are centred on their mean, as in the policy-dominance study.
        layer: the layer read.
        counts: stories per emotion, each at least 4 (the halves need two each).
        corpus: the story corpus (default: the packaged one).
        max_length: tokens per story.
        n_splits: random halvings per count (at least 10).
        seed: the halvings' seed.
        log: a line as the reading starts and one per count with its figures.
        show_progress: report the reading and the counts as stages (a bar in a terminal, else one line each).
    """
    say = log or (lambda _m: None)
    if not counts or min(counts) < 4:
        raise StudyError(f"counts {list(counts)}: give stories-per-emotion counts of at least 4 each")
    missing = [k for k in keys if k not in pool]
    if missing:
        raise StudyError(f"key emotion {missing[0]!r} is not in the pool {list(pool)}")
    if not 0 <= layer < lm.n_layers:
        raise StudyError(f"layer {layer} is out of range: {lm.source.name} has layers 0-{lm.n_layers - 1}")
    corpus = corpus if corpus is not None else load_corpus()
    top = max(counts)
    say(f"reading {top} stories x {len(pool)} emotions at layer {layer}")
    sa = story_activations(lm, corpus, pool, layer, per_emotion=top, max_length=max_length,
                           show_progress=show_progress)
    rows = []
    chosen = sorted(set(counts))
    with stage("stability/counts", len(chosen), unit="counts", detail=f"{n_splits} halvings each",
               show=show_progress) as advance:
        for count in chosen:
            rows.append(_count_row(sa, keys, count, n_splits, seed))
            row = rows[-1]
            say(f"{count} stories per emotion: split-half {row.mean_split_half:.2f} (null 97.5% "
                f"{row.mean_null_high:.2f}; {row.above_null} of {len(keys)} above), readout AUC "
                f"{row.mean_readout_auc:.2f}")
            advance()
    return StabilityCurve(model=lm.source.name, fingerprint=lm.source.fingerprint, layer=layer, keys=list(keys),
                          pool=list(pool), n_splits=n_splits, seed=seed, emovec_version=__version__, rows=rows)


def write_curve(curve: StabilityCurve, path: Path, *, overwrite: bool = False) -> Path:
    """Write the curve as JSON (atomically); an existing file is kept unless ``overwrite``."""
    if path.exists() and not overwrite:
        raise StudyError(f"{path} exists; pass --overwrite to replace it, or choose another --out")
    return write_result(path, curve)
