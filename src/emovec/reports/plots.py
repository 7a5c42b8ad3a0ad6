"""Matplotlib figures for validation reports. Each function draws figures from a report; it computes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from emovec.reports.figures import new_figure, save_png
from emovec.validation import ValidationReport
from emovec.vectors.vector_set import VectorSet


def _save(fig: Figure, path: Path) -> Path:
    return save_png(fig, path, dpi=110)


def accuracy_by_layer(report: ValidationReport, path: Path) -> Path:
    """Topic-held-out top-1 and top-5 per layer with intervals, against chance and the permutation baseline."""
    layers = [c.layer for c in report.cv]
    fig, ax = new_figure(figsize=(7.5, 3.8))
    for key, marker, colour in (("top1", "o", "C0"), ("top5", "s", "C1")):
        est = [getattr(c, key) for c in report.cv]
        ax.plot(layers, [e.value for e in est], marker=marker, color=colour, ms=3, label=key.replace("top", "top-"))
        ax.fill_between(layers, [e.low for e in est], [e.high for e in est], color=colour, alpha=0.2)
    ax.axhline(report.chance_top1, color="grey", ls="--", lw=1, label=f"chance top-1 ({report.chance_top1:.3f})")
    ax.axhline(report.chance_top5, color="grey", ls=":", lw=1, label=f"chance top-5 ({report.chance_top5:.3f})")
    if report.permutation is not None:
        ax.axhline(report.permutation.top5_p99, color="black", ls="-.", lw=0.8,
                   label=f"shuffled labels, top-5 99th pct ({report.permutation.top5_p99:.3f})")
    ax.axvline(report.recommended_layer, color="C3", lw=1, alpha=0.6, label=f"recommended ({report.recommended_layer})")
    ax.set(xlabel="layer", ylabel="accuracy", ylim=(0, max(0.2, max(c.top5.high for c in report.cv) * 1.15)),
           title=f"Stories classified by vectors fitted without their topic ({report.n_stories} stories, "
                 f"{report.n_emotions} emotions)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=6.5, loc="upper left")
    return _save(fig, path)


def corpus_diagnostic(report: ValidationReport, path: Path) -> Path:
    """Mean centred cosine of same-emotion, same-topic and unrelated story pairs per layer."""
    layers = [d.layer for d in report.diagnostic]
    fig, ax = new_figure(figsize=(7, 3.4))
    ax.plot(layers, [d.same_topic for d in report.diagnostic], marker="o", ms=3, label="same topic, other emotion")
    ax.plot(layers, [d.same_emotion for d in report.diagnostic], marker="s", ms=3, label="same emotion, other topic")
    ax.plot(layers, [d.unrelated for d in report.diagnostic], marker="^", ms=3, label="unrelated")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="layer", ylabel="mean centred cosine", title="How much emotion vs topic the corpus carries")
    ax.legend(fontsize=7)
    return _save(fig, path)


def valence_words(report: ValidationReport, polarity: dict[str, int], path: Path) -> Path | None:
    """Emotion words on the valence axis, coloured by their NRC EmoLex polarity."""
    axis = report.external.axis
    if axis is None:
        return None
    items = sorted(axis.coordinates.items(), key=lambda kv: kv[1])
    colours = ["C2" if polarity.get(n) == 1 else "C3" if polarity.get(n) == -1 else "0.7" for n, _ in items]
    fig, ax = new_figure(figsize=(10, 3))
    ax.bar(range(len(items)), [v for _, v in items], color=colours)
    step = max(1, len(items) // 60)
    ax.set_xticks(range(0, len(items), step), [items[i][0] for i in range(0, len(items), step)], rotation=90,
                  fontsize=5)
    ax.set(ylabel="coordinate", title=f"Emotion words on the valence axis (PC{axis.component}, layer {axis.layer}); "
                                      "green: NRC positive, red: NRC negative, grey: neither")
    ax.title.set_fontsize(8)
    return _save(fig, path)


def valence_snippets(report: ValidationReport, path: Path) -> Path | None:
    """Per VADER subset: r of the valence readout with human ratings, random directions, VADER itself."""
    subsets = report.external.subsets
    if not subsets:
        return None
    x = np.arange(len(subsets))
    r = [s.r.value for s in subsets]
    err = np.array([[s.r.value - s.r.low for s in subsets], [s.r.high - s.r.value for s in subsets]])
    fig, ax = new_figure(figsize=(6.5, 3.4))
    ax.bar(x - 0.27, r, 0.27, yerr=err, label="emotion-vector valence axis", color="C0")
    probes = [s.probe_r for s in subsets]
    if all(p is not None for p in probes):
        pv = [p.value for p in probes if p is not None]
        perr = np.array([[p.value - p.low for p in probes if p is not None],
                         [p.high - p.value for p in probes if p is not None]])
        ax.bar(x, pv, 0.27, yerr=perr, label="corpus-trained valence probe", color="C1")
    if all(s.vader_r is not None for s in subsets):
        ax.bar(x + 0.27, [s.vader_r or 0.0 for s in subsets], 0.27, label="VADER compound (reference)", color="0.6")
    ax.scatter(x - 0.27, [s.random_direction_p95 for s in subsets], marker="_", s=200, color="black", zorder=3,
               label="random directions, 95th pct of |r|")
    ax.set_xticks(x, [f"{s.subset} (n={s.n})" for s in subsets], fontsize=8)
    ax.set(ylabel="Pearson r with mean human valence", ylim=(min(0.0, min(r) - 0.1), 1))
    ax.legend(fontsize=7)
    return _save(fig, path)


def pca_scatter(report: ValidationReport, path: Path) -> Path:
    """All emotions on the first two principal components of the vectors."""
    names = list(report.pca_coords)
    xy = np.array([report.pca_coords[n] for n in names])
    fig, ax = new_figure(figsize=(9, 7.5))
    ax.scatter(xy[:, 0], xy[:, 1], s=10, c=xy[:, 0], cmap="coolwarm")
    for (x, y), name in zip(xy, names, strict=True):
        ax.annotate(name, (x, y), fontsize=5.5, alpha=0.8)
    ev = report.pca_explained
    ax.set(xlabel=f"PC1 ({ev[0]:.1%} of variance)", ylabel=f"PC2 ({ev[1]:.1%})",
           title=f"Emotion vectors at layer {report.recommended_layer}")
    return _save(fig, path)


def similarity_heatmap(vectors: VectorSet, report: ValidationReport, path: Path) -> Path:
    """Cosine similarity of all vectors at the recommended layer, ordered by PC1."""
    sims = vectors.cosine_similarity(report.recommended_layer).numpy()
    order = np.argsort([-report.pca_coords[n][0] for n in vectors.names])
    fig, ax = new_figure(figsize=(9, 8))
    im = ax.imshow(sims[np.ix_(order, order)], cmap="RdBu_r", vmin=-1, vmax=1)
    step = max(1, len(order) // 57)
    ticks = list(range(0, len(order), step))
    ax.set_xticks(ticks, [vectors.names[order[i]] for i in ticks], rotation=90, fontsize=4.5)
    ax.set_yticks(ticks, [vectors.names[order[i]] for i in ticks], fontsize=4.5)
    ax.set_title(f"Cosine similarity between emotion vectors (layer {report.recommended_layer}, ordered by PC1)")
    fig.colorbar(im, ax=ax, shrink=0.7)
    return _save(fig, path)


def implicit_matrix(report: ValidationReport, path: Path) -> Path | None:
    """Scenario-by-emotion cosine matrix; the diagonal should stand out."""
    imp = report.implicit
    if imp is None:
        return None
    mat = np.array(imp.matrix)
    fig, ax = new_figure(figsize=(6.5, 5.5))
    lim = float(np.abs(mat).max()) or 1.0
    im = ax.imshow(mat, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(imp.emotions)), imp.emotions, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(imp.emotions)), [f"scenario: {e}" for e in imp.emotions], fontsize=8)
    for i in range(len(imp.emotions)):
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=1.2))
    ax.set_title("Implicit scenarios vs emotion vectors (cosine)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)
