"""The fine-tuning and drift commands refuse bad input before loading any model."""

from __future__ import annotations

from typer.testing import CliRunner

from emovec.cli import app

runner = CliRunner()


def test_finetune_names_the_regimes_when_given_an_unknown_one(tmp_path) -> None:
    res = runner.invoke(app, ["finetune", "reckless", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown regime 'reckless'" in res.output and "over_refusal" in res.output


def test_drift_study_names_the_presets_when_given_an_unknown_one(tmp_path) -> None:
    res = runner.invoke(app, ["study", "drift", "--preset", "huge", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "choose quick or full" in res.output


def test_finetune_data_will_not_overwrite_silently(tmp_path) -> None:
    target = tmp_path / "r.jsonl.gz"
    target.write_bytes(b"keep")
    res = runner.invoke(app, ["finetune-data", "--out", str(target)])
    assert res.exit_code == 2 and "--overwrite" in res.output and target.read_bytes() == b"keep"


def test_cross_model_study_needs_three_models(tmp_path) -> None:
    res = runner.invoke(app, ["study", "cross-model", "--models", "a,b", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "three or more models" in res.output


def test_drift_study_runs_each_model_of_the_preset_or_the_command_line_into_its_own_folder(tmp_path,
                                                                                          monkeypatch) -> None:
    from emovec.studies.drift import study
    from emovec.studies.drift.study import PRESETS, Criteria, DriftStudyResult

    calls: list[tuple[str, str, str]] = []

    def fake(preset, out, *, model, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((preset.name, str(out), model))
        return DriftStudyResult(preset=preset, model=model, criteria=Criteria(), runs=[], separation=[])

    monkeypatch.setattr(study, "run_drift_study", fake)
    res = runner.invoke(app, ["study", "drift", "--preset", "full", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert calls == [("full", str(tmp_path / m), m) for m in PRESETS["full"].models] and len(calls) >= 2
    assert all((tmp_path / m / "drift_report.html").is_file() for m in PRESETS["full"].models)
    calls.clear()
    res = runner.invoke(app, ["study", "drift", "--model", "gemma-3-270m", "--out", str(tmp_path / "one")])
    assert res.exit_code == 0 and calls == [("quick", str(tmp_path / "one"), "gemma-3-270m")]
