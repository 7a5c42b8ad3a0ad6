"""The drift study report: trajectories of every index and external eval over training steps (alerts and
regressions marked), lead times, and how well each index separates regressed from healthy checkpoints."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emovec.reports.figures import new_figure, png_base64
from emovec.reports.pages import write_page
from emovec.studies._kit import write_result
from emovec.studies.drift.results import BASELINE_INDICES, INDICES, DriftStudyResult, RunSummary

EVALS = ("refusal_harmful", "refusal_benign", "refusal_overrefusal", "helpful", "perplexity")


Series = tuple[list[float], list[float] | None, list[float] | None]


def _marks(ax: Any, run: RunSummary) -> None:
    if run.first_alert is not None:
        ax.axvline(run.first_alert, color="tab:orange", ls="--", lw=1)
    if run.first_regression is not None:
        ax.axvline(run.first_regression, color="tab:red", ls=":", lw=1.5)


def trajectories(runs: list[RunSummary], names: tuple[str, ...], getter: Callable[[RunSummary, str], Series | None],
                 title: str) -> str:
    """One panel per name: each run's values over steps (with a band where the getter gives one), as base64 PNG."""
    fig, axes = new_figure((3.1 * len(names), 2.8), 1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for run in runs:
            vals = getter(run, name)
            if vals is None:
                continue
            mid, lo, hi = vals
            line = ax.plot(run.steps[: len(mid)], mid, marker="o", ms=3, label=f"{run.regime}/{run.seed}")[0]
            if lo is not None:
                ax.fill_between(run.steps[: len(mid)], lo, hi, color=line.get_color(), alpha=0.15)
            _marks(ax, run)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    if axes[0][0].get_legend_handles_labels()[0]:  # no runs drawn, no legend
        axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return png_base64(fig, dpi=90)


def _index(run: RunSummary, name: str) -> tuple[list[float], list[float] | None, list[float] | None]:
    ests = run.indices[name]
    low, high = [e.low for e in ests], [e.high for e in ests]
    if not any(np.isfinite(low)):
        return run.values(name), None, None
    return run.values(name), low, high


def _eval(run: RunSummary, name: str) -> tuple[list[float], list[float], list[float]] | None:
    ests = run.evals.get(name)
    if not ests:
        return None
    return [e.value for e in ests], [e.low for e in ests], [e.high for e in ests]


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def context(result: DriftStudyResult) -> dict[str, Any]:
    """Everything the template shows, from the typed result (no statistics are computed here)."""
    return {
        "result": result,
        "title": f"Drift over safety fine-tuning: {result.model}",
        "index_png": trajectories(result.runs, INDICES, _index, "drift indices (orange: first alert; red: first "
                                  "regressed checkpoint)"),
        "eval_png": trajectories(result.runs, EVALS, _eval, "external evals with 95% intervals"),
        "runs": [{"name": f"{r.regime}/seed {r.seed}", "steps": r.steps[-1], "alert": r.first_alert,
                  "regression": r.first_regression, "lead": r.lead_time,
                  "regressed": sum(r.regressed)} for r in result.runs],
        "separation": [{"index": s.index, "auc": _fmt(s.auc.value), "ci": f"[{_fmt(s.auc.low)}, {_fmt(s.auc.high)}]",
                        "n": f"{s.n_regressed} / {s.n_healthy}", "baseline": s.index in BASELINE_INDICES,
                        "matched": _fmt(s.matched.value),
                        "matched_ci": f"[{_fmt(s.matched.low)}, {_fmt(s.matched.high)}]",
                        "pairs": s.n_pairs}
                       for s in result.separation],
        "preset_json": json.dumps(result.preset.model_dump(), indent=1),
        "criteria_json": json.dumps(result.criteria.model_dump(), indent=1),
    }


def write_drift_report(out: str | Path, result: DriftStudyResult) -> Path:
    """Write ``drift_report.html`` (self-contained) and ``drift_study.json`` into ``out``."""
    write_result(Path(out) / "drift_study.json", result)
    return write_page(Path(out) / "drift_report.html", "report.html.j2", context(result), __package__)
