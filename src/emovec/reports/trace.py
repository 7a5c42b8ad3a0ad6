"""A self-contained HTML page showing a text with each token coloured by a chosen emotion's score."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from emovec._files import atomic_write
from emovec.reports.figures import new_figure, png_base64
from emovec.reports.pages import render


def _top_names(scores: torch.Tensor, names: Sequence[str], k: int) -> list[str]:
    # which emotions to draw: those with the largest mean absolute score over the tokens
    return [names[i] for i in scores.abs().mean(0).argsort(descending=True)[:k].tolist()]


def _line_plot(scores: torch.Tensor, names: Sequence[str], top: list[str]) -> str:
    fig, ax = new_figure((10, 3.2))
    for name in top:
        ax.plot(scores[:, list(names).index(name)].numpy(), label=name, lw=1.2)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="token", ylabel="score (fraction of mean norm)", title="Top emotions over the tokens")
    ax.legend(fontsize=7, ncol=len(top))
    return png_base64(fig)


def _token_items(tokens: Sequence[str], roles: Sequence[str] | None) -> list[dict[str, str | None]]:
    # a role heading where the role changes; byte-level and sentencepiece space marks shown as spaces
    items: list[dict[str, str | None]] = []
    previous = None
    for i, tok in enumerate(tokens):
        role = roles[i] if roles is not None else None
        items.append({"role": role if role and role != previous else None,
                      "text": tok.replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\n")})
        previous = role or previous
    return items


def trace_context(tokens: Sequence[str], scores: torch.Tensor, names: Sequence[str], title: str,
                  roles: Sequence[str] | None = None, initial: str | None = None, top: int = 5) -> dict[str, Any]:
    """What ``trace.html.j2`` shows: token texts, the scores as JSON data, and a line plot of the top emotions."""
    best = _top_names(scores, names, top)
    start = initial or best[0]
    return {"title": title, "names": list(names), "initial": start, "tokens": _token_items(tokens, roles),
            "plot_png": _line_plot(scores, names, best),
            "data": {"names": list(names), "scores": scores.round(decimals=5).tolist(), "initial": start}}


def render_trace(tokens: Sequence[str], scores: torch.Tensor, names: Sequence[str], title: str,
                 roles: Sequence[str] | None = None, initial: str | None = None, top: int = 5) -> str:
    """HTML for one token sequence: coloured tokens, an emotion selector, and a line plot of the top emotions.

    Args:
        tokens: token texts.
        scores: ``[tokens, vectors]``.
        names: vector names.
        title: the page heading.
        roles: an optional role per token, shown as separators between messages.
        initial: the emotion coloured first (default: the one with the largest mean absolute score).
        top: how many emotions the line plot draws.

    Returns:
        The page text.

    Example:
        >>> page = render_trace(conv.tokens, conv.scores, conv.names, "chat", roles=conv.roles)
        >>> write_trace("trace.html", [page])
    """
    return render("trace.html.j2", trace_context(tokens, scores, names, title, roles, initial, top))


def write_trace(path: str | Path, pages: Sequence[str]) -> Path:
    """Write one or more rendered traces into one HTML file (atomically); several go in one frame each."""
    body = pages[0] if len(pages) == 1 else render("trace_frames.html.j2", {"pages": list(pages)})
    return atomic_write(path, body)
