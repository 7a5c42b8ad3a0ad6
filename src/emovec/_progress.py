"""Progress of long stages, shown one way wherever emovec runs.

``stage`` is a context manager that yields an ``advance(n=1)`` callback. In a terminal (the console's stream is a
TTY) it shows a rich progress bar while the stage runs and leaves one summary line when it ends; anywhere else
(CI logs, pipes, files) it writes only that line, e.g. ``capture: 171 emotions x 8 topics, 1368 texts, 41.2 s``.
It writes nothing when its ``show`` argument is false, after ``set_quiet(True)`` (the CLI's ``--quiet``) or when
the environment sets ``EMOVEC_PROGRESS=0``. Library functions call it with ``show=show_progress``, which is off
unless the caller asks, so the library is silent when used as a library.

Stages nest: a stage opened inside another adds its row to the bar already shown (rich allows one live display).

Example:
    >>> with stage("sweep", total=len(batches), unit="batches", detail="12 conditions") as advance:
    ...     for batch in batches:
    ...         run(batch)
    ...         advance()
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class Advance(Protocol):
    """``advance(n=1)``: ``n`` more units of the stage are done."""

    def __call__(self, n: int = 1) -> None: ...


ENV = "EMOVEC_PROGRESS"
_OFF = ("0", "false", "no", "off")


@dataclass
class _Settings:
    quiet: bool = False
    live: Progress | None = None  # the bar on screen now; nested stages add rows to it


_settings = _Settings()


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every stage in this process, whatever its ``show`` argument says."""
    _settings.quiet = quiet


def enabled(show: bool = True) -> bool:
    """Whether a stage asked to show itself will: not after ``set_quiet(True)`` or with ``EMOVEC_PROGRESS=0``."""
    return show and not _settings.quiet and os.environ.get(ENV, "1").strip().lower() not in _OFF


def summary_line(name: str, done: int, total: int | None, unit: str, detail: str, seconds: float,
                 failed: bool = False) -> str:
    """``name: detail, done[/total] unit, seconds s`` (the total only when the stage stopped short of it; no count
    for a stage that counts nothing)."""
    count = f"{done}/{total}" if total is not None and done != total else f"{done}"
    parts = [detail] if detail else []
    parts += [f"{count} {unit}".strip()] if total is not None or done else []
    parts += [f"{seconds:.1f} s"]
    return f"{name}: {', '.join(parts)}" + (" (stopped by an error)" if failed else "")


@dataclass
class _Count:
    done: int = 0

    def add(self, n: int = 1) -> None:
        self.done += n


def _ignore(n: int = 1) -> None:
    """The advance callback of a silent stage."""


@contextmanager
def _bar(console: Console, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A row on the bar already shown, or a new (transient) bar when none is."""
    owner = _settings.live is None
    progress = _settings.live or Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True)
    if owner:
        progress.start()
        _settings.live = progress
    task: TaskID = progress.add_task(description, total=total)
    try:
        yield lambda n: progress.advance(task, n)
    finally:
        progress.remove_task(task)
        if owner:
            progress.stop()
            _settings.live = None


@contextmanager
def stage(name: str, total: int | None = None, *, unit: str = "", detail: str = "", show: bool = True,
          console: Console | None = None) -> Iterator[Advance]:
    """Report one stage of work: a bar in a terminal, one summary line at its end elsewhere, nothing when off.

    Args:
        name: the stage, first on its line (``capture``, ``sweep``, ``validate/permutations``: a slash names a part).
        total: units the stage will do, when known (the bar's length).
        unit: what a unit is (``texts``, ``replies``, ``steps``).
        detail: what the stage works on, between the name and the count (``171 emotions x 8 topics``).
        show: the caller's wish; off makes the stage silent (library functions pass their ``show_progress``).
        console: where to write (default: standard error); its ``is_terminal`` chooses the bar or the line.
    """
    if not enabled(show):
        yield _ignore
        return
    out = console or (_settings.live.console if _settings.live is not None else Console(stderr=True))
    count = _Count()
    start = time.perf_counter()
    failed = True
    try:
        if out.is_terminal:
            label = f"{name}: {detail}" if detail else name
            with _bar(out, label, total) as move:

                def advance(n: int = 1) -> None:
                    count.add(n)
                    move(n)

                yield advance
        else:
            yield count.add
        failed = False
    finally:
        line = summary_line(name, count.done, total, unit, detail, time.perf_counter() - start, failed)
        out.print(line, highlight=False, markup=False, soft_wrap=True)
