"""The cross-model study report: the answer in numbers, per held-out model the AUCs of every adaptation level
beside their baselines, the k curve, pairwise alignment against shuffled nulls, and the basis directions'
nearest emotion and control vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emovec.reports.pages import write_page
from emovec.studies._kit import write_result
from emovec.studies.cross_model.fit import AUC, CrossModelResult


def _fmt(a: AUC) -> str:
    if a.value is None or a.low is None or a.high is None:
        return a.note or "n/a"
    return f"{a.value:.2f} [{a.low:.2f}, {a.high:.2f}]"


def context(result: CrossModelResult) -> dict[str, Any]:
    """What the template shows (formatting only; every number comes from the typed result)."""
    rows = []
    for h in result.held_out:
        rows.append({"model": h.model, "label": h.label, "k": h.k, "none": _fmt(h.no_adaptation),
                     "light": [f"{n}: {_fmt(a)}" for n, a in h.light.items()], "own": _fmt(h.own),
                     "text": _fmt(h.text_baseline), "random": _fmt(h.random_basis),
                     "mismatch_own": "-" if h.mismatch_own is None else _fmt(h.mismatch_own),
                     "mismatch_basis": "-" if h.mismatch_basis is None else _fmt(h.mismatch_basis),
                     "counts": f"{h.no_adaptation.n_pos} / {h.no_adaptation.n_neg}"})
    return {"title": "Cross-model emotion basis", "result": result, "rows": rows,
            "answer_lines": result.answer.splitlines(),
            "curve": [{"k": k, "fit": f"{v:.3f}"} for k, v in result.k_curve.items()],
            "alignment": [{"pair": f"{p.a} / {p.b}", "cka": f"{p.debiased_cka:.3f}",
                           "cka_null": f"{p.cka_null_p95:.3f}", "knn": f"{p.mutual_knn:.3f}",
                           "knn_null": f"{p.knn_null_p95:.3f}"} for p in result.alignment],
            "counts_json": json.dumps(result.counts, indent=1),
            "transfer": [{"model": t.model, "direction": t.direction, "cos": f"{t.cos_mapped_native:+.2f}",
                          "native": t.native.text(3), "mapped": t.mapped.text(3), "random": t.random.text(3)}
                         for t in result.transfer],
            "loadings": [{"held": h.model, "model": name, "fits": " ".join(f"{v:+.2f}" for v in row)}
                         for h in result.held_out if h.label == result.held_out[0].label
                         for name, row in h.loadings.items()],
            "captured": [{"held": h.model, "model": m, "shares": ", ".join(f"{k} {v:.2f}" for k, v in row.items())}
                         for h in result.held_out if h.label == result.held_out[0].label
                         for m, row in h.captured.items()]}


def write_cross_model_report(out: str | Path, result: CrossModelResult) -> Path:
    """Write ``cross_model_report.html`` (self-contained) and ``cross_model.json`` into ``out``."""
    write_result(Path(out) / "cross_model.json", result)
    return write_page(Path(out) / "cross_model_report.html", "report.html.j2", context(result), __package__)
