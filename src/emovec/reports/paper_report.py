"""The paper-experiments report: intensity templates against random directions, top-activating human text,
activity preferences and how emotion readouts and steering track them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emovec.reports.figures import new_figure, png_base64
from emovec.reports.pages import write_result_page
from emovec.studies.paper_results import TEXT_SOURCES, EmotionPreference, PaperResult


def steering_png(result: PaperResult) -> str | None:
    pts = [(e.r, e.shift, e.emotion) for e in result.preference_r if e.shift is not None]
    if not pts:
        return None
    fig, ax = new_figure((5, 4))
    bars = [(e.r, e.shift, e.shift - e.shift_low, e.shift_high - e.shift) for e in result.preference_r
            if e.shift is not None and e.shift_low is not None and e.shift_high is not None]
    if bars:  # each emotion's shift with its interval over activities
        ax.errorbar([b[0] for b in bars], [b[1] for b in bars], yerr=[[b[2] for b in bars], [b[3] for b in bars]],
                    fmt="none", ecolor="0.5", elinewidth=0.8)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts])
    if result.random_shifts:  # the range of shifts random directions of the same norm make
        ax.axhspan(min(result.random_shifts), max(result.random_shifts), color="0.85", zorder=0,
                   label=f"{len(result.random_shifts)} random directions")
        ax.legend(fontsize=7)
    for x, y, name in pts:
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("r(readout on activity, preference score)")
    ax.set_ylabel("shift in log-odds of choosing the steered option")
    return png_base64(fig, dpi=90)


def context(result: PaperResult) -> dict[str, Any]:
    ranked = sorted(result.preference_r, key=lambda e: e.r)
    acts = sorted(zip(result.activity_scores, result.activity_low, result.activity_high, result.activities,
                      strict=True), reverse=True)
    return {
        "result": result, "png": steering_png(result), "sources": TEXT_SOURCES,
        "prefs_top": [_r(e) for e in ranked[::-1][:10]],
        "prefs_bottom": [_r(e) for e in ranked[:10]],
        "n_beyond": sum(abs(e.r) > result.shuffled_r_p95 for e in result.preference_r),
        "acts": [{"name": a, "score": f"{s:+.2f}", "ci": f"[{lo:+.2f}, {hi:+.2f}]"} for s, lo, hi, a in acts],
        "steer": ("n/a" if result.steering_r is None else
                  f"{result.steering_r:.2f} [{result.steering_r_low:.2f}, {result.steering_r_high:.2f}]"),
        "all_r_json": json.dumps({e.emotion: round(e.r, 3) for e in result.preference_r}),
        "random_line": _random_line(result.random_shifts),
        "paper_pair": {name: next((f"{e.r:+.2f}" for e in result.preference_r if e.emotion == name), "n/a")
                       for name in ("blissful", "hostile")},
        "title": f"The paper's experiments: {result.model}",
        "shift_rows": _shift_rows(result),
    }


def _shift_rows(result: PaperResult) -> dict[str, Any]:
    """The per-activity shifts as a table: one column per steered emotion (its mean shift and interval in the
    header), one row per activity, most preferred first."""
    names = list(result.activity_shifts)
    order = sorted(range(len(result.activities)), key=lambda i: -result.activity_scores[i])
    by = {e.emotion: e for e in result.preference_r}
    head = [f"{n} {by[n].shift:+.3f} [{by[n].shift_low:+.3f}, {by[n].shift_high:+.3f}]"
            if n in by and by[n].shift is not None and by[n].shift_low is not None and by[n].shift_high is not None
            else n for n in names]
    rows = [[result.activities[i], *(f"{result.activity_shifts[n][i]:+.3f}" for n in names)] for i in order]
    return {"head": head, "rows": rows}


def _r(e: EmotionPreference) -> str:
    ci = f" [{e.r_low:+.2f}, {e.r_high:+.2f}]" if e.r_low is not None and e.r_high is not None else ""
    return f"{e.emotion} {e.r:+.2f}{ci}"


def _random_line(shifts: list[float]) -> str:
    if not shifts:
        return "no random directions were steered"
    return (f"{len(shifts)} random directions of the same norm shifted the log-odds by {min(shifts):+.3f} to "
            f"{max(shifts):+.3f} (mean {sum(shifts) / len(shifts):+.3f})")


def write_paper_report(out: str | Path, result: PaperResult) -> Path:
    """Write ``paper_report.html`` (self-contained) and ``paper.json`` into ``out``."""
    return write_result_page(out, result, "paper.json", "paper_report.html", "paper.html.j2", context(result))
