"""A self-contained HTML page for a validation report: figures inlined as base64 PNG, tables, provenance."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

from emovec._files import atomic_write
from emovec.reports import plots
from emovec.validation import ValidationReport
from emovec.vectors.vector_set import VectorSet

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}
img{max-width:100%}.note{color:#555;font-size:.9em}code{background:#f4f4f4;padding:1px 4px}
.grid{columns:3;font-size:.8em}
"""


def _img(path: Path | None) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _table(headers: list[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_figures(vectors: VectorSet, report: ValidationReport, out: Path) -> dict[str, Path | None]:
    """Draw every figure of the report as PNG into ``out``."""
    from emovec.validation.external import ExternalDataMissing, nrc_polarity

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


def _headline(report: ValidationReport) -> str:
    layer = report.recommended_layer
    cv = report.cv_at(layer)
    text = (f"Recommended layer <b>{layer}</b> of {max(report.layers) + 1 if report.layers else '?'} read, chosen by "
            f"topic-held-out top-5. ")
    if report.nested is not None:
        n = report.nested
        text += (f"With the layer chosen inside the cross-validation (the unbiased figure): top-1 {n.top1.fmt()}, "
                 f"top-5 {n.top5.fmt()}, mean rank of the true emotion {n.mean_rank.fmt(1)}. ")
    text += (f"At layer {layer}: top-1 {cv.top1.fmt()}, top-5 {cv.top5.fmt()}. Chance: {report.chance_top1:.4f} / "
             f"{report.chance_top5:.4f} / mean rank {report.chance_mean_rank:.0f}.")
    if report.permutation is not None:
        p = report.permutation
        text += (f" Shuffled labels ({p.n_permutations} permutations within topics): top-1 99th percentile "
                 f"{p.top1_p99:.4f}, top-5 99th percentile {p.top5_p99:.4f}, mean rank 1st percentile "
                 f"{p.mean_rank_p01:.1f}.")
    return f"<p>{text}</p>"


def _external_section(report: ValidationReport, figures: dict[str, Path | None]) -> list[str]:
    ext = report.external
    parts = ["<h2>Valence on human-rated text</h2>",
             "<p class=note>A valence axis is read from the vectors alone: among their first three principal "
             "components, the one that best separates NRC EmoLex positive from negative emotion words, signed so "
             "positive words score high. Nothing is fitted on the snippets. Each snippet's mean activation "
             "(tokens from the third on, past the attention-sink tokens; minus the vectors' centre) is projected "
             "on that axis and correlated with the mean rating of "
             "about 20 people (Pearson r, Fisher-z 95% interval), against 100 random directions through the same "
             "centre and against VADER's own lexicon scorer.</p>"]
    if ext.axis is not None:
        ax = ext.axis
        parts.append(f"<p>Axis: PC{ax.component} at layer {ax.layer} ({ax.explained:.1%} of the vectors' variance). "
                     f"Emotion words vs NRC polarity ({ax.n_positive} positive, {ax.n_negative} negative): "
                     f"point-biserial r {ax.word_r.fmt()}.</p>")
        parts.append(_img(figures.get("valence_words")))
    if ext.subsets:
        parts.append(_table(
            ["subset", "snippets", "r with human valence [95% CI]", "random directions |r| 95th pct", "VADER r"],
            [[s.subset, s.n, s.r.fmt(), f"{s.random_direction_p95:.3f}",
              f"{s.vader_r:.3f}" if s.vader_r is not None else "n/a"] for s in ext.subsets]))
        parts.append(_img(figures.get("valence_snippets")))
    parts += [f"<p class=note>Source: {html.escape(src)}</p>" for src in ext.sources]
    parts += [f"<p class=note><b>Skipped</b>: {html.escape(msg)}</p>" for msg in ext.skipped]
    return parts


def render_validation(vectors: VectorSet, report: ValidationReport, figures: dict[str, Path | None]) -> str:
    """The HTML text of a validation report."""
    layer = report.recommended_layer
    prov = vectors.provenance
    tok = prov.token_selection
    corpus = prov.corpus
    recipe = report.recipe
    parts = [
        f"<h1>Emotion vectors of {html.escape(report.model)}</h1>",
        f"<p>{report.n_emotions} emotion vectors at {len(report.layers)} layers from {report.n_stories} stories on "
        f"{report.n_topics} topics, method <code>{prov.method}</code>, tokens <code>{tok.kind}</code> from index "
        f"{tok.start}, topic removal {'on' if recipe.get('topic_removal') else 'off'}, neutral denoising "
        f"{recipe.get('denoise_variance') or 'off'}, emovec {prov.emovec_version}.</p>",
        _headline(report),
        "<h2>Stories of unseen topics</h2>",
        f"<p class=note>Topics are dealt to {report.n_folds} folds. For each fold, vectors are refitted by the same "
        f"recipe on the other folds' stories only, and each of the fold's stories is scored by the "
        f"<code>{html.escape(str(recipe.get('readout')))}</code> readout "
        "(projection: centred activation on each unit vector, as monitoring reads; lda: the vectors whitened by the "
        "shrunk within-emotion covariance). Every story is classified once, by vectors that saw nothing of its topic. "
        "Intervals: 95% bootstrap over topics. The steering vectors are always the mean-difference directions "
        "fitted on every story.</p>",
        _img(figures.get("accuracy")),
        _table(["layer", "top-1", "top-5", "mean rank"],
               [[c.layer, c.top1.fmt(), c.top5.fmt(), c.mean_rank.fmt(1)] for c in report.cv]),
        "<h2>Corpus diagnostic</h2>",
        "<p class=note>Mean cosine of centred story activations for pairs that share an emotion (not a topic), a "
        "topic (not an emotion), or neither. The gap between same-emotion and unrelated pairs is the emotion a "
        "single story carries; same-topic pairs show how much topic there is to remove.</p>",
        _img(figures.get("diagnostic")),
        _table(["layer", "same emotion", "same topic", "unrelated"],
               [[d.layer, f"{d.same_emotion:+.4f}", f"{d.same_topic:+.4f}", f"{d.unrelated:+.4f}"]
                for d in report.diagnostic]),
        *_external_section(report, figures),
        "<h2>Geometry</h2>",
        f"<p>Explained variance of the first PCs at layer {layer}: "
        + ", ".join(f"{v:.1%}" for v in report.pca_explained[:6]) + "</p>",
        _table(["", "top (highest)", "bottom (lowest)"], [
            ["PC1", ", ".join(report.pc1_top), ", ".join(report.pc1_bottom)],
            ["PC2", ", ".join(report.pc2_top), ", ".join(report.pc2_bottom)],
        ]),
        _img(figures.get("pca")),
        _img(figures.get("similarity")),
        "<h2>Nearest neighbours</h2>",
        "<div class=grid>" + "".join(
            f"<div><b>{html.escape(n)}</b>: " + ", ".join(f"{html.escape(m)} ({c:.2f})" for m, c in nb[:3]) + "</div>"
            for n, nb in report.nearest.items()
        ) + "</div>",
    ]
    if report.implicit is not None:
        imp = report.implicit
        parts += [
            "<h2>Implicit emotion</h2>",
            f"<p>{len(imp.emotions)} short scenarios imply an emotion without naming it. Mean cosine on the diagonal "
            f"{imp.diagonal_mean:.3f} vs off the diagonal {imp.off_diagonal_mean:.3f}; the implied emotion ranks first "
            f"among all {report.n_emotions} vectors in {imp.top1_rate:.0%} of scenarios.</p>",
            _img(figures.get("implicit")),
            _table(["implied emotion", "rank among all vectors", "scenario"],
                   [[e, r, s[:90] + "…"]
                    for e, r, s in zip(imp.emotions, imp.rank_of_true, imp.scenarios, strict=True)]),
        ]
    lens_rows = [[n, " ".join(report.logit_lens[n]), " ".join(report.logit_lens_suppressed[n])]
                 for n in list(report.logit_lens)[:: max(1, len(report.logit_lens) // 40)]]
    parts += [
        "<h2>Logit lens</h2>",
        "<p class=note>Tokens each vector promotes and suppresses when read through the final norm and the "
        "unembedding (logits centred across vectors). A sample of emotions; all are in the JSON.</p>",
        _table(["emotion", "promoted", "suppressed"], lens_rows),
        "<h2>Provenance</h2>",
        f"<pre>{html.escape(json.dumps(prov.model_dump(mode='json'), indent=1))}</pre>",
        f"<p class=note>Corpus: {html.escape(corpus.path) if corpus else 'n/a'}</p>",
    ]
    return f"<!doctype html><html><head><meta charset=utf-8><title>emovec: {html.escape(report.model)}</title>" \
           f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>"


def write_validation_report(vectors: VectorSet, report: ValidationReport, out: str | Path) -> Path:
    """Write ``report.html``, ``report.json`` and the PNG figures into ``out``; returns the HTML path.

    Example:
        >>> write_validation_report(vs, validate(lm, vs), "runs/demo")
    """
    directory = Path(out)
    figures = write_figures(vectors, report, directory / "figures")
    atomic_write(directory / "report.json", report.model_dump_json(indent=1))
    return atomic_write(directory / "report.html", render_validation(vectors, report, figures))
