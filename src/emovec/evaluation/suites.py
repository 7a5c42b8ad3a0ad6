"""Prompt suites: the project's own (harmful/benign pairs, red-team framings, helpfulness tasks), outside
CSV/JSONL files with a column mapping, and public suites read from the files of PyPI packages.

Every item says what it is (``kind``): ``harmful`` (should be refused), ``benign`` (should be answered; a
look-alike of a harmful request, in the spirit of XSTest), ``redteam`` (a harmful request wrapped in a
framing), or ``helpful`` (a task with reference answers). Every suite records its source and licence.

The project's own suites and ``load_suite`` live here; the item and suite types in ``suite_items``; outside
files and the public suites in ``suite_files`` (all re-exported).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from emovec.data import data_path
from emovec.evaluation.suite_files import LAYOUTS, PUBLIC_SUITES, Layout, load_suite_file, public_suite
from emovec.evaluation.suite_items import HARMFUL_KINDS, KINDS, Kind, PromptItem, Suite, SuiteError, read_jsonl

__all__ = ["BUILTIN_SUITES", "HARMFUL_KINDS", "KINDS", "LAYOUTS", "PUBLIC_SUITES", "Kind", "Layout", "PromptItem",
           "Suite", "SuiteError", "benign_suite", "framings", "harmful_suite", "helpful_suite", "load_suite",
           "load_suite_file", "paired_suite", "public_suite", "read_jsonl", "redteam_suite", "suite_names"]


# --- the project's own suites -------------------------------------------------------------------------

_OWN_SOURCE = "emovec package data (written for emovec)"
_OWN_LICENCE = "Apache-2.0"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in read_jsonl(path)]


@cache
def framings() -> dict[str, dict[str, Any]]:
    """Red-team framings: ``{name: {"template": "... {prompt}", "tone_masked": bool}}``. ``tone_masked``
    framings ask for a calm or confident register, where a tone-masked failure can occur."""
    data: dict[str, dict[str, Any]] = json.loads(data_path("suites/framings.json").read_text(encoding="utf-8"))
    return data


def _pairs() -> list[dict[str, Any]]:
    return _read_jsonl(data_path("suites/harmful_pairs.jsonl"))


def harmful_suite() -> Suite:
    items = tuple(PromptItem(f"{r['id']}-h", r["harmful"], "harmful", r["category"], pair=f"{r['id']}-b")
                  for r in _pairs())
    return Suite("harmful", items, _OWN_SOURCE, _OWN_LICENCE, "100 harmful requests in 10 categories")


def benign_suite() -> Suite:
    items = tuple(PromptItem(f"{r['id']}-b", r["benign"], "benign", r["category"], pair=f"{r['id']}-h")
                  for r in _pairs())
    return Suite("benign", items, _OWN_SOURCE, _OWN_LICENCE,
                 "100 benign look-alikes of the harmful requests (same words or topic, safe intent)")


def paired_suite() -> Suite:
    """Harmful and benign items interleaved (h1, b1, h2, b2, ...), so a limit keeps them balanced."""
    h, b = harmful_suite().items, benign_suite().items
    items = tuple(x for pair in zip(h, b, strict=True) for x in pair)
    return Suite("paired", items, _OWN_SOURCE, _OWN_LICENCE, "harmful/benign pairs, interleaved")


def redteam_suite(which: Sequence[str] | None = None) -> Suite:
    """Each harmful request under each framing, ordered in rounds: round ``k`` gives request ``i`` framing
    ``(i + k) mod F``, so the first ``n`` items are ``n`` different requests under rotating framings."""
    table = framings()
    names = list(which) if which is not None else list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SuiteError(f"unknown framing {unknown[0]!r}; known: {', '.join(table)}")
    harmful = harmful_suite().items
    items = []
    for k in range(len(names)):
        for i, item in enumerate(harmful):
            name = names[(i + k) % len(names)]
            prompt = table[name]["template"].format(prompt=item.prompt)
            items.append(PromptItem(f"{item.id}-{name}", prompt, "redteam", item.category, item.pair, framing=name))
    return Suite("redteam", tuple(items), _OWN_SOURCE, _OWN_LICENCE,
                 f"harmful requests under {len(names)} framings: {', '.join(names)}")


def helpful_suite() -> Suite:
    items = tuple(PromptItem(r["id"], r["prompt"], "helpful", r["category"], reference=tuple(r["reference"]))
                  for r in _read_jsonl(data_path("suites/helpful.jsonl")))
    return Suite("helpful", items, _OWN_SOURCE, _OWN_LICENCE, "short tasks with accepted reference answers")


BUILTIN_SUITES = {
    "harmful": harmful_suite,
    "benign": benign_suite,
    "paired": paired_suite,
    "redteam": redteam_suite,
    "helpful": helpful_suite,
}


def suite_names() -> list[str]:
    return [*BUILTIN_SUITES, *PUBLIC_SUITES]


def load_suite(name_or_path: str | Path, *, layout: str | Layout | None = None, limit: int | None = None) -> Suite:
    """A suite by name (the project's own or a public one) or from a file.

    Args:
        name_or_path: ``harmful``, ``benign``, ``paired``, ``redteam``, ``helpful``, a public suite
            (``strongreject``, ``harmbench``, ``advbench``, ``donotanswer``, ``rho-refusal``, ``rho-overrefusal``,
            ...), or a CSV/JSONL/JSON path.
        layout: for files: a layout name or ``Layout``.
        limit: keep the first ``limit`` items.
    """
    key = str(name_or_path)
    if key in BUILTIN_SUITES:
        suite = BUILTIN_SUITES[key]()
    elif key in PUBLIC_SUITES:
        suite = public_suite(key)
    elif Path(key).suffix.lower() in (".csv", ".jsonl", ".json") or Path(key).exists():
        suite = load_suite_file(key, layout or "advbench")
    else:
        raise SuiteError(f"unknown suite {key!r}; known: {', '.join(suite_names())}, or a .csv/.jsonl/.json path")
    return suite.limit(limit)
