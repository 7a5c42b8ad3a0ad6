"""Figures of refusal judges against people's labels (``refusal_training``, ``emovec judge train --report``):
agreement with 95% Wilson intervals, overall, per model and per prompt type, confusion, calibration of P(refusal),
paired differences with a bootstrap over prompts, the learning curve's points and the report that holds them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from emovec.evaluation.judges.refusal import LABELS
from emovec.evaluation.judges.refusal_learned import FitSettings
from emovec.metrics import Estimate, cluster_bootstrap, wilson


class ScoredRow(Protocol):
    """What the figures read of a labelled reply (``refusal_training.TrainingRow``)."""

    @property
    def label(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def group(self) -> str: ...


class AccuracyFigure(BaseModel):
    """Agreement with people on ``n`` replies: 3-class and binary (any refusal vs compliance), 95% Wilson."""

    n: int
    three_class: Estimate
    binary: Estimate


def accuracy_figure(truth: Sequence[str], pred: Sequence[str]) -> AccuracyFigure:
    """``AccuracyFigure`` of predictions against people's labels."""
    t, p = np.asarray(truth), np.asarray(pred)
    same = int((t == p).sum())
    same_binary = int(((t == "full_compliance") == (p == "full_compliance")).sum())
    return AccuracyFigure(n=len(t), three_class=wilson(same, len(t)), binary=wilson(same_binary, len(t)))


def expected_calibration_error(truth: Sequence[str], score: Sequence[float], bins: int = 10) -> float:
    """Binary calibration of P(any refusal): the mean |observed rate - mean score| over equal-width bins, weighted
    by their rows."""
    refused = (np.asarray(truth) != "full_compliance").astype(float)
    s = np.asarray(score, dtype=float)
    which = np.minimum((s * bins).astype(int), bins - 1)
    return float(sum(abs(refused[which == b].mean() - s[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(s))


class JudgeFigures(BaseModel):
    """One judge's agreement with people on the calibration half: overall, per model, per prompt type; and on the
    project file's held-out rows where they were scored (``project_heldout``)."""

    judge: str
    overall: AccuracyFigure
    project_heldout: AccuracyFigure | None = None
    per_model: dict[str, AccuracyFigure]
    per_type: dict[str, AccuracyFigure]
    confusion: dict[str, dict[str, int]]  # people -> judge
    calibration_error: float | None = None
    chosen: list[FitSettings] = []


def judge_figures(name: str, rows: Sequence[ScoredRow], pred: Sequence[str],
                  score: Sequence[float] | None = None, chosen: Sequence[FitSettings] = ()) -> JudgeFigures:
    """``JudgeFigures`` from predictions aligned with ``rows``."""
    truth = [r.label for r in rows]

    def by(key: Callable[[ScoredRow], str]) -> dict[str, AccuracyFigure]:
        keys = sorted({key(r) for r in rows})
        return {k: accuracy_figure([t for t, r in zip(truth, rows, strict=True) if key(r) == k],
                                   [p for p, r in zip(pred, rows, strict=True) if key(r) == k]) for k in keys}

    confusion: dict[str, dict[str, int]] = {t: dict.fromkeys(LABELS, 0) for t in LABELS}
    for t, p in zip(truth, pred, strict=True):
        confusion[t][p] += 1
    return JudgeFigures(judge=name, overall=accuracy_figure(truth, pred), per_model=by(lambda r: r.model),
                        per_type=by(lambda r: r.type), confusion=confusion,
                        calibration_error=None if score is None else expected_calibration_error(truth, score),
                        chosen=list(chosen))


class LearningPoint(BaseModel):
    """Grouped-CV agreement when each fold trains on ``share`` of its calibration prompts (and the project rows
    when ``project``): ``rows`` is the mean count of training rows per fold."""

    judge: str
    share: float
    project: bool
    rows: float
    figure: AccuracyFigure


class PairedDifference(BaseModel):
    """``judge``'s agreement minus ``against``'s on the same replies (3-class and binary), 95% bootstrap interval
    over prompts."""

    judge: str
    against: str
    three_class: Estimate
    binary: Estimate


class TrainingReport(BaseModel):
    """What ``emovec judge train`` measured: each judge's grouped-CV figures on the calibration half, the learning
    curve, and the settings the shipped models were fitted with."""

    seed: int
    folds: int
    inner_folds: int
    criterion: str = "calibration"
    calibration_rows: int
    project_rows: int
    prompt_groups: int
    judges: list[JudgeFigures] = []
    paired: list[PairedDifference] = []
    learning_curve: list[LearningPoint] = []
    final_settings: dict[str, FitSettings] = {}
    selection_accuracy: dict[str, list[float]] = {}
    seconds: float = 0.0


def paired_differences(rows: Sequence[ScoredRow], predictions: dict[str, list[str]], learned: Sequence[str],
                       seed: int) -> list[PairedDifference]:
    """Each learned judge's agreement minus every other judge's on the same replies, with a bootstrap interval that
    resamples whole prompts (replies to one prompt are not independent)."""
    truth = np.asarray([r.label for r in rows])
    groups = [r.group for r in rows]

    def right(pred: list[str], binary: bool) -> NDArray[np.float64]:
        p = np.asarray(pred)
        same = (p == "full_compliance") == (truth == "full_compliance") if binary else p == truth
        return same.astype(float)

    out = []
    for name in learned:
        for other in [o for o in predictions if o != name]:
            diffs = [cluster_bootstrap(right(predictions[name], b) - right(predictions[other], b), groups,
                                       n_resamples=2000, seed=seed) for b in (False, True)]
            out.append(PairedDifference(judge=name, against=other, three_class=diffs[0], binary=diffs[1]))
    return out
