"""The validation report: a self-contained HTML page (figures inlined as base64 PNG), its JSON and PNG files.

``validation_context`` turns a ``ValidationReport`` into what ``templates/validation.html.j2`` shows; every
number comes from the report (``emovec.validation``), this module only formats it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emovec._files import atomic_write
from emovec.reports import plots
from emovec.reports.figures import file_base64
from emovec.reports.pages import render
from emovec.validation import ValidationReport
from emovec.validation.external import ExternalDataMissing, nrc_polarity
from emovec.vectors.vector_set import VectorSet


def write_figures(vectors: VectorSet, report: ValidationReport, out: Path) -> dict[str, Path | None]:
    """Draw every figure of the report as PNG into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        polarity = nrc_polarity()
    except ExternalDataMissing:
        polarity = {}
    return {
        "accuracy": plots.accuracy_by_layer(report, out / "cv_accuracy.png"),
        "diagnostic": plots.corpus_diagnostic(report, out / "corpus_diagnostic.png"),
        "valence_words": plots.valence_words(report, polarity, out / "valence_words.png"),
        "valence_snippets": plots.valence_snippets(report, out / "valence_snippets.png"),
        "pca": plots.pca_scatter(report, out / "pca.png"),
        "similarity": plots.similarity_heatmap(vectors, report, out / "similarity.png"),
        "implicit": plots.implicit_matrix(report, out / "implicit.png"),
    }


def _headline(report: ValidationReport) -> dict[str, Any]:
    cv = report.cv_at(report.recommended_layer)
    n, p = report.nested, report.permutation
    return {
        "layers_read": max(report.layers) + 1 if report.layers else "?",
        "nested": None if n is None else {"top1": n.top1.fmt(), "top5": n.top5.fmt(), "mean_rank": n.mean_rank.fmt(1)},
        "at_layer": {"top1": cv.top1.fmt(), "top5": cv.top5.fmt()},
        "chance": f"{report.chance_top1:.4f} / {report.chance_top5:.4f} / mean rank {report.chance_mean_rank:.0f}",
        "permutation": None if p is None else {
            "n": p.n_permutations, "top1": f"{p.top1_p99:.4f}", "top5": f"{p.top5_p99:.4f}",
            "mean_rank": f"{p.mean_rank_p01:.1f}"},
    }


def _external(report: ValidationReport) -> dict[str, Any]:
    ext = report.external
    ax = ext.axis
    return {
        "axis": None if ax is None else {
            "component": ax.component, "layer": ax.layer, "explained": f"{ax.explained:.1%}",
            "n_positive": ax.n_positive, "n_negative": ax.n_negative, "word_r": ax.word_r.fmt()},
        "subset_rows": [[s.subset, s.n, s.r.fmt(), s.probe_r.fmt() if s.probe_r is not None else "n/a",
                         f"{s.random_direction_p95:.3f}",
                         f"{s.vader_r:.3f}" if s.vader_r is not None else "n/a"] for s in ext.subsets],
        "probe": None if ext.probe is None else ext.probe.model_dump(),
        "sources": list(ext.sources),
        "skipped": list(ext.skipped),
    }


def _geometry(report: ValidationReport) -> dict[str, Any]:
    imp = report.implicit
    lens = list(report.logit_lens)[:: max(1, len(report.logit_lens) // 40)]
    return {
        "explained": ", ".join(f"{v:.1%}" for v in report.pca_explained[:6]),
        "pc_rows": [["PC1", ", ".join(report.pc1_top), ", ".join(report.pc1_bottom)],
                    ["PC2", ", ".join(report.pc2_top), ", ".join(report.pc2_bottom)]],
        "nearest": [{"name": n, "neighbours": ", ".join(f"{m} ({c:.2f})" for m, c in nb[:3])}
                    for n, nb in report.nearest.items()],
        "implicit": None if imp is None else {
            "n": len(imp.emotions), "diagonal": f"{imp.diagonal_mean:.3f}",
            "off_diagonal": f"{imp.off_diagonal_mean:.3f}", "top1": f"{imp.top1_rate:.0%}",
            "rows": [[e, r, s[:90] + "…"] for e, r, s in zip(imp.emotions, imp.rank_of_true, imp.scenarios,
                                                             strict=True)]},
        "lens_rows": [[n, " ".join(report.logit_lens[n]), " ".join(report.logit_lens_suppressed[n])] for n in lens],
    }


def validation_context(vectors: VectorSet, report: ValidationReport,
                       figures: dict[str, Path | None]) -> dict[str, Any]:
    """What ``validation.html.j2`` shows: the report's numbers as text, figures as base64 PNG.

    Example:
        >>> ctx = validation_context(vs, report, write_figures(vs, report, Path("figs")))
        >>> ctx["layer"] == report.recommended_layer
        True
    """
    prov = vectors.provenance
    recipe = report.recipe
    return {
        "title": f"emovec: {report.model}", "model": report.model, "n_emotions": report.n_emotions,
        "n_layers": len(report.layers), "n_stories": report.n_stories, "n_topics": report.n_topics,
        "n_folds": report.n_folds, "method": prov.method, "token_kind": prov.token_selection.kind,
        "token_start": prov.token_selection.start, "topic_removal": "on" if recipe.get("topic_removal") else "off",
        "denoise": recipe.get("denoise_variance") or "off", "version": prov.emovec_version,
        "readout": str(recipe.get("readout")), "layer": report.recommended_layer,
        "cv_rows": [[c.layer, c.top1.fmt(), c.top5.fmt(), c.mean_rank.fmt(1)] for c in report.cv],
        "diagnostic_rows": [[d.layer, f"{d.same_emotion:+.4f}", f"{d.same_topic:+.4f}", f"{d.unrelated:+.4f}"]
                            for d in report.diagnostic],
        "text_baseline": _text_baseline(report), "identity": _identity(report),
        "text_baseline_skipped": report.text_baseline_skipped or "not run",
        "figures": {k: file_base64(v) for k, v in figures.items()},
        "provenance_json": json.dumps(prov.model_dump(mode="json"), indent=1),
        "corpus": prov.corpus.path if prov.corpus else "n/a",
        **_headline(report), **_external(report), **_geometry(report),
    }


def _text_baseline(report: ValidationReport) -> dict[str, str] | None:
    tb = report.text_baseline
    if tb is None:
        return None
    return {"method": tb.method, "n": str(tb.n_stories), "folds": str(tb.n_folds), "top1": tb.top1.fmt(),
            "top5": tb.top5.fmt(), "mean_rank": tb.mean_rank.fmt(1), "named": f"{tb.names_own_emotion:.1%}"}


def _identity(report: ValidationReport) -> dict[str, Any] | None:
    ident = report.identity
    if ident is None:
        return None
    embedding = None
    if ident.embedding_top1 is not None and ident.embedding_top5 is not None:
        embedding = {"top1": ident.embedding_top1.fmt(), "top5": ident.embedding_top5.fmt()}
    return {"layer": ident.layer, "top1": ident.top1.fmt(), "top5": ident.top5.fmt(), "embedding": embedding,
            "groups": [[g.k, g.accuracy.fmt(), f"{g.chance:.3f}"] for g in ident.groups],
            "curve": [[p.topics, p.top1.fmt(), p.top5.fmt()] for p in ident.learning_curve],
            "confusions": [[c.truth, c.predicted, c.count, f"{c.share:.0%}", f"{c.cosine:.2f}"]
                           for c in ident.confusions]}


def render_validation(vectors: VectorSet, report: ValidationReport, figures: dict[str, Path | None]) -> str:
    """The HTML text of a validation report."""
    return render("validation.html.j2", validation_context(vectors, report, figures))


def write_validation_report(vectors: VectorSet, report: ValidationReport, out: str | Path) -> Path:
    """Write ``report.html``, ``report.json`` and the PNG figures into ``out``; returns the HTML path.

    Args:
        vectors: the vector set the report validates.
        report: its validation report.
        out: the folder (figures go to ``out/figures``).

    Returns:
        The path of ``report.html``.

    Example:
        >>> write_validation_report(vs, validate(lm, vs), "runs/demo")
    """
    directory = Path(out)
    figures = write_figures(vectors, report, directory / "figures")
    atomic_write(directory / "report.json", report.model_dump_json(indent=1))
    return atomic_write(directory / "report.html", render_validation(vectors, report, figures))
