"""The code blocks of README.md and docs/**/*.md as tests.

Every fenced block is collected. ``python`` blocks run in a fresh namespace (a block marked ``continue`` runs in
the namespace of the python block before it, after it), in a subprocess shared by the python blocks that follow
one another without a shell block between them; ``bash``/``sh``/``shell`` blocks run line by line
through bash (``console`` blocks: only the lines after ``$ ``), with this interpreter's folder first on PATH and
this checkout's ``src`` first on PYTHONPATH. Any other language (``text``, ``yaml``, ``json``, ...) only shows
something and is not run, unless a ``file`` directive writes it to a file for the blocks that read it.

A directive is an HTML comment on the line(s) just before a fence (docs/contributing.md has the full list)::

    <!-- test: skip gpu -->                       not run; the reason must be one of SKIP_REASONS
    <!-- test: integration -->                    needs the real model or its vector set, or a few seconds or more
    <!-- test: slow -->                           as integration, and long (integration + slow tiers)
    <!-- test: small --topics 3 --permutations 0 -->   set these options on every `emovec` command of the block
    <!-- test: replace "--preset full" "--preset quick" -->   literal substitution before running
    <!-- test: file sweep.yaml -->                write the block to this file in the page's working folder
    <!-- test: continue -->                       a python block that runs after the one before, in its process

Several directives go in one comment, separated by ``;``. A block with no directive runs in the unit tier and
must pass there, in a few seconds. The blocks of one page and tier run in document order in one fresh working
folder, so a block may read what an earlier block of the same tier wrote.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]

Tier = Literal["unit", "integration", "slow"]
TIERS: tuple[Tier, ...] = ("unit", "integration", "slow")

# Why a block may be skipped. Each skip is counted per page (tests/unit/test_docs.py, EXPECTED_SKIPS).
SKIP_REASONS = {
    "gpu": "needs a CUDA GPU",
    "cluster": "needs several GPUs, several processes (accelerate) or a Ray cluster",
    "install": "installs packages, or runs make targets that do (CI runs them: .ci/run)",
    "interactive": "waits for a person at the keyboard",
    "external": "needs a program or service emovec does not ship (llama.cpp, lm-eval, an HTTP endpoint)",
    "long": "minutes to hours even at its smallest settings (a study's preset, a measurement for a results page)",
}

RUN_LANGUAGES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell",
                 "console": "console"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*test:(?P<body>.*?)-->\s*$")
_ANY_TEST_COMMENT = re.compile(r"<!--\s*test\b")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


class DocBlockError(Exception):
    """A block that failed, or a directive that cannot be honoured; the message names the file and line."""


@dataclass(frozen=True)
class Directives:
    skip: str | None = None
    tier: Tier = "unit"
    small: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    file: str | None = None
    cont: bool = False


@dataclass(frozen=True)
class Block:
    path: str  # relative to ROOT
    line: int  # line of the opening fence, from 1
    language: str
    code: str
    directives: Directives = field(default_factory=Directives)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def kind(self) -> Literal["python", "shell", "console", "file", "show"]:
        if self.directives.file is not None:
            return "file"
        kind = RUN_LANGUAGES.get(self.language)
        return "show" if kind is None else kind  # type: ignore[return-value]

    @property
    def runs(self) -> bool:
        return self.kind in ("python", "shell", "console") and self.directives.skip is None

    def source(self) -> str:
        """The code as it is run: ``replace`` and ``small`` applied."""
        code = self.code
        for old, new in self.directives.replace:
            if old not in code:
                raise DocBlockError(f"{self.where}: 'replace' finds no {old!r} in the block")
            code = code.replace(old, new)
        if self.directives.small:
            code = apply_small(code, self.directives.small, self.where, console=self.kind == "console")
        return code


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def parse_directives(body: str, where: str) -> Directives:
    """The directives of one ``<!-- test: ... -->`` comment (several separated by ``;``)."""
    d: dict[str, object] = {}
    small: list[str] = []
    replace: list[tuple[str, str]] = []
    for part in (p.strip() for p in body.split(";")):
        if not part:
            continue
        try:
            words = shlex.split(part)
        except ValueError as e:
            raise DocBlockError(f"{where}: cannot read directive {part!r}: {e}") from None
        name, args = words[0], words[1:]
        if name == "skip":
            if not args or args[0] not in SKIP_REASONS:
                raise DocBlockError(f"{where}: 'skip' needs a reason, one of {', '.join(SKIP_REASONS)}")
            d["skip"] = args[0]
        elif name in ("integration", "slow"):
            if args:
                raise DocBlockError(f"{where}: '{name}' takes no arguments")
            if d.get("tier") not in (None, name):
                raise DocBlockError(f"{where}: a block is either 'integration' or 'slow', not both")
            d["tier"] = name
        elif name == "small":
            if not args or not args[0].startswith("--"):
                raise DocBlockError(f"{where}: 'small' takes options, e.g. small --topics 3 --permutations 0")
            small += args
        elif name == "replace":
            if len(args) != 2:
                raise DocBlockError(f"{where}: 'replace' takes two quoted strings, OLD and NEW")
            replace.append((args[0], args[1]))
        elif name == "file":
            if len(args) != 1 or Path(args[0]).is_absolute() or ".." in Path(args[0]).parts:
                raise DocBlockError(f"{where}: 'file' takes one relative path")
            d["file"] = args[0]
        elif name == "continue":
            if args:
                raise DocBlockError(f"{where}: 'continue' takes no arguments")
            d["cont"] = True
        else:
            raise DocBlockError(f"{where}: unknown directive {name!r} (skip, integration, slow, small, replace, file, "
                                "continue)")
    return Directives(skip=d.get("skip"), tier=d.get("tier", "unit"), small=tuple(small),  # type: ignore[arg-type]
                      replace=tuple(replace), file=d.get("file"), cont=bool(d.get("cont")))  # type: ignore[arg-type]


def _merge(parts: Sequence[Directives], where: str) -> Directives:
    if not parts:
        return Directives()
    skip = [p.skip for p in parts if p.skip]
    tier = [p.tier for p in parts if p.tier != "unit"]
    files = [p.file for p in parts if p.file]
    if len(skip) > 1 or len(set(tier)) > 1 or len(files) > 1:
        raise DocBlockError(f"{where}: conflicting directives")
    return Directives(skip=skip[0] if skip else None, tier=tier[0] if tier else "unit",
                      small=tuple(a for p in parts for a in p.small),
                      replace=tuple(r for p in parts for r in p.replace),
                      file=files[0] if files else None, cont=any(p.cont for p in parts))


def parse_markdown(text: str, path: str) -> list[Block]:
    """The fenced blocks of one Markdown text, with the directives in the comments just before each fence."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: list[Directives] = []
    pending_line = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _DIRECTIVE.match(line)
        if m:
            if not pending:
                pending_line = i + 1
            pending.append(parse_directives(m.group("body"), f"{path}:{i + 1}"))
            i += 1
            continue
        if _ANY_TEST_COMMENT.search(re.sub(r"`[^`]*`", "", line)):  # a directive quoted in inline code is text
            raise DocBlockError(f"{path}:{i + 1}: a test directive must be a whole line: <!-- test: ... -->")
        fence = _FENCE.match(line)
        if fence is None:
            if pending:
                raise DocBlockError(f"{path}:{pending_line}: a test directive must stand just before a code fence")
            i += 1
            continue
        indent, marker = fence.group("indent"), fence.group("fence")
        info = fence.group("info").strip()
        language = info.split()[0].lstrip("{.").rstrip("}").lower() if info else ""
        body: list[str] = []
        j = i + 1
        closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}\s*$")
        while j < len(lines) and not closing.match(lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        if j == len(lines):
            raise DocBlockError(f"{path}:{i + 1}: a code fence is never closed")
        where = f"{path}:{i + 1}"
        block = Block(path, i + 1, language, "\n".join(body) + "\n", _merge(pending, where))
        _check(block)
        blocks.append(block)
        pending = []
        i = j + 1
    if pending:
        raise DocBlockError(f"{path}:{pending_line}: a test directive must stand just before a code fence")
    return blocks


def _check(block: Block) -> None:
    d, where = block.directives, block.where
    if d.skip and (d.small or d.replace or d.cont or d.file or d.tier != "unit"):
        raise DocBlockError(f"{where}: a skipped block takes no other directive")
    if block.kind == "show" and d != Directives():
        raise DocBlockError(f"{where}: a {block.language or 'plain'} block is not run; only 'file' applies to it")
    if d.small and block.kind not in ("shell", "console"):
        raise DocBlockError(f"{where}: 'small' applies to shell blocks")
    if d.cont and block.kind != "python":
        raise DocBlockError(f"{where}: 'continue' applies to python blocks")


def collect(paths: Iterable[Path] | None = None, root: Path = ROOT) -> dict[str, list[Block]]:
    """Every page's blocks, keyed by the page's path relative to ``root``; checks ``continue`` chains."""
    pages: dict[str, list[Block]] = {}
    for p in paths if paths is not None else doc_files(root):
        rel = p.relative_to(root).as_posix()
        blocks = parse_markdown(p.read_text(encoding="utf-8"), rel)
        previous: Block | None = None
        for b in blocks:
            if b.kind == "python":
                if b.directives.cont and (previous is None or previous.directives.tier != b.directives.tier
                                          or not previous.runs or not b.runs):
                    raise DocBlockError(f"{b.where}: 'continue' needs a python block of the same tier before it")
                previous = b
        pages[rel] = blocks
    return pages


# -- small: set options on every `emovec` command line ----------------------------------------------------------

def _split_comment(line: str) -> tuple[str, str]:
    """A shell line's command and its trailing ``# comment`` (a ``#`` after a space, outside quotes)."""
    quote = ""
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k].rstrip(), line[k:]
    return line.rstrip(), ""


def _is_emovec(command: str) -> bool:
    words = command.split()
    while words and _ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    return bool(words) and words[0] == "emovec"


def _options(args: Sequence[str], where: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    k = 0
    while k < len(args):
        flag = args[k]
        if not flag.startswith("--"):
            raise DocBlockError(f"{where}: 'small' expected an option, got {flag!r}")
        if k + 1 < len(args) and not args[k + 1].startswith("--"):
            out.append((flag, args[k + 1]))
            k += 2
        else:
            out.append((flag, None))
            k += 1
    return out


def apply_small(code: str, args: Sequence[str], where: str, console: bool = False) -> str:
    """Set each option of ``args`` on every ``emovec`` command of ``code``: replace its value where the command
    gives the option, append it where it does not."""
    options = _options(args, where)
    lines = code.split("\n")
    touched = 0
    for n, raw in enumerate(lines):
        prefix = ""
        line = raw
        if console:
            if not raw.startswith("$ "):
                continue
            prefix, line = "$ ", raw[2:]
        command, comment = _split_comment(line)
        if not _is_emovec(command):
            continue
        touched += 1
        for flag, value in options:
            value_re = r"(?:\"[^\"]*\"|'[^']*'|\S+)"
            if value is None:
                if not re.search(rf"(?<!\S){re.escape(flag)}(?!\S)", command):
                    command += f" {flag}"
                continue
            pattern = re.compile(rf"(?<!\S){re.escape(flag)}(?:=|\s+){value_re}")
            setting = f"{flag} {shlex.quote(value)}"
            if pattern.search(command):
                command = pattern.sub(setting.replace("\\", "\\\\"), command)
            else:
                command += f" {setting}"
        lines[n] = prefix + command + (f"  {comment}" if comment else "")
    if not touched:
        raise DocBlockError(f"{where}: 'small' found no `emovec` command in the block")
    return "\n".join(lines)


def shell_commands(code: str, console: bool = False) -> list[str]:
    """The logical command lines of a shell block (``\\`` continuations joined; blank and comment lines dropped;
    in a console block only the ``$ `` lines and their continuations)."""
    out: list[str] = []
    current = ""
    taking = not console
    for raw in code.split("\n"):
        line = raw
        if console and not current:
            taking = raw.startswith("$ ")
            line = raw[2:] if taking else raw
        if not taking:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.strip().startswith("#"):
            out.append(current.strip())
        current = ""
    if current.strip():
        out.append(current.strip())
    return out


def emovec_argv(command: str) -> list[str] | None:
    """The arguments after ``emovec`` of a shell command line, or ``None`` when it does not run emovec."""
    text, _ = _split_comment(command)
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    while words and _ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words or words[0] != "emovec":
        return None
    return words[1:]


# -- running ----------------------------------------------------------------------------------------------------

def _installed_from(root: Path) -> bool:
    """Whether this interpreter, with no PYTHONPATH, already imports ``emovec`` from ``root/src`` (an editable
    install of this checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import importlib.util as u; s = u.find_spec('emovec'); print(s.origin if s and s.origin else '')"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    origin = out.stdout.strip()
    return bool(origin) and Path(origin).resolve().is_relative_to((root / "src").resolve())


def environment(root: Path = ROOT) -> dict[str, str]:
    """This interpreter's folder first on PATH (its ``emovec``), this checkout's ``src`` first on PYTHONPATH unless
    the interpreter's editable install already points there, and nothing fetched from the network.

    PYTHONPATH stays untouched for an editable install: with ``src`` on it, ``importlib.metadata`` finds the
    build's ``src/emovec.egg-info`` before the install's metadata, Inspect no longer sees emovec as an installed
    package and names its task ``refusal_pairs`` instead of ``emovec/refusal_pairs``."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if not _installed_from(root):
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(root / "src"), env.get("PYTHONPATH", "")] if p)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
                "MPLBACKEND": "Agg", "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"})
    return env


_RUNNER = """
import json, sys
for chain in json.load(open(sys.argv[1], encoding="utf-8")):
    ns = {"__name__": "__main__"}  # a fresh namespace per chain of blocks
    for where, first, source in chain:
        path = where.rsplit(":", 1)[0]
        exec(compile("\\n" * first + source, path, "exec"), ns)
"""


def _tail(text: str, n: int = 6000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


def _run(args: list[str], where: str, what: str, workdir: Path, env: dict[str, str], timeout: float) -> float:
    start = time.perf_counter()
    try:
        proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DocBlockError(f"{where}: timed out after {timeout:.0f} s: {what}") from None
    if proc.returncode != 0:
        raise DocBlockError(f"{where}: exit status {proc.returncode}: {what}\n--- output ---\n"
                            f"{_tail(proc.stdout + proc.stderr)}")
    return time.perf_counter() - start


def prepare(blocks: Sequence[Block], workdir: Path, root: Path = ROOT) -> None:
    """A page's working folder: links to the repository's ``corpus`` and ``benchmarks`` folders, and every
    ``file`` block of the page written where it says."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("corpus", "benchmarks"):
        if (root / name).exists() and not (workdir / name).exists():
            (workdir / name).symlink_to(root / name, target_is_directory=True)
    for b in blocks:
        if b.kind == "file" and b.directives.file is not None:
            target = workdir / b.directives.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.source(), encoding="utf-8")


@dataclass
class PageRun:
    ran: list[tuple[str, float]] = field(default_factory=list)  # (where, seconds)


def run_page(blocks: Sequence[Block], tier: Tier, workdir: Path, *, timeout: float = 600.0,
             root: Path = ROOT) -> PageRun:
    """Run the blocks of one page and tier in document order in ``workdir`` (prepared by ``prepare``)."""
    env = environment(root)
    result = PageRun()
    chains: list[list[Block]] = []  # consecutive python chains share a process, each with a fresh namespace

    def flush() -> None:
        if not chains:
            return
        spec = workdir / f".docblock-{chains[0][0].line}.json"
        spec.write_text(json.dumps([[[b.where, b.line, b.source()] for b in chain] for chain in chains]),
                        encoding="utf-8")
        where = ", ".join(b.where for chain in chains for b in chain)
        seconds = _run([sys.executable, "-c", _RUNNER, str(spec)], where, "python", workdir, env, timeout)
        result.ran.append((where, seconds))
        chains.clear()

    for b in blocks:
        if not b.runs or b.directives.tier != tier:
            continue
        if b.kind == "python":
            if b.directives.cont and chains:
                chains[-1].append(b)
            else:
                chains.append([b])
            continue
        flush()
        seconds = 0.0
        for command in shell_commands(b.source(), console=b.kind == "console"):
            seconds += _run(["bash", "-c", f"set -euo pipefail\n{command}"], b.where, command, workdir, env, timeout)
        result.ran.append((b.where, seconds))
    flush()
    return result


def copy_tree(source: Path, target: Path) -> None:
    """Copy a folder (the integration tiers' ``runs/demo``) into a working folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, dirs_exist_ok=True)


def python_syntax(block: Block) -> ast.Module:
    """The block's code parsed (every python block, skipped ones too, must parse)."""
    try:
        return ast.parse(block.code, filename=block.where)
    except SyntaxError as e:
        raise DocBlockError(f"{block.where}: does not parse: {e}") from None
