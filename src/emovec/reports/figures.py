"""The one place reports make matplotlib figures: Agg canvases, PNG files and base64 PNG for inlining.

Figures are built from ``matplotlib.figure.Figure`` on an Agg canvas rather than through ``pyplot``: nothing
global changes (no backend switch in a notebook that calls a report, no figure registry to close), and
importing a report module imports no matplotlib at all.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, *, squeeze: bool = True) -> tuple[
        Figure, Any]:
    """A figure on an Agg canvas and its axes (as ``pyplot.subplots`` returns them).

    Args:
        figsize: width and height in inches.
        nrows: rows of axes.
        ncols: columns of axes.
        squeeze: return a single ``Axes`` (or a 1-d array) where the grid allows.

    Returns:
        ``(figure, axes)``.

    Example:
        >>> fig, ax = new_figure((4, 3))
        >>> ax.plot([0, 1], [1, 0]) and None
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # the backend, chosen here and only here
    axes = fig.subplots(nrows, ncols, squeeze=squeeze)
    return fig, axes


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (tight layout)."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig: Figure, path: Path, dpi: int = 100) -> Path:
    """Write the figure as a PNG file and return its path.

    Example:
        >>> save_png(new_figure((4, 3))[0], Path("fig.png"))
        PosixPath('fig.png')
    """
    path.write_bytes(png_bytes(fig, dpi))
    return path


def png_base64(fig: Figure, dpi: int = 100) -> str:
    """The figure as base64 PNG text, for a ``data:image/png;base64,`` address."""
    return base64.b64encode(png_bytes(fig, dpi)).decode("ascii")


def file_base64(path: Path | None) -> str | None:
    """A PNG file as base64 text (``None`` for no figure), so a page carries its figures when moved."""
    return None if path is None else base64.b64encode(path.read_bytes()).decode("ascii")
