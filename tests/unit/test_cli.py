from __future__ import annotations

from typer.testing import CliRunner

from emovec.cli import app

runner = CliRunner()


def test_inspect_missing_directory_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "not a vector set directory" in result.output and "Traceback" not in result.output


def test_extract_refuses_existing_output(tmp_path):
    (tmp_path / "vectors.json").write_text("{}")
    result = runner.invoke(app, ["extract", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_extract_reports_bad_corpus(tmp_path):
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"id": 1}\n')
    result = runner.invoke(app, ["extract", "--out", str(tmp_path / "v"), "--corpus", str(bad)])
    assert result.exit_code == 2 and "c.jsonl:1: malformed" in result.output
    assert not (tmp_path / "v").exists()  # nothing written half-way


def test_stories_rejects_unknown_emotions(tmp_path):
    result = runner.invoke(app, ["stories", "--out", str(tmp_path / "s.jsonl"), "--emotions", "calm,glorp"])
    assert result.exit_code == 2 and "glorp" in result.output


def test_models_lists_builtins():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "smollm2-135m-instruct" in result.output and "gemma-3-270m" in result.output


def test_steer_rejects_malformed_terms_before_loading_a_model(tmp_path):
    result = runner.invoke(app, ["steer", str(tmp_path / "nothing"), "--prompt", "hi", "--steer", "calm"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--steer 'calm': write NAME=STRENGTH" in result.output


def test_export_reports_malformed_layers(tmp_path, tiny_llama):
    from tests.builders import make_set

    make_set(tiny_llama).save(tmp_path / "vecs")
    result = runner.invoke(app, ["export", str(tmp_path / "vecs"), "--out", str(tmp_path / "s.pt"), "--format",
                                 "lm-eval", "--steer", "calm=0.1", "--layers", "0-x"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'0-x' is not a layer or range" in result.output and "0-29:2" in result.output
    assert not (tmp_path / "s.pt").exists()


def test_study_stability_prints_the_table_and_keeps_an_existing_file(tmp_path, tiny_llama, monkeypatch):
    monkeypatch.setattr("emovec.models.load_model", lambda *a, **k: tiny_llama)
    path = tmp_path / "curve.json"
    args = ["study", "stability", "--model", "tiny", "--counts", "4,6", "--background", "2", "--n-splits", "10",
            "--layer", "1", "--out", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "stories/emotion" in result.output and path.is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    bad = runner.invoke(app, [*args[:4], "--counts", "4,x", "--out", str(tmp_path / "other.json")])
    assert bad.exit_code == 2 and "comma-separated numbers" in bad.output
