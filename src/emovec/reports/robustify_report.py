"""The robustify study report: every arm's safety, over-refusal, helpfulness and meaning side by side, and
a safety-vs-helpfulness plot with meaning (cosine to the source emotion) as colour."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emovec.reports.figures import new_figure, png_base64
from emovec.reports.pages import write_result_page
from emovec.studies.robustify import RobustifyResult


def pareto_png(result: RobustifyResult) -> str:
    fig, ax = new_figure((5.5, 4))
    xs = [a.refusal_redteam.value for a in result.arms]
    ys = [a.helpful.value for a in result.arms]
    points = ax.scatter(xs, ys, c=[a.cos_source for a in result.arms], cmap="viridis", vmin=-1, vmax=1, s=60)
    for a, x, y in zip(result.arms, xs, ys, strict=True):
        ax.annotate(a.arm, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("refusal on held-out red-team prompts")
    ax.set_ylabel("helpful accuracy")
    fig.colorbar(points, ax=ax, label="cosine to the source emotion vector")
    return png_base64(fig, dpi=90)


def context(result: RobustifyResult) -> dict[str, Any]:
    def fmt(r: Any) -> str:
        return f"{r.value:.2f} [{r.low:.2f}, {r.high:.2f}]"

    return {"title": "Robustified emotion directions", "result": result, "png": pareto_png(result),
            "answer_lines": result.answer.splitlines(),
            "rows": [{"arm": a.arm, "weight": "-" if a.meaning_weight is None else f"{a.meaning_weight:g}",
                      "red": fmt(a.refusal_redteam), "benign": fmt(a.refusal_benign), "helpful": fmt(a.helpful),
                      "detail": f"{a.harmful_detail:.2f}", "cos": f"{a.cos_source:.2f}",
                      "nearest": ", ".join(f"{n} {c:.2f}" for n, c in a.nearest) or "-"} for a in result.arms],
            "preset_json": json.dumps(result.preset.model_dump(), indent=1)}


def write_robustify_report(out: str | Path, result: RobustifyResult) -> Path:
    """Write ``robustify_report.html`` (self-contained) and ``robustify.json`` into ``out``."""
    return write_result_page(out, result, "robustify.json", "robustify_report.html", "robustify.html.j2",
                             context(result))
