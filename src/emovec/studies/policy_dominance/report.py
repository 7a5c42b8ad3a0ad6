"""The policy-dominance study report: one HTML page with plots, drawn from the study's typed ``StudyReport``.

The study (``emovec.studies.policy_dominance.run``) computes every number; the overview's split-half, template and
modularity means are the ones its verdict criteria use, read from there rather than computed again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emovec.metrics import Estimate
from emovec.reports.figures import file_base64, new_figure, save_png
from emovec.reports.pages import write_page
from emovec.studies.policy_dominance.results import ModelResult, StudyReport

Getter = Callable[[ModelResult, str], Estimate]


def _est(e: Estimate | None, digits: int = 2) -> str:
    if e is None or e.n == 0 or not math.isfinite(e.value):
        return "n/a"
    if math.isfinite(e.low) and math.isfinite(e.high):
        return e.fmt(digits)
    return f"{e.value:.{digits}f}"


def _num(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "n/a"


def _bars(models: dict[str, ModelResult], getter: Getter, title: str, path: Path,
          ylim: tuple[float, float] | None = None) -> Path:
    names = list(models)
    keys = list(next(iter(models.values())).key_vectors.values())
    fig, ax = new_figure((1.2 + 1.1 * len(keys), 3.2))
    width = 0.8 / max(len(names), 1)
    for i, m in enumerate(names):
        ests = [getter(models[m], k) for k in keys]
        vals = [e.value for e in ests]
        err = np.array([[e.value - e.low for e in ests], [e.high - e.value for e in ests]])
        # a percentile interval need not hold its point estimate (a skewed statistic): draw no negative whisker
        ax.bar(np.arange(len(keys)) + i * width, vals, width, yerr=np.clip(np.nan_to_num(err), 0, None), label=m,
               capsize=2)
    ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, keys, rotation=20, fontsize=8)
    ax.set_title(title, fontsize=10)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=7)
    return save_png(fig, path)


def _dose(models: dict[str, ModelResult], path: Path) -> Path:
    fig, axes = new_figure((4 * len(models), 3), 1, len(models), squeeze=False)
    for ax, (name, res) in zip(axes[0], models.items(), strict=True):
        for key, c in res.causal_influence.items():
            ax.plot(c.strengths, c.mean_by_strength, marker="o", label=key)
        ax.set_title(f"{name}: refusal log-odds", fontsize=9)
        ax.set_xlabel("strength", fontsize=8)
        ax.legend(fontsize=6)
    return save_png(fig, path)


def _matrix(res: ModelResult, path: Path) -> Path:
    mod = res.modularity
    names = mod.names
    m = np.array([[e.value for e in row] for row in mod.matrix])
    fig, ax = new_figure((1.5 + 0.6 * len(names), 1.2 + 0.6 * len(names)))
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("readout change", fontsize=8)
    ax.set_ylabel("steered vector", fontsize=8)
    ax.set_title(res.model, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.7)
    return save_png(fig, path)


def draw_figures(models: dict[str, ModelResult], folder: Path) -> dict[str, Any]:
    """Every figure of the page as PNG files in ``folder``; returns them as base64 text for inlining."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {
        "split": _bars(models, lambda r, k: r.stability.split_half[k], "split-half cosine",
                       folder / "split.png", (0, 1.05)),
        "auc": _bars(models, lambda r, k: r.stability.readout_auc[k], "held-out readout AUC",
                     folder / "auc.png", (0, 1.05)),
        "modularity": _bars(models, lambda r, k: r.modularity.index[k], "modularity index (target / total)",
                            folder / "modularity.png", (0, 1.05)),
        "dose": _dose(models, folder / "dose.png"),
    }
    matrices = [_matrix(r, folder / f"matrix_{i}.png") for i, r in enumerate(models.values())]
    return {**{k: file_base64(p) for k, p in paths.items()}, "matrices": [file_base64(p) for p in matrices]}


def _overview_row(name: str, res: ModelResult) -> list[Any]:
    means = res.overview  # computed once, by the study
    verdict = res.verdict.text if res.verdict else ""
    if means is None:
        return [name, res.policy_level, res.layer, *["n/a"] * 6, _est(res.steering_value.value),
                _est(res.monitoring_value.value), verdict]
    return [name, res.policy_level, res.layer, _num(means.mean_split_half_cosine),
            _num(means.mean_split_half_null_high), _num(means.mean_template_cosine),
            _num(means.mean_readout_auc), _num(means.mean_modularity_index), _num(means.mean_abs_refusal_slope),
            _est(res.steering_value.value), _est(res.monitoring_value.value), verdict]


def _criteria_rows(res: ModelResult) -> list[list[Any]]:
    if res.verdict is None:
        return []
    return [[k, c.met, ", ".join(f"{a}={b:.3f}" for a, b in c.figures.items()), c.rule]
            for k, c in res.verdict.criteria.items()]


def _target_readout(res: ModelResult, name: str) -> str:
    mod = res.modularity
    i = mod.names.index(name) if name in mod.names else None
    return "n/a" if i is None else _est(mod.matrix[i][i], 3)


def _target_judge(res: ModelResult, name: str) -> str:
    est = res.modularity.judge_target.get(name)
    return "skipped" if est is None else _est(est)


def _vector_row(res: ModelResult, k: str) -> list[Any]:
    stab, causal, off = res.stability, res.causal_influence[k], res.modularity.off_target[k]
    null = "not measured" if stab.split_half_null is None else _est(stab.split_half_null[k])
    return [k, _est(stab.split_half[k]), null, _est(stab.resample[k]), _est(stab.readout_auc[k]),
            _est(res.modularity.index[k]), _target_readout(res, k), _target_judge(res, k),
            _est(causal.slope), f"{causal.wrong_way:.2f}", f"{off['refuse_harmful_change']:+.2f}",
            f"{off['kl_benign']:.3f}", f"{off['length_change']:+.1f}"]


def _model_section(name: str, res: ModelResult) -> dict[str, Any]:
    sv, mv = res.steering_value, res.monitoring_value
    return {"name": name, "verdict": res.verdict.text if res.verdict else "", "criteria": _criteria_rows(res),
            "vectors": [_vector_row(res, k) for k in res.key_vectors.values()],
            "judge_status": str(res.modularity.judge_status),
            "best_control": str(sv.best_control), "best_emotion": str(sv.best_emotion),
            "steering_note": sv.note, "n_unsafe": mv.n_unsafe, "n_watched": mv.n,
            "monitoring_note": mv.note}


def study_context(report: StudyReport, figures: dict[str, Any]) -> dict[str, Any]:
    """What ``study.html.j2`` shows, from the study's typed report and its figures.

    Example:
        >>> ctx = study_context(report, draw_figures(report.models, Path("runs/study/figures")))
        >>> len(ctx["overview"]) == len(report.models)
        True
    """
    models = report.models
    return {"title": "emovec: policy dominance", "preset": report.preset,
            "key_vectors": list(report.key_vectors.items()), "version": report.emovec_version,
            "plan_json": json.dumps(report.plan), "family_note": report.family_note,
            "overview": [_overview_row(n, r) for n, r in models.items()], "figures": figures,
            "models": [_model_section(n, r) for n, r in models.items()]}


def write_study_report(out: str | Path, report: StudyReport) -> Path:
    """Draw the figures and write ``report.html`` (the JSON is written by the study).

    Args:
        out: the study folder (figures go to ``out/figures``).
        report: the study's report (``StudyReport.model_validate_json`` reads a ``report.json`` back).

    Example:
        >>> report = StudyReport.model_validate_json(Path("runs/study/report.json").read_text())
        >>> write_study_report("runs/study", report)
        PosixPath('runs/study/report.html')
    """
    root = Path(out)
    figures = draw_figures(report.models, root / "figures")
    return write_page(root / "report.html", "report.html.j2", study_context(report, figures), __package__)
