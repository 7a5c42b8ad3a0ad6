"""The one jinja2 environment every report page is rendered with.

Templates live in ``emovec/reports/templates`` and extend ``base.html.j2`` (one page shell, inline CSS, no
external address, so a page still works when moved). Autoescaping is on: model replies, prompts and names are
untrusted text. ``StrictUndefined`` makes a field missing from a context an error instead of an empty cell.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from emovec._files import atomic_write


@cache
def environment() -> Environment:
    """The shared environment (built once).

    Example:
        >>> environment().get_template("base.html.j2").render(title="t")[:15]
        '<!doctype html>'
    """
    return Environment(loader=PackageLoader("emovec.reports", "templates"), undefined=StrictUndefined,
                       autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
                       keep_trailing_newline=False)


def render(template: str, context: dict[str, Any]) -> str:
    """Render one template of ``emovec/reports/templates`` with ``context``.

    Args:
        template: the template's file name, e.g. ``"sweep.html.j2"``.
        context: the names the template reads; a missing one raises ``jinja2.UndefinedError``.

    Returns:
        The page text.

    Example:
        >>> render("blackmail.html.j2", blackmail_context(summary, rows, manifest, image))
    """
    return environment().get_template(template).render(**context)


def write_result_page(out: str | Path, result: BaseModel, json_name: str, html_name: str, template: str,
                      context: dict[str, Any]) -> Path:
    """Write a study's typed result as JSON and its page as self-contained HTML into ``out`` (both atomic);
    returns the page's path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / json_name, json.dumps(result.model_dump(), indent=1, default=str))
    return atomic_write(folder / html_name, render(template, context))
