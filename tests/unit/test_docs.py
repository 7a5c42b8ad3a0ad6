"""The README and the docs as tests: the block collector and its directives, the cheap blocks (no directive),
the public face (every ``from emovec... import X`` resolves; top-level names are in ``emovec.__all__``), every
``emovec`` command line names a real command and real options, and the README's length.

The blocks marked `integration` or `slow` run in tests/integration/test_docs_blocks.py. The directive syntax is in
docs/contributing.md."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.doc_blocks import (
    ROOT,
    SKIP_REASONS,
    Block,
    DocBlockError,
    apply_small,
    collect,
    emovec_argv,
    parse_markdown,
    prepare,
    python_syntax,
    run_page,
    shell_commands,
)

PAGES = collect()

# Blocks skipped on purpose, per page: a new skip (or a forgotten one) changes a count and fails
# test_skips_are_counted until this table is updated with it.
EXPECTED_SKIPS: dict[str, Counter[str]] = {
    "README.md": Counter(install=1),
    "docs/contributing.md": Counter(install=2),
    "docs/getting-started.md": Counter(install=1),
    "docs/guides/cross-model.md": Counter(long=1),
    "docs/guides/drift.md": Counter(cluster=1, long=1),
    "docs/guides/gpu.md": Counter(install=1, gpu=2),
    "docs/guides/paper.md": Counter(long=1),
    "docs/guides/policy-dominance.md": Counter(long=2),
    "docs/guides/ray.md": Counter(cluster=4),
    "docs/guides/serve.md": Counter(interactive=1, external=4),
    "docs/guides/robustify.md": Counter(long=2),
    "docs/guides/steer-monitor-export.md": Counter(interactive=1, external=1),
}


def _unit_pages() -> list[str]:
    return [p for p, blocks in PAGES.items() if any(b.runs and b.directives.tier == "unit" for b in blocks)]


# -- the collector and its directives ---------------------------------------------------------------------------

def test_directives_are_read() -> None:
    text = "\n".join([
        "intro", "<!-- test: skip gpu -->", "```python", "import torch", "```", "",
        "<!-- test: integration; small --topics 3 --permutations 0 -->",
        "```bash", "emovec demo --out runs/demo", "```",
        "<!-- test: file sweep.yaml -->", "```yaml", "out: runs/sweep", "```",
        "<!-- test: slow -->", "```python", "x = 1", "```",
        "<!-- test: slow -->", "<!-- test: continue -->", "```python", "print(x)", "```",
        "<!-- test: replace \"--preset full\" \"--preset quick\" -->", "```console",
        "$ emovec study drift --preset full", "output line", "```",
        "```text", "just output", "```",
    ])
    blocks = parse_markdown(text, "page.md")
    kinds = [(b.kind, b.directives.tier, b.directives.skip, b.runs) for b in blocks]
    assert kinds == [("python", "unit", "gpu", False), ("shell", "integration", None, True),
                     ("file", "unit", None, False), ("python", "slow", None, True), ("python", "slow", None, True),
                     ("console", "unit", None, True), ("show", "unit", None, False)]
    assert blocks[1].source() == "emovec demo --out runs/demo --topics 3 --permutations 0\n"
    assert blocks[4].directives.cont and blocks[0].line == 3 and blocks[0].where == "page.md:3"
    assert shell_commands(blocks[5].source(), console=True) == ["emovec study drift --preset quick"]


@pytest.mark.parametrize("text, message", [
    ("<!-- test: skip -->\n```python\nx\n```\n", "needs a reason"),
    ("<!-- test: skip lazy -->\n```python\nx\n```\n", "needs a reason"),
    ("<!-- test: sometimes -->\n```python\nx\n```\n", "unknown directive"),
    ("<!-- test: integration -->\n\n```python\nx\n```\n", "just before a code fence"),
    ("<!-- test: integration -->\ntext\n", "just before a code fence"),
    ("<!-- test: small --topics 2 -->\n```python\nx\n```\n", "'small' applies to shell blocks"),
    ("<!-- test: integration -->\n```text\nx\n```\n", "is not run"),
    ("<!-- test: skip gpu; integration -->\n```python\nx\n```\n", "takes no other directive"),
    ("<!-- test: integration; slow -->\n```python\nx\n```\n", "either 'integration' or 'slow'"),
    ("see <!-- test: integration --> here\n", "must be a whole line"),
    ("```python\nx\n", "never closed"),
])
def test_bad_directives_are_errors(text: str, message: str) -> None:
    with pytest.raises(DocBlockError, match=message):
        parse_markdown(text, "page.md")


def test_continue_needs_a_python_block_of_its_tier(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- test: integration -->\n```python\nx = 1\n```\n<!-- test: continue -->\n```python\nx\n```\n")
    with pytest.raises(DocBlockError, match="'continue' needs"):
        collect([page], root=tmp_path)


def test_small_replaces_or_appends_options_on_emovec_lines_only() -> None:
    code = 'emovec extract --out runs/v --topics 26 --layers "0-29"  # all of it\nls runs\n'
    out = apply_small(code, ["--topics", "3", "--layers", "8,16", "--skip-short"], "x")
    assert out.splitlines() == ["emovec extract --out runs/v --topics 3 --layers 8,16 --skip-short  # all of it",
                                "ls runs"]
    assert apply_small("$ emovec demo\nprinted\n", ["--topics", "3"], "x", console=True).startswith(
        "$ emovec demo --topics 3\n")
    with pytest.raises(DocBlockError, match="no `emovec` command"):
        apply_small("ls\n", ["--topics", "3"], "x")
    with pytest.raises(DocBlockError, match="'replace' finds no"):
        parse_markdown('<!-- test: replace "abc" "d" -->\n```bash\nls\n```\n', "p.md")[0].source()


def test_shell_lines_join_continuations_and_drop_comments() -> None:
    code = "# a comment\nemovec extract \\\n    --out runs/v   # where\n\nls\n"
    assert shell_commands(code) == ["emovec extract      --out runs/v   # where", "ls"]
    assert emovec_argv("EMOVEC_CORPUS=smollm2 emovec inspect runs/v --json  # note") == ["inspect", "runs/v", "--json"]
    assert emovec_argv("make demo") is None


def test_a_failing_block_without_a_directive_fails(tmp_path: Path) -> None:
    """Nothing passes silently: a failing python or shell block with no directive fails its page, named."""
    for code, lang in (("raise SystemExit(3)", "python"), ("false", "bash"), ("import no_such_module_x", "python")):
        blocks = parse_markdown(f"text\n\n```{lang}\n{code}\n```\n", "page.md")
        with pytest.raises(DocBlockError, match=r"page\.md:3"):
            run_page(blocks, "unit", tmp_path, timeout=60)


def test_blocks_of_a_page_share_a_folder_and_chains_share_a_process(tmp_path: Path) -> None:
    text = "\n".join([
        "<!-- test: file data/in.txt -->", "```text", "hello", "```",
        "```bash", "cat data/in.txt > out.txt", "```",
        "```python", "from pathlib import Path", "word = Path('out.txt').read_text().strip()", "```",
        "<!-- test: continue -->", "```python", "assert word == 'hello', word", "```",
        "```python", "assert 'word' not in globals()  # a new chain starts fresh", "```",
    ])
    blocks = parse_markdown(text, "page.md")
    prepare(blocks, tmp_path)
    ran = run_page(blocks, "unit", tmp_path, timeout=60).ran
    assert [w for w, _ in ran] == ["page.md:5", "page.md:8, page.md:13, page.md:16"]


# -- the docs themselves ----------------------------------------------------------------------------------------

def test_readme_is_short() -> None:
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= 200, f"README.md has {n} lines; move the detail into docs/"


def test_readme_links_resolve() -> None:
    """The README's relative links point at files that exist (the site's own links are checked by the strict
    build, tests/integration/test_docs_blocks.py)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    missing = [t for t in targets if "://" not in t and not (ROOT / t.split("#")[0]).exists()]
    assert targets and not missing, f"README links to missing files: {missing}"


def test_readme_lists_every_command() -> None:
    import typer.main

    from emovec.cli import app

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert names and not [n for n in names if f"`emovec {n}" not in text and f"/ `{n}`" not in text]


def test_the_two_quickstarts_are_one() -> None:
    """docs/index.md repeats the README's quickstart; the integration tier runs the README's, the slow tier both."""
    readme = [b.code for b in PAGES["README.md"] if b.kind == "python"]
    index = [b.code for b in PAGES["docs/index.md"] if b.kind == "python"]
    assert readme and readme == index


def test_every_fence_names_its_language() -> None:
    bare = [b.where for blocks in PAGES.values() for b in blocks if not b.language]
    assert not bare, f"give these code fences a language (python, bash, console, text, yaml, ...): {bare}"


def test_skips_are_counted() -> None:
    found = {page: Counter(b.directives.skip for b in blocks if b.directives.skip) for page, blocks in PAGES.items()}
    found = {page: c for page, c in found.items() if c}
    assert found == EXPECTED_SKIPS, "skipped blocks changed; update EXPECTED_SKIPS if that is intended"
    assert all(reason in SKIP_REASONS for c in found.values() for reason in c)


def test_python_blocks_parse() -> None:
    for blocks in PAGES.values():
        for b in blocks:
            if b.kind == "python" or (b.kind == "file" and b.language == "python"):
                python_syntax(b)


def _python_blocks() -> list[Block]:
    return [b for blocks in PAGES.values() for b in blocks if b.language in ("python", "py")]


def test_public_face_imports_resolve() -> None:
    """Every ``from emovec... import X`` in the README and docs (skipped blocks too) resolves, and every name
    taken from the top-level package, by import or as ``emovec.X``, is in ``emovec.__all__``."""
    import emovec

    problems: list[str] = []
    for b in _python_blocks():
        tree = python_syntax(b)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "emovec":
                try:
                    module = importlib.import_module(node.module)
                except ImportError as e:
                    problems.append(f"{b.where}: {node.module}: {e}")
                    continue
                for alias in node.names:
                    if node.module == "emovec" and alias.name not in emovec.__all__:
                        problems.append(f"{b.where}: emovec.{alias.name} is not in emovec.__all__")
                    elif not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            problems.append(f"{b.where}: cannot import {alias.name} from {node.module}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "emovec":
                        try:
                            importlib.import_module(alias.name)
                        except ImportError as e:
                            problems.append(f"{b.where}: import {alias.name}: {e}")
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "emovec"
                  and node.attr not in emovec.__all__ and not inspect.ismodule(getattr(emovec, node.attr, None))):
                problems.append(f"{b.where}: emovec.{node.attr} is not in emovec.__all__")
    assert not problems, "\n".join(problems)


def cli_problems(where: str, line: str) -> list[str]:
    """What is wrong with one shell line's ``emovec`` commands: an unknown command or an unknown option."""
    import typer.main
    from typer.core import TyperGroup

    from emovec.cli import app

    root: Any = typer.main.get_command(app)  # typer's own click: a group has `commands`, a command `params`
    problems: list[str] = []
    for part in line.replace("&&", ";").split(";"):
        argv = emovec_argv(part.strip())
        if argv is None:
            continue
        cmd = root
        path = ["emovec"]
        args = list(argv)
        while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
            default_run = type(cmd).parse_args is not TyperGroup.parse_args  # a group whose default is `run`
            if args[0] not in cmd.commands and "run" in cmd.commands and default_run:
                args = ["run", *args]  # emovec judge NAME FILE is emovec judge run NAME FILE
            sub = cmd.commands.get(args[0])
            if sub is None:
                problems.append(f"{where}: {' '.join(path)} has no command {args[0]!r}")
                break
            path.append(args.pop(0))
            cmd = sub
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        problems += [f"{where}: {' '.join(path)} has no option {a.split('=')[0]}" for a in args
                     if a.startswith("--") and a.split("=")[0] not in known]
    return problems


def test_cli_check_finds_unknown_commands_and_options() -> None:
    assert cli_problems("x", "emovec steer runs/demo --prompt hi --steer calm=0.1 --layers 16") == []
    assert cli_problems("x", "emovec judge refusal replies.csv --method rules") == []
    assert cli_problems("x", "emovec steer runs/demo --strength 0.1") == ["x: emovec steer has no option --strength"]
    assert cli_problems("x", "emovec study nonsense") == ["x: emovec study has no command 'nonsense'"]


def test_emovec_command_lines_name_real_commands_and_options() -> None:
    """Every ``emovec ...`` line of a shell block (skipped ones too) names a command that exists and options it
    takes, so a renamed command or option fails here even where the block cannot run."""
    problems: list[str] = []
    for blocks in PAGES.values():
        for b in blocks:
            if b.kind in ("shell", "console"):
                for line in shell_commands(b.source() if b.runs else b.code, console=b.kind == "console"):
                    problems += cli_problems(b.where, line)
    assert not problems, "\n".join(problems)


def test_unit_blocks_are_cheap() -> None:
    """The unit tier runs no `emovec` command, loads no model and reads no vector set: those blocks say
    `integration` (or `slow`)."""
    heavy = [b.where for blocks in PAGES.values() for b in blocks if b.runs and b.directives.tier == "unit" and (
        (b.kind in ("shell", "console") and any(emovec_argv(c) is not None or "make " in c
                                                 for c in shell_commands(b.code, console=b.kind == "console")))
        or (b.kind == "python" and ("load_model(" in b.code or "runs/" in b.code)))]
    assert not heavy, f"mark these blocks `<!-- test: integration -->`: {heavy}"


@pytest.mark.parametrize("page", _unit_pages())
def test_unit_blocks_run(page: str, tmp_path: Path) -> None:
    """The page's blocks with no tier directive, in order, in one fresh folder."""
    blocks = PAGES[page]
    prepare(blocks, tmp_path)
    run_page(blocks, "unit", tmp_path, timeout=300)
