"""A study is one folder, or one module of another package: the registry finds the built-in studies and those a
package names in the entry-point group ``emovec.studies``, ``emovec study list`` prints each with its question and
presets, and ``emovec study run`` runs any of them, writes its result file and its report and prints its answer.
The tiny study below is such a module: nothing else in emovec names it."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emovec.cli import app
from emovec.studies import (
    ENTRY_POINT_GROUP,
    Study,
    StudyError,
    StudyPreset,
    StudyResult,
    StudyRun,
    _kit,
    get_study,
    register,
    studies,
    write_result,
)


class TinyPreset(StudyPreset):
    count: int


class TinyResult(StudyResult):
    schema_version: int = 3
    preset: str
    total: int
    seed: int


def run_tiny(run: StudyRun) -> TinyResult:
    assert isinstance(run.preset, TinyPreset)
    run.say(f"counting to {run.preset.count}")
    result = TinyResult(preset=run.preset.name, total=sum(range(run.preset.count + 1)), seed=run.seed)
    write_result(run.out / "tiny.json", result)
    return result


def report_tiny(out: Path, result: TinyResult) -> Path:
    page = out / "tiny.html"
    page.write_text(f"<p>{result.total}</p>")
    return page


STUDY = Study(name="tiny", question="What is the sum of the first n numbers?",
              presets={"quick": TinyPreset(name="quick", count=3), "full": TinyPreset(name="full", count=100)},
              run=run_tiny, result=TinyResult, report=report_tiny, answer=lambda r: [f"the sum is {r.total}"])

BUILT_IN = {"policy-dominance", "stability", "drift", "cross-model", "robustify", "paper"}


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty set of directly registered studies and no installed plug-ins."""
    monkeypatch.setattr(_kit, "_REGISTERED", {})
    monkeypatch.setattr(_kit, "entry_points", lambda group: [])


def test_every_built_in_study_is_registered_with_its_question_and_presets(fresh: None) -> None:
    found = studies()
    assert set(found) == BUILT_IN
    for study in found.values():
        assert study.question.endswith("?") and next(iter(study.presets)) == "quick"
        assert all(isinstance(p, StudyPreset) and p.name == name for name, p in study.presets.items())
        assert issubclass(study.result, StudyResult)
    result = CliRunner().invoke(app, ["study", "list"])
    assert result.exit_code == 0, result.output
    for study in found.values():
        assert study.name in result.output and "presets: quick, full" in result.output


def test_a_study_registered_from_the_test_suite_runs_through_the_cli(fresh: None, tmp_path: Path) -> None:
    register(STUDY)
    listed = CliRunner().invoke(app, ["study", "list"])
    assert "tiny" in listed.output and "What is the sum of the first n numbers?" in listed.output
    ran = CliRunner().invoke(app, ["study", "run", "tiny", "--out", str(tmp_path), "--seed", "7"])
    assert ran.exit_code == 0, ran.output
    assert "the sum is 6" in ran.output and "tiny.html" in ran.output
    back = TinyResult.model_validate_json((tmp_path / "tiny.json").read_text())
    assert (back.total, back.seed, back.schema_version, back.preset) == (6, 7, 3, "quick")
    assert (tmp_path / "tiny.html").read_text() == "<p>6</p>"
    full = CliRunner().invoke(app, ["study", "run", "tiny", "--preset", "full", "--out", str(tmp_path)])
    assert "the sum is 5050" in full.output
    wrong = CliRunner().invoke(app, ["study", "run", "tiny", "--preset", "huge", "--out", str(tmp_path)])
    assert wrong.exit_code == 2 and "no preset 'huge'; choose quick or full" in wrong.output


def test_a_package_registers_its_study_through_the_entry_point_group(fresh: None, monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    points = [EntryPoint(name="tiny", value=f"{__name__}:STUDY", group=ENTRY_POINT_GROUP),
              EntryPoint(name="broken", value=f"{__name__}:NOT_THERE", group=ENTRY_POINT_GROUP),
              EntryPoint(name="not-a-study", value=f"{__name__}:BUILT_IN", group=ENTRY_POINT_GROUP)]
    monkeypatch.setattr(_kit, "entry_points", lambda group: points if group == ENTRY_POINT_GROUP else [])
    with caplog.at_level(logging.WARNING, logger="emovec.studies._kit"):
        found = studies()
    assert set(found) == BUILT_IN | {"tiny"} and found["tiny"] is STUDY
    # a plug-in that does not load is named in the log and left out; the other studies still load
    assert "broken" in caplog.text and "not-a-study" in caplog.text and "is not an emovec Study" in caplog.text
    assert get_study("tiny").question.startswith("What is the sum")
    with pytest.raises(StudyError, match="no study called 'huge'; registered: cross-model, drift"):
        get_study("huge")
    listed = CliRunner().invoke(app, ["study", "list"])
    assert "tiny" in listed.output and "broken" not in listed.output


def test_run_tells_a_study_that_needs_vectors_to_get_them(fresh: None, tmp_path: Path) -> None:
    ran = CliRunner().invoke(app, ["study", "run", "paper", "--out", str(tmp_path)])
    assert ran.exit_code == 2 and "give --vectors DIR" in ran.output
