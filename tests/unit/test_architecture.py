"""The package graph of emovec flows one way: every import (at module level or inside a function) goes from a
higher layer to a lower one, `metrics` is a leaf that imports nothing of emovec, and no module is far over the
size that says it has one job."""

from __future__ import annotations

import ast
import re
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
    "finetune": 8, "robust": 8,
    "reports": 9,  # shared rendering only: below the studies, which bring their own pages
    "studies": 10, "serve": 10,  # the server sits under the CLI that starts it; nothing else imports it
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


# --- the top of the house: one folder per study (issue 32) ---

STUDIES = SRC / "studies"


def _study_folder(module: str) -> str | None:
    """The study folder a module belongs to (``emovec.studies.<folder>...``), None outside one (``_kit`` is not)."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "studies" and not parts[2].startswith("_"):
        return parts[2]
    return None


def test_study_folders_never_import_each_other() -> None:
    crossing = []
    for mod, path in _files():
        here = _study_folder(mod)
        for line, target in _imports(path):
            there = _study_folder(target)
            if there is not None and there != here and (here is not None or mod.startswith("emovec.studies")):
                crossing.append(f"{path.relative_to(SRC.parent)}:{line} {here or mod} -> {there}")
    assert not crossing, "a study folder imports another (move what they share down a layer):\n" + "\n".join(crossing)


def test_reports_hold_only_shared_rendering() -> None:
    folders = {p.name for p in STUDIES.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders >= {"policy_dominance", "stability", "drift", "cross_model", "robustify", "paper"}
    reports = SRC / "reports"
    named = [p.name for p in [*reports.glob("*.py"), *(reports / "templates").glob("*.j2")]
             if any(p.name.startswith(f) or p.name.startswith(f.split("_")[0]) for f in folders)]
    assert not named, f"study pages belong in their study's folder: {named}"
    for folder in folders:  # a study that draws a page keeps its template beside it
        if (STUDIES / folder / "report.py").exists():
            assert (STUDIES / folder / "report.html.j2").exists(), f"{folder}/report.py without its template"


def _models_in(tp: object, seen: set[type]) -> None:
    """Every pydantic model and dataclass reachable from a type annotation."""
    import dataclasses
    import typing

    from pydantic import BaseModel

    for arg in typing.get_args(tp):
        _models_in(arg, seen)
    if not isinstance(tp, type) or tp in seen:
        return
    if issubclass(tp, BaseModel):
        seen.add(tp)
        for f in tp.model_fields.values():
            _models_in(f.annotation, seen)
    elif dataclasses.is_dataclass(tp):
        seen.add(tp)
        for hint in typing.get_type_hints(tp).values():
            _models_in(hint, seen)


def _fields(model: type) -> set[str]:
    import dataclasses

    if dataclasses.is_dataclass(model):
        return {f.name for f in dataclasses.fields(model)}
    return set(model.model_fields)  # type: ignore[attr-defined]


def test_a_studys_intervals_are_estimates() -> None:
    """No part of a study's result keeps an interval as loose bounds (``low``/``high``, ``x_low``/``x_high``): every
    interval is a ``metrics.Estimate``, in one shape."""
    from emovec.metrics import Estimate
    from emovec.studies import studies

    seen: set[type] = set()
    for study in studies().values():
        _models_in(study.result, seen)
    loose = []
    for model in seen - {Estimate}:
        names = _fields(model)
        pairs = [n for n in names if n.endswith("low") and n.removesuffix("low") + "high" in names]
        if pairs:
            loose.append(f"{model.__module__}.{model.__name__}: {pairs}")
    assert len(seen) > 30 and not loose, f"intervals kept as loose bounds (use metrics.Estimate): {loose}"


# The bounds of a figure, by the name its result file gives it: the last name on its path that is listed here.
PLUTCHIK = ("joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation")
UNIT_BOUNDED = {  # rates, shares, AUCs, judge scores: [0, 1]
    "auc", "matched", "readout_auc", "index", "answer_benign", "balanced_accuracy", "harmful_detail", "helpfulness",
    "refuse_harmful", "tone_masked_rate", "refusal_judges_agree", "repetition", "helpful", "refusal_benign",
    "refusal_redteam", "refusal_redteam_attacked", "refusal_redteam_unseen", "harmful_detail_interval",
    "refusal_harmful", "refusal_overrefusal", *(f"nade_{e}" for e in PLUTCHIK)}
SIGN_BOUNDED = {  # cosines, correlations and differences of [0, 1] figures: [-1, 1]
    "split_half", "split_half_null", "split_half_null_pooled", "resample", "template", "genre", "rho", "r",
    "steering_r", "nade_calm_minus_distress", "judge_target", "judge_matrix", "monitoring_value", "steering_value"}


def _estimates(value: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict[str, float]]]:
    if isinstance(value, dict):
        if {"value", "low", "high", "n", "method"} <= set(value):
            return [(path, value)]  # type: ignore[list-item]
        return [e for k, v in value.items() for e in _estimates(v, (*path, str(k)))]
    if isinstance(value, list):
        return [e for v in value for e in _estimates(v, path)]
    return []


def bound_violations(result: object) -> list[str]:
    """Every figure of a result (as JSON-like data) whose value or interval leaves its bounds."""
    import math

    out = []
    for path, est in _estimates(result):
        name = next((c for c in reversed(path) if c in UNIT_BOUNDED or c in SIGN_BOUNDED), None)
        if name is None:
            continue
        low, high = (0.0, 1.0) if name in UNIT_BOUNDED else (-1.0, 1.0)
        for key in ("value", "low", "high"):
            x = est[key]
            if x is not None and math.isfinite(x) and not low - 1e-9 <= x <= high + 1e-9:
                out.append(f"{'.'.join(path)}.{key} = {x} outside [{low}, {high}]")
    return out


def test_a_bounded_figures_interval_stays_inside_its_bounds() -> None:
    """A cosine, correlation, AUC, rate or share and its interval stay inside [-1, 1] or [0, 1]: in the recorded
    results of the studies that keep every interval as an Estimate (``tests/unit/golden``; ``test_study_results``
    checks every study's fresh result the same way), and not in the old paper file, whose raw-scale Student-t
    intervals over 3 paraphrases are why this rule exists."""
    import json

    golden = Path(__file__).parent / "golden"
    checked = 0
    for name in ("policy_dominance", "stability", "paper", "robustify"):
        data = json.loads((golden / f"{name}.json").read_text())
        assert not bound_violations(data), (name, bound_violations(data)[:10])
        checked += len(_estimates(data))
    old = json.loads((golden / "paper_schema1.json").read_text())
    assert any(t["rho_high"] > 1 or t["rho_low"] < -1 for t in old["intensity"])
    assert checked > 300


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_a_threshold_is_one_named_constant_read_by_the_check_and_the_rule() -> None:
    """In the studies, no comparison is made against a bare fractional number, and no text states one (``< 0.1``):
    a threshold is a named constant that both the check and the text stating the rule read."""
    bare = []
    for mod, path in _files():
        if not mod.startswith("emovec.studies"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        specs = {id(c) for n in ast.walk(tree) if isinstance(n, ast.FormattedValue) and n.format_spec is not None
                 for c in ast.walk(n.format_spec)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for c in (node.left, *node.comparators):
                    if isinstance(c, ast.Constant) and isinstance(c.value, float) and c.value not in (0.0, 1.0):
                        bare.append(f"{path.relative_to(SRC.parent)}:{node.lineno} compares with {c.value}")
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                  and id(node) not in specs and re.search(r"(>=|<=|<|>)\s*-?\d+\.\d", node.value)):
                bare.append(f"{path.relative_to(SRC.parent)}:{node.lineno} states {node.value.strip()[:60]!r}")
    assert not bare, "name these thresholds once and read the name in the check and in the text:\n" + "\n".join(bare)


MAX_FUNCTION_LINES = 60  # a function's code, its docstring left out (the docstring's Args section is required)


def test_no_function_is_longer_than_one_job() -> None:
    """A function whose code (its lines less its docstring) runs past ``MAX_FUNCTION_LINES`` is split where its
    steps are, or says in its docstring why it stays whole."""
    long = []
    for _, path in _files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.end_lineno is None:
                continue
            doc = ast.get_docstring(node) or ""
            first = node.body[0]
            doc_lines = first.end_lineno - first.lineno + 1 if doc and first.end_lineno is not None else 0
            code = node.end_lineno - node.lineno + 1 - doc_lines
            if code > MAX_FUNCTION_LINES and "stays whole" not in doc:
                long.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name} ({code} lines)")
    assert not long, "split these where their steps are, or say why they stay whole:\n" + "\n".join(long)


def test_imports_stand_at_the_top_of_a_module() -> None:
    """emovec's own modules are imported at the top of a module; inside a function only on the command line
    (whose commands load what they use when they run) and where an optional extra (Ray, Inspect) is reached."""
    optional = {"emovec.inspect_provider", "emovec.executors.ray_pool"}  # modules of the optional extras
    inner = []
    for mod, path in _files():
        if mod.startswith("emovec.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for sub in ast.walk(node):
                    if (isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("emovec")
                            and mod not in optional and sub.module not in optional):
                        inner.append(f"{path.relative_to(SRC.parent)}:{sub.lineno} {sub.module}")
    assert not inner, "import these at the top of the module:\n" + "\n".join(inner)
