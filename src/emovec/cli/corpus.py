"""Corpus commands of the ``emovec`` CLI (``emovec corpus check``, ``emovec corpus assemble``): thin shells over
``emovec.corpus_check`` and ``emovec.corpus_build``. Registered on the shared app when ``emovec.cli`` imports
this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emovec.cli.shared import app, err, friendly, out

corpus_app = typer.Typer(no_args_is_help=True, help="Check and assemble story corpora.")
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("check")
@friendly
def check(
    path: Annotated[str, typer.Argument(help="corpus JSONL(.gz), a writer's file, or a shipped corpus's name")],
    min_words: int = 80,
    max_words: int = 130,
    min_neutral: Annotated[int, typer.Option(help="neutral texts required (0 for one writer's file)")] = 150,
    emotions: Annotated[str | None, typer.Option(help="comma-separated emotions every topic must have "
                                                 "(default: the 171)")] = None,
    show: Annotated[int, typer.Option(help="problems listed per check (0: all)")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print the full result as JSON")] = False,
) -> None:
    """Is a corpus fit to extract vectors from? Every cell, lengths, the emotion's own words, duplicates, meta text
    and refusals, neutral texts. Exits 1 naming each failing record when it is not."""
    from emovec.corpus_check import CheckSettings, check_corpus

    names = [e.strip() for e in emotions.split(",")] if emotions else None
    result = check_corpus(path, CheckSettings(min_words=min_words, max_words=max_words, min_neutral=min_neutral,
                                              emotions=names), show_progress=not as_json)
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        _print_check(result, show)
    if not result.ok:
        raise typer.Exit(1)


def _print_check(result, show: int) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"{result.path}: {result.n_stories} stories, {result.n_neutral} neutral texts, "
                        f"{result.topics} topics, {len(result.writers)} writers")
    for col in ("check", "checked", "failed", "what to do"):
        table.add_column(col)
    for row in result.rows:
        mark = "[green]ok[/]" if row.passed else f"[red]{row.failed}[/]"
        table.add_row(row.check, str(row.checked), mark, "" if row.passed else row.fix)
    out.print(table)
    out.print(f"other emotions' words: {result.other_emotion_words_per_story:.2f} per story, in "
              f"{result.stories_naming_other_emotions:.1%} of stories; neutral texts with an emotion word: "
              f"{result.neutral_with_emotion_words}; highest n-gram overlap between two texts "
              f"{result.max_near_duplicate:.2f}", highlight=False)
    for row in result.rows:
        problems = [p for p in result.problems if p.check == row.check]
        for p in problems[:show or None]:
            out.print(f"  [red]{row.check}[/] {p.record}: {p.detail}", highlight=False)
        if show and len(problems) > show:
            out.print(f"  ... and {len(problems) - show} more {row.check} problems (--show 0 lists all)")
    verdict = "[green]passes[/]" if result.ok else "[red]fails[/]: fix the records named above, then check again"
    out.print(f"corpus {verdict}")


@corpus_app.command("assemble")
@friendly
def assemble(
    writer_files: Annotated[list[Path], typer.Argument(help="writers' JSONL files (keys kind, emotion, topic_id, "
                                                       "writer, brief, text; neutral texts: subject)")],
    topics_file: Annotated[Path, typer.Option("--topics", help="id<TAB>[domain<TAB>]situation per line")],
    briefs_dir: Annotated[Path, typer.Option("--briefs", help="folder of <brief version>.txt templates")],
    out_file: Annotated[Path, typer.Option("--out", help="corpus to write (.jsonl or .jsonl.gz)")],
    description: Annotated[str, typer.Option(help="one line on who wrote it and how")] = "written corpus",
    overwrite: bool = False,
) -> None:
    """Join writers' files into one corpus (topic-major, ids given) with a meta file naming the design, topics,
    briefs, writers and counts. Run `emovec corpus check` on the result."""
    from emovec.corpus_build import assemble_corpus

    briefs = {p.stem: p.read_text(encoding="utf-8") for p in sorted(briefs_dir.glob("*.txt"))}
    meta = assemble_corpus(writer_files, topics_file, briefs, out_file, description=description,
                           overwrite=overwrite)
    err.print(f"wrote {out_file}: {json.dumps(meta.counts)}")
