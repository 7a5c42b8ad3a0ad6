"""Training and measuring the learned refusal judge (``refusal_learned``) on people's labels.

Rows: the calibration half of XSTest's labelled replies (a CSV with ``prompt``, ``completion``, ``label``, ``id``,
``prompt_label``, and ``model``, ``type`` where known) and the project's own labelled file
(``emovec/data/judges/refusal_labelled.jsonl``; harm label ``unsafe`` for the harmful and red-team suites, ``safe``
for the benign one, ``unknown`` otherwise). Every row belongs to a prompt group: its XSTest prompt id, or, for a
project row, the id of the XSTest prompt with the same words if there is one, else its own prompt's words.

Everything is chosen by cross-validation grouped by prompt: no prompt is ever in a fold's training and test rows.
The scored rows are the calibration rows and the project file's ``heldout`` rows (those the rules were not written
against; its ``tune`` rows only ever train). What decides between settings is the ``criterion``: ``calibration`` (the
default, the issue's yardstick) takes the 3-class agreement on the calibration rows alone; ``both`` the mean of the
agreement on the calibration rows and on the project's held-out rows (each domain weighs the same). A judge chosen on
XSTest's five chat models alone fits their phrasing and falls far below the rules on the project's replies; ``both``
trades a little agreement on XSTest for a judge that holds on both (figures: ``emovec/data/judges/README.md``).

The figures are nested: in each outer fold the fit's settings (``FitSettings``: C, the weight of partial refusals,
the rule block's weight, the project rows' weight) are chosen by an inner grouped cross-validation on that fold's
training rows only, so every reported prediction comes from a model that never saw the prompt, nor chose its
settings on it. The shipped models' settings are then chosen the same way on all rows, and the models fitted on all
rows.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from emovec._progress import stage
from emovec.data import data_path
from emovec.errors import CorpusError
from emovec.evaluation.judges.accuracy import LABELLED_FILE, baseline_refusal, load_labelled
from emovec.evaluation.judges.refusal import LABELS, RefusalLabel, judge_refusal
from emovec.evaluation.judges.refusal_features import PairInputs, PromptLabel, pair_inputs, prompt_label_of
from emovec.evaluation.judges.refusal_figures import (
    LearningPoint,
    TrainingReport,
    accuracy_figure,
    judge_figures,
    paired_differences,
)
from emovec.evaluation.judges.refusal_learned import (
    MODES,
    FeatureConfig,
    Featurizer,
    FitSettings,
    LearnedRefusalJudge,
    Mode,
    RefusalModel,
    baseline_config,
    fit_classifier,
    mode_config,
)

SETTINGS_GRID: tuple[FitSettings, ...] = tuple(
    FitSettings(C=32.0, partial_weight=w, block_weights={"rules": r}, project_weight=p)
    for w in (1.0, 2.0) for r in (0.0, 0.3) for p in (0.0, 0.3, 1.0))
BASELINE_GRID: tuple[FitSettings, ...] = tuple(FitSettings(C=c, project_weight=p) for c in (4.0, 16.0, 64.0)
                                               for p in (0.0, 1.0))
CALIBRATION_COLUMNS = ("prompt", "completion", "label", "id", "prompt_label")
LEARNING_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
Criterion = Literal["both", "calibration"]


class TrainingError(CorpusError):
    """Training rows that cannot be used (a missing column, an unknown label)."""


@dataclass(frozen=True)
class TrainingRow:
    """One labelled reply: its prompt, harm label, prompt group and where it comes from."""

    prompt: str
    reply: str
    label: RefusalLabel
    prompt_label: PromptLabel
    group: str
    origin: Literal["calibration", "project"]
    model: str = ""
    type: str = ""
    split: str = ""  # a project row's split (tune / heldout)


def prompt_key(prompt: str) -> str:
    """A prompt's words, lower-cased, without punctuation: two rows with the same key share a prompt."""
    return re.sub(r"\W+", " ", prompt.lower()).strip()


def _label(value: str, where: str) -> RefusalLabel:
    for label in LABELS:
        if value.strip() == label:
            return label
    raise TrainingError(f"{where}: unknown label {value!r}; accepted: {', '.join(LABELS)}")


def calibration_rows(table: Sequence[dict[str, Any]], where: str) -> list[TrainingRow]:
    """Rows of an XSTest-format labelled table (see the module docs); the prompt id is the group."""
    missing = [c for c in CALIBRATION_COLUMNS if c not in table[0]]
    if missing:
        raise TrainingError(f"{where} lacks the column(s) {', '.join(missing)} "
                            f"(needs {', '.join(CALIBRATION_COLUMNS)})")
    return [TrainingRow(prompt=str(r["prompt"]), reply=str(r["completion"] or ""),
                        label=_label(str(r["label"]), f"{where} row {i + 1}"),
                        prompt_label=prompt_label_of(r["prompt_label"]), group=f"xstest:{r['id']}",
                        origin="calibration", model=str(r.get("model") or ""), type=str(r.get("type") or ""))
            for i, r in enumerate(table)]


def _suite_label(source: str) -> PromptLabel:
    suite = source.rsplit("/", 1)[-1]
    return "unsafe" if suite in ("harmful", "redteam") else "safe" if suite == "benign" else "unknown"


def project_rows(calibration: Sequence[TrainingRow]) -> list[TrainingRow]:
    """The project's labelled file as training rows, grouped with a calibration prompt of the same words."""
    groups = {prompt_key(r.prompt): r.group for r in calibration}
    return [TrainingRow(prompt=r.prompt, reply=r.reply, label=r.label, prompt_label=_suite_label(r.source),
                        group=groups.get(prompt_key(r.prompt), f"project:{prompt_key(r.prompt)}"), origin="project",
                        model=r.source, type=r.family, split=r.split)
            for r in load_labelled()]


@dataclass
class Dataset:
    """Training rows with their features computed once (``PairInputs``)."""

    rows: list[TrainingRow]
    inputs: list[PairInputs]
    criterion: Criterion = "calibration"

    @classmethod
    def build(cls, rows: Sequence[TrainingRow], criterion: Criterion = "calibration") -> Dataset:
        return cls(list(rows), [pair_inputs(r.prompt, r.reply) for r in rows], criterion)

    def subset(self, idx: NDArray[np.int64]) -> Dataset:
        return Dataset([self.rows[i] for i in idx], [self.inputs[i] for i in idx], self.criterion)

    @property
    def project_scored(self) -> NDArray[np.bool_]:
        """The project rows cross-validation scores: its held-out split."""
        return np.asarray([r.origin == "project" and r.split == "heldout" for r in self.rows])

    @property
    def scored(self) -> NDArray[np.bool_]:
        """The rows cross-validation scores: the calibration rows and the ``project_scored`` ones."""
        return self.calibration | self.project_scored

    @property
    def y(self) -> NDArray[np.str_]:
        return np.asarray([r.label for r in self.rows])

    @property
    def groups(self) -> NDArray[np.str_]:
        return np.asarray([r.group for r in self.rows])

    @property
    def calibration(self) -> NDArray[np.bool_]:
        return np.asarray([r.origin == "calibration" for r in self.rows])

    def weights(self, idx: NDArray[np.int64], settings: FitSettings) -> NDArray[np.float64]:
        """Sample weights of rows ``idx``: 1 for calibration rows, ``settings.project_weight`` for project rows."""
        return np.where(self.calibration[idx], 1.0, settings.project_weight)

    def used(self, idx: NDArray[np.int64], settings: FitSettings) -> NDArray[np.int64]:
        """The rows of ``idx`` a fit under ``settings`` learns from: project rows only at a positive weight (so their
        n-grams do not enter the vocabularies when they weigh nothing)."""
        return idx if settings.project_weight > 0 else idx[self.calibration[idx]]

    def fit(self, idx: NDArray[np.int64], config: FeatureConfig, settings: FitSettings) -> RefusalModel:
        """A model fitted on rows ``idx`` (those ``used``), weighted by ``weights``."""
        rows = self.used(idx, settings)
        return RefusalModel.fit(*self.take(rows), self.y[rows], config, settings, self.weights(rows, settings))

    def take(self, idx: NDArray[np.int64]) -> tuple[list[PairInputs], list[PromptLabel]]:
        return [self.inputs[i] for i in idx], [self.rows[i].prompt_label for i in idx]


def grouped_folds(groups: NDArray[np.str_], scored: NDArray[np.bool_], k: int, seed: int,
                  ) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """``(train, test)`` row indices: the groups of the ``scored`` rows split into ``k`` folds (``GroupKFold``,
    shuffled by ``seed``); a fold tests its scored rows and trains on every row outside its groups."""
    scored_groups = np.unique(groups[scored])
    if len(scored_groups) < k:
        raise TrainingError(f"{len(scored_groups)} prompt groups to score; {k}-fold cross-validation needs {k}")
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for _, test_g in splitter.split(scored_groups, groups=scored_groups):
        in_test = np.isin(groups, scored_groups[test_g])
        out.append((np.flatnonzero(~in_test), np.flatnonzero(in_test & scored)))
    return out


def grid_predictions(data: Dataset, train: NDArray[np.int64], test: NDArray[np.int64], config: FeatureConfig,
                     grid: Sequence[FitSettings]) -> list[NDArray[np.str_]]:
    """Predictions on ``test`` of a model fitted on ``train`` under each of the ``grid``'s settings (a featurizer is
    fitted once per set of rows used, on training rows only; block weights only rescale its blocks)."""
    featurizers: dict[bool, Featurizer] = {}
    matrices: dict[tuple[bool, tuple[tuple[str, float], ...]], tuple[Any, Any]] = {}
    out = []
    for settings in grid:
        rows, project = data.used(train, settings), settings.project_weight > 0
        if project not in featurizers:
            featurizers[project] = Featurizer(config).fit(*data.take(rows))
        key = (project, settings.weights_key())
        if key not in matrices:
            featurizer = featurizers[project]
            featurizer.config = settings.weigh(config)
            matrices[key] = (featurizer.transform(*data.take(rows)), featurizer.transform(*data.take(test)))
        X_train, X_test = matrices[key]
        clf = fit_classifier(X_train, data.y[rows], settings, data.weights(rows, settings))
        out.append(clf.predict(X_test))
    return out


def select_settings(data: Dataset, idx: NDArray[np.int64], config: FeatureConfig, grid: Sequence[FitSettings],
                    k: int, seed: int) -> tuple[FitSettings, list[float]]:
    """The settings with the best score over a grouped ``k``-fold cross-validation within rows ``idx`` (the mean of
    the 3-class agreement on each scored domain; see the module docs; ties: the earlier in ``grid``); also each
    setting's score."""
    sub = data.subset(idx)
    pred = [np.full(len(sub.rows), "", dtype=object) for _ in grid]
    for train, test in grouped_folds(sub.groups, sub.scored, k, seed):
        for j, p in enumerate(grid_predictions(sub, train, test, config, grid)):
            pred[j][test] = p
    scores = [domain_score(sub, np.asarray(p, dtype=str)) for p in pred]
    return grid[int(np.argmax(scores))], scores


def domain_score(data: Dataset, pred: NDArray[np.str_]) -> float:
    """The criterion's score: 3-class agreement on the calibration rows, or (``both``) its mean with that on the
    scored project rows where there are any."""
    right = pred == data.y
    domains = [data.calibration, *([data.project_scored] if data.criterion == "both" else [])]
    domains = [m for m in domains if m.any()]
    return float(np.mean([right[m].mean() for m in domains]))


@dataclass
class CrossValidated:
    """Out-of-fold predictions for the scored rows, and the settings each outer fold chose."""

    predictions: NDArray[np.str_]  # over all rows; empty string for rows never scored
    scores: NDArray[np.float64]  # P(any refusal), NaN where not scored
    chosen: list[FitSettings]


def nested_predictions(data: Dataset, config: FeatureConfig, grid: Sequence[FitSettings], k: int, inner_k: int,
                       seed: int) -> CrossValidated:
    """Outer grouped folds; in each, settings chosen by an inner grouped cross-validation on its training rows."""
    pred = np.full(len(data.rows), "", dtype=object)
    score = np.full(len(data.rows), math.nan)
    chosen = []
    for train, test in grouped_folds(data.groups, data.scored, k, seed):
        settings, _ = select_settings(data, train, config, grid, inner_k, seed + 1)
        model = data.fit(train, config, settings)
        proba = model.proba(*data.take(test))
        pred[test] = [LABELS[i] for i in proba.argmax(axis=1)]
        score[test] = 1.0 - proba[:, LABELS.index("full_compliance")]
        chosen.append(settings)
    return CrossValidated(np.asarray(pred, dtype=str), score, chosen)


def subsample_groups(train: NDArray[np.int64], data: Dataset, share: float, with_project: bool,
                     rng: np.random.Generator) -> NDArray[np.int64]:
    """A fold's training rows with only ``share`` of its calibration prompts (drawn by ``rng``), and the project
    rows unless ``with_project`` is false."""
    groups, calibration = data.groups[train], data.calibration[train]
    cal_groups = np.unique(groups[calibration])
    keep = rng.permutation(cal_groups)[: round(share * len(cal_groups))]
    mask = (calibration & np.isin(groups, keep)) | (~calibration & with_project)
    return train[mask]


# --- training -----------------------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fit_final(data: Dataset, mode: Mode, k: int, seed: int, grid: Sequence[FitSettings] = SETTINGS_GRID,
              ) -> tuple[RefusalModel, list[float]]:
    """One mode's shipped model: settings chosen by grouped ``k``-fold CV on all rows, then fitted on all rows."""
    config = mode_config(mode)
    every = np.arange(len(data.rows))
    settings, accuracy = select_settings(data, every, config, grid, k, seed)
    return data.fit(every, config, settings), accuracy


def evaluate(data: Dataset, report: TrainingReport, modes: Sequence[Mode], learning_curve: bool,
             log: Callable[[str], None], grid: Sequence[FitSettings] = SETTINGS_GRID) -> None:
    """Fill ``report`` with the nested grouped-CV figures of string match, the rules, the n-gram baseline and each
    mode, the learned modes' paired differences from the others, and the learning curve."""
    cal, held = np.flatnonzero(data.calibration), np.flatnonzero(data.project_scored)
    rows = [data.rows[i] for i in cal]
    predictions: dict[str, list[str]] = {}

    def add(name: str, pred: NDArray[np.str_], score: NDArray[np.float64] | None = None,
            chosen: Sequence[FitSettings] = ()) -> None:
        predictions[name] = pred[cal].tolist()
        figures = judge_figures(name, rows, predictions[name], None if score is None else score[cal].tolist(), chosen)
        if len(held):
            figures.project_heldout = accuracy_figure(data.y[held].tolist(), pred[held].tolist())
        report.judges.append(figures)

    add("string match", np.asarray([baseline_refusal(r.reply) for r in data.rows]))
    add("rules", np.asarray([judge_refusal(r.reply).label for r in data.rows]))
    k, inner, seed = report.folds, report.inner_folds, report.seed
    for name, config, choices in [("n-gram LR", baseline_config(), BASELINE_GRID),
                                  *[(f"learned ({m})", mode_config(m), grid) for m in modes]]:
        start = time.perf_counter()
        cv = nested_predictions(data, config, choices, k, inner, seed)
        add(name, cv.predictions, cv.scores, cv.chosen)
        held_text = "" if report.judges[-1].project_heldout is None else (
            f"; project held-out {report.judges[-1].project_heldout.three_class.fmt()}")
        log(f"{name}: {report.judges[-1].overall.three_class.fmt()} 3-class, "
            f"{report.judges[-1].overall.binary.fmt()} binary{held_text} ({time.perf_counter() - start:.0f}s)")
    report.paired = paired_differences(rows, predictions, [f"learned ({m})" for m in modes], seed)
    if learning_curve:
        report.learning_curve = learning_points(data, report, modes[-1], log)


def learning_points(data: Dataset, report: TrainingReport, mode: Mode, log: Callable[[str], None],
                    ) -> list[LearningPoint]:
    """Grouped-CV agreement of ``mode`` and the n-gram baseline on the calibration rows against the share of
    calibration prompts each fold trains on, without and with the project rows (at their chosen weight, or 1 where
    that is 0), at the settings chosen on all rows otherwise."""
    points = []
    judges = [(f"learned ({mode})", mode_config(mode), report.final_settings[mode]),
              ("n-gram LR", baseline_config(), _baseline_settings(report))]
    plan = [(s, False) for s in LEARNING_SHARES if s > 0]
    if not data.calibration.all():
        plan += [(s, True) for s in LEARNING_SHARES]
    for name, config, chosen in judges:
        for share, with_project in plan:
            settings = chosen.model_copy(update={"project_weight": (chosen.project_weight or 1.0) if with_project
                                                 else 0.0})
            rng = np.random.default_rng(report.seed)
            truth, pred, sizes = [], [], []
            for train, test in grouped_folds(data.groups, data.calibration, report.folds, report.seed):
                used = data.used(subsample_groups(train, data, share, with_project, rng), settings)
                truth += data.y[test].tolist()
                pred += data.fit(used, config, settings).predict(*data.take(test))
                sizes.append(len(used))
            points.append(LearningPoint(judge=name, share=share, project=with_project, rows=float(np.mean(sizes)),
                                        figure=accuracy_figure(truth, pred)))
            log(f"learning curve {name} share {share} project {with_project}: "
                f"{points[-1].figure.three_class.fmt()}")
    return points


def _baseline_settings(report: TrainingReport) -> FitSettings:
    """The baseline's most often chosen settings over the outer folds (C=16 when it was not evaluated)."""
    chosen = next((j.chosen for j in report.judges if j.judge == "n-gram LR"), [])
    if not chosen:
        return FitSettings()
    keys = [(s.C, s.project_weight) for s in chosen]
    c, project = max(sorted(set(keys)), key=keys.count)
    return FitSettings(C=c, project_weight=project)


def train_judge(calibration: Sequence[dict[str, Any]], where: str, *, seed: int = 0, folds: int = 5,
                inner_folds: int = 4, evaluate_cv: bool = True, learning_curve: bool = True,
                modes: Sequence[Mode] = MODES, project: bool = True, grid: Sequence[FitSettings] = SETTINGS_GRID,
                criterion: Criterion = "calibration", source: Path | None = None,
                log: Callable[[str], None] = lambda _: None,
                show_progress: bool = False) -> tuple[LearnedRefusalJudge, TrainingReport]:
    """Fit the learned judge's modes on the calibration table plus the project's file, and measure it.

    Args:
        calibration: rows of the XSTest-format calibration table (see the module docs).
        where: the table's name, for messages.
        seed: seeds every fold split and subsample (the fits are deterministic).
        folds, inner_folds: outer and inner grouped cross-validation folds.
        evaluate_cv: measure every judge by nested grouped cross-validation (minutes); else only fit.
        learning_curve: also the learning curve (with ``evaluate_cv``).
        modes: the modes to fit (all three by default).
        project: also train on the project's labelled file (whether its rows weigh anything is chosen by CV).
        grid: the settings the cross-validations choose among.
        criterion: ``calibration`` (the calibration rows alone) or ``both`` (the calibration rows and the project
            file's held-out rows weigh the same) decides between settings; see the module docs.
        source: the calibration file, to record its SHA-256.
        log: a line per fitted mode and per judge measured, with its figures.
        show_progress: report the fits and the cross-validation as stages (a bar in a terminal, else one line each).
    """
    start = time.perf_counter()
    with threadpool_limits(limits=1):  # small fits: threaded BLAS only adds contention
        cal = calibration_rows(calibration, where)
        data = Dataset.build([*cal, *(project_rows(cal) if project else [])], criterion)
        report = TrainingReport(seed=seed, folds=folds, inner_folds=inner_folds, criterion=criterion,
                                calibration_rows=len(cal),
                                project_rows=len(data.rows) - len(cal), prompt_groups=len(set(data.groups)))
        models: dict[Mode, RefusalModel] = {}
        with stage("judge train/fit", len(modes), unit="modes", detail=f"{len(data.rows)} rows",
                   show=show_progress) as advance:
            for mode in modes:
                models[mode], report.selection_accuracy[mode] = fit_final(data, mode, folds, seed, grid)
                report.final_settings[mode] = models[mode].settings
                log(f"fitted {mode}: {models[mode].settings}")
                advance()
        if evaluate_cv:
            with stage("judge train/nested CV", detail=f"{2 + len(modes)} judges, {folds} folds",
                       show=show_progress):
                evaluate(data, report, modes, learning_curve, log, grid)
    report.seconds = time.perf_counter() - start
    provenance = {"calibration": where, "calibration_rows": len(cal), "project_rows": report.project_rows,
                  "calibration_sha256": sha256_of(source) if source else None,
                  "project_file_sha256": sha256_of(data_path(LABELLED_FILE)) if project else None, "seed": seed,
                  "folds": folds, "inner_folds": inner_folds, "criterion": criterion,
                  "settings": {m: s.model_dump() for m, s in report.final_settings.items()},
                  "cv": {j.judge: {"three_class": j.overall.three_class.value, "binary": j.overall.binary.value,
                                   "project_heldout_three_class": None if j.project_heldout is None
                                   else j.project_heldout.three_class.value} for j in report.judges}}
    return LearnedRefusalJudge(models, provenance), report
