"""The package graph of emovec flows one way: every import (at module level or inside a function) goes from a
higher layer to a lower one, `metrics` is a leaf that imports nothing of emovec, and no module is far over the
size that says it has one job."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "emovec"

# low to high: a unit may import only from units of a lower rank (or from itself)
RANK: dict[str, int] = {
    "_version": 0, "_files": 0, "_progress": 0, "errors": 0, "data": 0, "metrics": 0,
    "models": 1,
    "capture": 2, "executors": 2, "corpus": 2,
    "corpus_writer": 3, "corpus_check": 3, "corpus_build": 3,
    "vectors": 4,
    "steer": 5, "monitor": 5, "validation": 5,
    "generation": 6, "transcripts": 6, "export": 6, "parsing": 6,
    "evaluation": 7,
    "drift": 8, "robust": 8,
    "studies": 9,
    "reports": 10,
    "cli": 11, "inspect_provider": 11, "__init__": 11,
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported emovec module) for every import in the file, wherever it stands."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("emovec"):
            if node.module == "emovec":  # `from emovec import metrics`: the subpackages named
                out += [(node.lineno, f"emovec.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("emovec.")]
    return out


def _files() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        found.append((".".join(rel.parts).removesuffix(".__init__"), path))
    return found


def test_every_unit_of_the_package_has_a_layer() -> None:
    units = {_unit(mod) if mod != "emovec" else "__init__" for mod, _ in _files()}
    assert units <= set(RANK), f"give these a layer in RANK: {sorted(units - set(RANK))}"


def test_imports_only_go_down_the_layers_and_metrics_is_a_leaf() -> None:
    upward = []
    for mod, path in _files():
        here = _unit(mod) if mod != "emovec" else "__init__"
        for line, target in _imports(path):
            there = _unit(target)
            if there == here or there not in RANK:
                continue
            if RANK[there] >= RANK[here]:
                upward.append(f"{path.relative_to(SRC.parent)}:{line} {here} -> {there}")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)
    metrics = [t for mod, path in _files() if _unit(mod) == "metrics" for _, t in _imports(path)
               if _unit(t) != "metrics"]
    assert not metrics, f"metrics must import nothing of emovec, imports {metrics}"


def test_no_module_is_far_over_the_size_of_one_job() -> None:
    limit = 450  # the aim is ~300 lines; past this a module is doing more than one job
    big = {str(p.relative_to(SRC.parent)): n for _, p in _files()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit}
    assert not big, f"split these modules: {big}"
