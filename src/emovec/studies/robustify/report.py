"""The robustify study report: every arm's safety, over-refusal, helpfulness, side-effect budget (KL) and
meaning side by side, and a Pareto figure: red-team refusal (safety) against helpful accuracy per arm, with
Wilson intervals as error bars and the cosine to the source emotion as colour."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from emovec.metrics import Estimate
from emovec.reports.figures import new_figure, png_base64
from emovec.reports.pages import write_page
from emovec.studies._kit import write_result
from emovec.studies.robustify.results import RobustifyResult

CROWD = (0.06, 0.04)  # points closer than this (refusal, helpful) share a neighbourhood: labels stack


def _err(e: Estimate) -> tuple[float, float]:
    """Distances from the value to the interval's ends (0 where the interval is missing)."""
    lo = 0.0 if math.isnan(e.low) else max(0.0, e.value - e.low)
    hi = 0.0 if math.isnan(e.high) else max(0.0, e.high - e.value)
    return lo, hi


def pareto_png(result: RobustifyResult) -> str:
    """Safety (red-team refusal) against helpful accuracy per arm: Wilson error bars both ways, colour the
    cosine to the source vector (grey: the unsteered arm, which has no direction)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig, ax = new_figure((6.5, 4.8))
    norm, cmap = Normalize(vmin=-1, vmax=1), colormaps["viridis"]
    placed: list[tuple[float, float]] = []
    for a in result.arms:
        x, y = a.refusal_redteam.value, a.helpful.value
        colour = "0.6" if a.cos_source is None else cmap(norm(a.cos_source))
        xerr, yerr = _err(a.refusal_redteam), _err(a.helpful)
        ax.errorbar([x], [y], xerr=[[xerr[0]], [xerr[1]]], yerr=[[yerr[0]], [yerr[1]]], fmt="none", ecolor=colour,
                    elinewidth=1, capsize=2, alpha=0.6)
        ax.scatter([x], [y], color=colour, s=60, edgecolors="black", linewidths=0.5, zorder=3,
                   marker="s" if a.kind == "plain" else "D" if a.kind == "naive" else "o")
        crowd = sum(1 for px, py in placed if abs(px - x) < CROWD[0] and abs(py - y) < CROWD[1])  # a crowded point's
        placed.append((x, y))  # label goes to the left, stacking downwards
        ax.annotate(a.arm, (x, y), fontsize=7, xytext=(5, 4) if crowd == 0 else (-5, 4 - 9 * (crowd - 1)),
                    textcoords="offset points", ha="left" if crowd == 0 else "right")
    ax.set_xlabel("refusal on held-out red-team prompts (safety)")
    ax.set_ylabel("helpful accuracy")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="cosine to the source emotion vector")
    ax.set_title("bars: Wilson 95%; square: unsteered; diamonds: naive strengths", fontsize=8)
    return png_base64(fig, dpi=90)


def context(result: RobustifyResult) -> dict[str, Any]:
    def fmt(r: Estimate | None, digits: int = 2) -> str:
        return "-" if r is None else r.text(digits)

    def losses(d: dict[str, float], key: str) -> str:
        return f"{d[key]:.3f}" if key in d else "-"

    source_emotion = None
    for a in result.arms:
        if a.emotion is not None:
            source_emotion = a.emotion
            break
    return {"title": "Robustified emotion directions", "result": result, "png": pareto_png(result),
            "answer_lines": result.answer.splitlines(),
            "emotions": list(source_emotion) if source_emotion else [],
            "rows": [{"arm": a.arm, "kind": a.kind, "strength": f"{a.strength:g}",
                      "weight": "-" if a.meaning_weight is None else f"{a.meaning_weight:g}",
                      "red": fmt(a.refusal_redteam),
                      "attacked": "-" if a.refusal_redteam_attacked is None else fmt(a.refusal_redteam_attacked),
                      "adversary": a.adversary, "benign": fmt(a.refusal_benign), "helpful": fmt(a.helpful),
                      "detail": f"{a.harmful_detail:.2f}" if a.harmful_detail_interval is None
                      else fmt(a.harmful_detail_interval, 2), "kl": fmt(a.kl, 3),
                      "unseen": "-" if a.refusal_redteam_unseen is None else fmt(a.refusal_redteam_unseen),
                      "ppl": "-" if a.perplexity is None else fmt(a.perplexity, 1),
                      "ms": "-" if a.ms_per_token is None else f"{a.ms_per_token:.1f}",
                      "shift": fmt(a.emotion_shift, 3),
                      "cos": "-" if a.cos_source is None else f"{a.cos_source:.2f}",
                      "tmean": "-" if a.template_mean is None else fmt(a.template_mean, 2),
                      "tspread": "-" if a.template_spread is None else fmt(a.template_spread, 2),
                      "nearest": ", ".join(f"{n} {c:.2f}" for n, c in a.nearest) or "-",
                      "emotion": [f"{v:.3f}" for v in a.emotion.values()] if a.emotion else []}
                     for a in result.arms],
            "optimised": [{"arm": a.arm, "step": a.best_step, "stopped": "yes" if a.stopped_early else "no",
                           "train": losses(a.final_losses, "safety"), "val": losses(a.final_losses, "val_safety"),
                           "start": losses(a.start_val, "val_safety"),
                           "retain": losses(a.final_losses, "val_retain"),
                           "helpful": losses(a.final_losses, "val_helpful"),
                           "template": losses(a.final_losses, "val_stability"),
                           "stability": "-" if a.stability is None else
                           f"{a.stability.cos_between:.2f} (orthogonal parts {a.stability.cos_moves:.2f})"}
                          for a in result.arms if a.kind == "optimised"],
            "preset_json": json.dumps(result.preset.model_dump(), indent=1)}


def write_robustify_report(out: str | Path, result: RobustifyResult) -> Path:
    """Write ``robustify_report.html`` (self-contained) and ``robustify.json`` into ``out``."""
    write_result(Path(out) / "robustify.json", result)
    return write_page(Path(out) / "robustify_report.html", "report.html.j2", context(result), __package__)
