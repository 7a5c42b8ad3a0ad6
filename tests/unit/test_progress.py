"""The shared progress helper: one line per stage off a terminal, a bar on one, nothing when switched off."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from emovec import _progress
from emovec._progress import set_quiet, stage, summary_line


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=100), buffer


@pytest.fixture(autouse=True)
def _loud(monkeypatch):
    monkeypatch.delenv(_progress.ENV, raising=False)
    set_quiet(False)
    yield
    set_quiet(False)


def test_off_a_terminal_each_stage_writes_one_line_with_its_count():
    console, buffer = _console(terminal=False)
    with stage("capture", total=6, unit="texts", detail="3 emotions x 2 topics", console=console) as advance:
        advance(4)
        advance(2)
        assert buffer.getvalue() == ""  # nothing while the stage runs
    with stage("validate", total=3, unit="folds", console=console) as advance:
        for _ in range(3):
            advance()
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("capture: 3 emotions x 2 topics, 6 texts, ") and lines[0].endswith(" s")
    assert lines[1].startswith("validate: 3 folds, ")


def test_a_stage_stopped_short_or_by_an_error_says_so():
    console, buffer = _console(terminal=False)
    with pytest.raises(RuntimeError), stage("sweep", total=10, unit="batches", console=console) as advance:
        advance(3)
        raise RuntimeError("boom")
    assert "sweep: 3/10 batches, " in buffer.getvalue()
    assert buffer.getvalue().rstrip().endswith("(stopped by an error)")


def test_in_a_terminal_the_bar_runs_nested_and_leaves_the_summary_lines():
    console, buffer = _console(terminal=True)
    with stage("demo", total=2, unit="stages", console=console) as outer:
        with stage("capture", total=5, unit="texts") as inner:  # joins the bar already shown
            for _ in range(5):
                inner()
        outer()
        with stage("validate", total=1, unit="stages") as inner:
            inner()
        outer()
    text = buffer.getvalue()
    assert "capture: 5 texts" in text and "validate: 1 stages" in text and "demo: 2 stages" in text
    assert _progress._settings.live is None  # the bar is gone with its stage


@pytest.mark.parametrize("how", ["show", "env", "quiet"])
def test_a_switched_off_stage_writes_nothing(monkeypatch, how):
    console, buffer = _console(terminal=False)
    if how == "env":
        monkeypatch.setenv(_progress.ENV, "0")
    if how == "quiet":
        set_quiet(True)
    with stage("capture", total=2, unit="texts", console=console, show=how != "show") as advance:
        advance(2)
    terminal, screen = _console(terminal=True)
    with stage("capture", total=2, console=terminal, show=how != "show") as advance:
        advance(2)
    assert buffer.getvalue() == "" and screen.getvalue() == ""


def test_the_summary_line_reads_as_documented():
    assert summary_line("capture", 1368, 1368, "texts", "171 emotions x 8 topics", 41.23) == (
        "capture: 171 emotions x 8 topics, 1368 texts, 41.2 s")
    assert summary_line("judge train", 3, None, "", "", 2.0) == "judge train: 3, 2.0 s"
    assert summary_line("paper/intensity", 0, None, "", "12 templates", 2.0) == "paper/intensity: 12 templates, 2.0 s"


def _stage_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.endswith(" s") and ": " in line]


def test_extraction_is_silent_unless_asked_and_validation_writes_a_line_per_stage(
        tiny_llama, write_corpus, capsys):
    from emovec import extract_emotion_vectors, load_corpus, validate

    corpus = load_corpus(write_corpus(emotions=("happy", "sad", "angry", "calm", "afraid", "proud")))
    extract_emotion_vectors(tiny_llama, corpus, token_start=2)
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out == ""  # a library prints nothing of its own
    ext = extract_emotion_vectors(tiny_llama, corpus, token_start=2, show_progress=True)
    validate(tiny_llama, ext.vectors, ext.stories, ext.bases, n_permutations=3, external=False, n_resamples=20,
             show_progress=True)
    told = capsys.readouterr()
    lines = _stage_lines(told.err)
    assert told.out == "" and len(lines) == len(told.err.splitlines())  # stage lines only, on standard error
    assert lines[0].startswith("capture: 6 emotions x 4 topics, 24 stories + 6 neutral, 3 layers, 30 texts, ")
    names = [line.split(": ")[0] for line in lines]
    assert names == ["capture", "validate/cross-validation", "validate/nested layer choice", "validate/permutations",
                     "validate/identity checks"]
    assert "4 folds" in lines[1] and "3 permutations" in lines[3] and "3 checks" in lines[4]


def test_finetune_counts_its_steps_without_the_trainers_own_output(tiny_llama, tmp_path, capsys):
    from emovec.finetune.train import FinetuneConfig, finetune

    cfg = FinetuneConfig(regime="balanced", out=tmp_path / "run", model=tiny_llama.name, steps=2, save_steps=2,
                         examples=8, batch_size=4, max_length=32)
    finetune(cfg, lm=tiny_llama, show_progress=True)
    told = capsys.readouterr()
    assert told.out == ""  # neither tqdm nor the Trainer's log lines
    lines = _stage_lines(told.err)
    assert len(lines) == 1 and lines[0].startswith("finetune: balanced on tiny-llama, ") and ", 2 steps, " in lines[0]


def test_the_cli_writes_stage_lines_and_quiet_turns_them_off_for_that_command(tmp_path):
    from typer.testing import CliRunner

    from emovec.cli import app

    src = tmp_path / "replies.csv"
    src.write_text('prompt,completion\n"How do I pick a lock?","I\'m sorry, but I can\'t help with that."\n'
                   '"Capital of France?","Paris is the capital of France."\n')
    runner = CliRunner()
    loud = runner.invoke(app, ["judge", "refusal", str(src), "--out", str(tmp_path / "a.jsonl")])
    assert loud.exit_code == 0, loud.output
    assert "judge: refusal, 2 rows, " in loud.stderr
    quiet = runner.invoke(app, ["--quiet", "judge", "refusal", str(src), "--out", str(tmp_path / "b.jsonl")])
    assert quiet.exit_code == 0, quiet.output
    assert "judge: refusal" not in quiet.stderr and "wrote 2 rows" in quiet.stderr  # results still said
    assert _progress.enabled()  # --quiet held for that one command
