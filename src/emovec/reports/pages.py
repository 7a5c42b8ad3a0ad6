"""The jinja2 environment every report page is rendered with.

Shared templates live in ``emovec/reports/templates``: ``base.html.j2`` (one page shell, inline CSS, no external
address, so a page still works when moved) and ``macros.html.j2``; each page extends the shell. A study keeps its
own template in its folder and names that package as ``home``, so its page finds both. Autoescaping is on: model
replies, prompts and names are untrusted text. ``StrictUndefined`` makes a field missing from a context an error
instead of an empty cell.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from emovec._files import atomic_write


@cache
def environment(home: str | None = None) -> Environment:
    """The environment for pages of ``home`` (a package whose folder holds templates; ``None``: the shared ones
    only), built once per home.

    Example:
        >>> environment().get_template("base.html.j2").render(title="t")[:15]
        '<!doctype html>'
    """
    loaders: list[BaseLoader] = [PackageLoader(home, "")] if home else []
    loaders.append(PackageLoader("emovec.reports", "templates"))
    return Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined,
                       autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
                       keep_trailing_newline=False)


def render(template: str, context: dict[str, Any], home: str | None = None) -> str:
    """Render one template with ``context``.

    Args:
        template: the template's file name, e.g. ``"sweep.html.j2"``.
        context: the names the template reads; a missing one raises ``jinja2.UndefinedError``.
        home: the package whose folder holds the template (a study's ``__package__``); ``None`` for the shared
            templates of ``emovec/reports/templates``.

    Returns:
        The page text.

    Example:
        >>> render("blackmail.html.j2", blackmail_context(summary, rows, manifest, image))
    """
    return environment(home).get_template(template).render(**context)


def write_page(path: str | Path, template: str, context: dict[str, Any], home: str | None = None) -> Path:
    """Render a page (``render``) and write it atomically to ``path``; returns the path.

    Example:
        >>> write_page("runs/paper/paper_report.html", "report.html.j2", context(result), "emovec.studies.paper")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, render(template, context, home))
