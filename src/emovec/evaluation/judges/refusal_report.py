"""The Markdown tables of a ``TrainingReport`` (``emovec judge train --report``): every judge overall, per model and
per prompt type on the calibration half (grouped CV, 95% Wilson intervals), the learned judges' paired differences
from the others, the default judge's confusion matrix, the learning curve and the settings chosen."""

from __future__ import annotations

from collections.abc import Callable

from emovec.evaluation.judges.refusal import LABELS
from emovec.evaluation.judges.refusal_figures import AccuracyFigure, JudgeFigures, TrainingReport
from emovec.metrics import Estimate


def _cell(e: Estimate) -> str:
    return f"{e.value:.3f} [{e.low:.2f}, {e.high:.2f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in rows]]


def overall_table(report: TrainingReport) -> list[str]:
    """One row per judge: 3-class and binary agreement, and the calibration error of P(refusal) where known."""
    rows = [[j.judge, str(j.overall.n), _cell(j.overall.three_class), _cell(j.overall.binary),
             "" if j.calibration_error is None else f"{j.calibration_error:.3f}",
             "" if j.project_heldout is None else f"{_cell(j.project_heldout.three_class)} / "
                                                  f"{_cell(j.project_heldout.binary)}"] for j in report.judges]
    return _table(["judge", "replies", "3-class [95%]", "binary [95%]", "ECE of P(refusal)",
                   "project held-out: 3-class / binary"], rows)


def breakdown_table(report: TrainingReport, key: Callable[[JudgeFigures], dict[str, AccuracyFigure]],
                    metric: Callable[[AccuracyFigure], Estimate], what: str) -> list[str]:
    """Rows: the groups (models or prompt types); columns: the judges."""
    groups = sorted({g for j in report.judges for g in key(j)})
    rows = [[g, str(key(report.judges[0])[g].n), *[_cell(metric(key(j)[g])) for j in report.judges]] for g in groups]
    return _table([what, "n", *[j.judge for j in report.judges]], rows)


def paired_table(report: TrainingReport) -> list[str]:
    """Each learned judge minus each other judge, on the same replies (bootstrap over prompts)."""
    rows = [[p.judge, p.against, _signed(p.three_class), _signed(p.binary)] for p in report.paired]
    return _table(["judge", "minus", "3-class difference [95%]", "binary difference [95%]"], rows)


def _signed(e: Estimate) -> str:
    return f"{e.value:+.3f} [{e.low:+.3f}, {e.high:+.3f}]"


def confusion_table(figures: JudgeFigures) -> list[str]:
    """People's labels (rows) against the judge's (columns)."""
    rows = [[f"{t} ({sum(figures.confusion[t].values())})", *[str(figures.confusion[t][p]) for p in LABELS]]
            for t in LABELS]
    return _table(["people \\ judge", *LABELS], rows)


def learning_table(report: TrainingReport) -> list[str]:
    """The learning curve: share of calibration prompts per fold, with or without the project rows."""
    rows = [[p.judge, f"{p.share:.2f}", "yes" if p.project else "no", f"{p.rows:.0f}", _cell(p.figure.three_class),
             _cell(p.figure.binary)] for p in report.learning_curve]
    return _table(["judge", "share of calibration prompts", "project rows", "training rows", "3-class [95%]",
                   "binary [95%]"], rows)


def settings_table(report: TrainingReport) -> list[str]:
    """The settings of the shipped models (chosen by grouped CV on all rows) and those the outer folds chose."""
    rows = [[mode, f"{s.C:g}", f"{s.partial_weight:g}", f"{s.block_weights.get('rules', '-')}", f"{s.project_weight:g}"]
            for mode, s in report.final_settings.items()]
    return _table(["mode (shipped)", "C", "partial weight", "rules weight", "project weight"], rows)


def report_markdown(report: TrainingReport) -> str:
    """All the tables, with a line on how they were made."""
    default = next((j for j in reversed(report.judges) if j.judge.startswith("learned")), None)
    lines = [f"Calibration half: {report.calibration_rows} replies, {report.project_rows} project rows, "
             f"{report.prompt_groups} prompt groups; nested cross-validation grouped by prompt ({report.folds} outer "
             f"folds, {report.inner_folds} inner, seed {report.seed}); settings chosen on: {report.criterion}; 95% "
             f"Wilson intervals; {report.seconds:.0f}s.",
             "", "Overall:", "", *overall_table(report)]
    if report.judges:
        lines += ["", "3-class by model:", "", *breakdown_table(report, lambda j: j.per_model, lambda f: f.three_class,
                                                                 "model")]
        lines += ["", "Binary by model:", "", *breakdown_table(report, lambda j: j.per_model, lambda f: f.binary,
                                                                "model")]
        lines += ["", "3-class by prompt type:", "", *breakdown_table(report, lambda j: j.per_type,
                                                                       lambda f: f.three_class, "type")]
    if report.paired:
        lines += ["", "Paired differences (same replies; 95% bootstrap resampling whole prompts):", "",
                  *paired_table(report)]
    if default is not None:
        lines += ["", f"Confusion of {default.judge}:", "", *confusion_table(default)]
    if report.learning_curve:
        lines += ["", "Learning curve (settings fixed at the shipped ones):", "", *learning_table(report)]
    lines += ["", "Settings:", "", *settings_table(report)]
    return "\n".join(lines) + "\n"
