"""The paper-experiments report: intensity templates against random directions, top-activating human text,
activity preferences and how emotion readouts and steering track them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from emovec.metrics import Estimate
from emovec.reports.figures import new_figure, png_base64
from emovec.reports.pages import write_page
from emovec.studies._kit import write_result
from emovec.studies.paper.results import MIN_PARAPHRASES, TEXT_SOURCES, EmotionPreference, PaperResult


def steering_png(result: PaperResult) -> str | None:
    pts = [(e.r.value, e.shift, e.emotion) for e in result.preference_r if e.shift is not None]
    if not pts:
        return None
    fig, ax = new_figure((5, 4))
    # each emotion's shift with its interval over activities (a NaN bound draws no whisker)
    ax.errorbar([p[0] for p in pts], [p[1].value for p in pts],
                yerr=np.nan_to_num([[p[1].value - p[1].low for p in pts], [p[1].high - p[1].value for p in pts]]),
                fmt="none", ecolor="0.5", elinewidth=0.8)
    ax.scatter([p[0] for p in pts], [p[1].value for p in pts])
    if result.random_shifts:  # the range of shifts random directions of the same norm make
        ax.axhspan(min(result.random_shifts), max(result.random_shifts), color="0.85", zorder=0,
                   label=f"{len(result.random_shifts)} random directions")
        ax.legend(fontsize=7)
    for x, y, name in pts:
        ax.annotate(name, (x, y.value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("r(readout on activity, preference score)")
    ax.set_ylabel("shift in log-odds of choosing the steered option")
    return png_base64(fig, dpi=90)


def _signed(e: Estimate, digits: int = 2) -> str:
    """``+0.12 [+0.01, +0.30]``, the interval left out when it is NaN."""
    ci = "" if math.isnan(e.low) else f" [{e.low:+.{digits}f}, {e.high:+.{digits}f}]"
    return f"{e.value:+.{digits}f}{ci}"


def context(result: PaperResult) -> dict[str, Any]:
    ranked = sorted(result.preference_r, key=lambda e: e.r.value)
    acts = sorted(zip(result.activity_scores, result.activities, strict=True), key=lambda p: p[0].value, reverse=True)
    return {
        "result": result, "png": steering_png(result), "sources": TEXT_SOURCES,
        "intensity": [{"t": t, "rho": _signed(t.rho), "range": f"({t.rho_min:.2f}, {t.rho_max:.2f})"}
                      for t in result.intensity],
        "min_paraphrases": MIN_PARAPHRASES,
        "prefs_top": [_r(e) for e in ranked[::-1][:10]],
        "prefs_bottom": [_r(e) for e in ranked[:10]],
        "n_beyond": sum(abs(e.r.value) > result.shuffled_r_p95 for e in result.preference_r),
        "acts": [{"name": a, "score": f"{s.value:+.2f}", "ci": f"[{s.low:+.2f}, {s.high:+.2f}]"} for s, a in acts],
        "steer": "n/a" if result.steering_r is None else result.steering_r.fmt(2),
        "all_r_json": json.dumps({e.emotion: round(e.r.value, 3) for e in result.preference_r}),
        "random_line": _random_line(result.random_shifts),
        "paper_pair": {name: next((f"{e.r.value:+.2f}" for e in result.preference_r if e.emotion == name), "n/a")
                       for name in ("blissful", "hostile")},
        "title": f"The paper's experiments: {result.model}",
        "shift_rows": _shift_rows(result),
    }


def _shift_rows(result: PaperResult) -> dict[str, Any]:
    """The per-activity shifts as a table: one column per steered emotion (its mean shift and interval in the
    header), one row per activity, most preferred first."""
    names = list(result.activity_shifts)
    order = sorted(range(len(result.activities)), key=lambda i: -result.activity_scores[i].value)
    by = {e.emotion: e.shift for e in result.preference_r}
    head = [f"{n} {_signed(shift, 3)}" if (shift := by.get(n)) is not None else n for n in names]
    rows = [[result.activities[i], *(f"{result.activity_shifts[n][i]:+.3f}" for n in names)] for i in order]
    return {"head": head, "rows": rows}


def _r(e: EmotionPreference) -> str:
    return f"{e.emotion} {_signed(e.r)}"


def _random_line(shifts: list[float]) -> str:
    if not shifts:
        return "no random directions were steered"
    return (f"{len(shifts)} random directions of the same norm shifted the log-odds by {min(shifts):+.3f} to "
            f"{max(shifts):+.3f} (mean {sum(shifts) / len(shifts):+.3f})")


def write_paper_report(out: str | Path, result: PaperResult) -> Path:
    """Write ``paper_report.html`` (self-contained) and ``paper.json`` into ``out``."""
    write_result(Path(out) / "paper.json", result)
    return write_page(Path(out) / "paper_report.html", "report.html.j2", context(result), __package__)
