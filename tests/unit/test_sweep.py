from __future__ import annotations

import errno
from pathlib import Path

import pytest

from emovec.errors import ArtifactExistsError
from emovec.evaluation import store
from emovec.evaluation.store import StoreError, read_results
from emovec.evaluation.summary import summarize
from emovec.evaluation.sweep import run_sweep
from emovec.evaluation.sweep_config import SweepConfigError, grid, load_config
from emovec.evaluation.sweep_manifest import SweepManifest
from emovec.reports.sweep_report import write_sweep_report
from emovec.steer import mixed_spec
from tests.unit.test_vector_set import make_set

BASE = {"vectors": "unused", "conditions": ["none", "emotion:calm", "prompt:calm", "random:0", "concept:refusal"],
        "strengths": [0.5], "suites": ["paired", "helpful"], "limit": 2, "max_new_tokens": 3, "batch_size": 4,
        "layers": [[1]], "bootstrap": 100}


def config(tmp_path: Path, **extra):  # type: ignore[no-untyped-def]
    return load_config({**BASE, "out": str(tmp_path / "sweep"), **extra})


def test_config_errors_name_the_key(tmp_path: Path):
    with pytest.raises(SweepConfigError, match="unknown key 'strenghts'; allowed keys: model, vectors"):
        config(tmp_path, strenghts=[0.1])
    with pytest.raises(SweepConfigError, match=r"key .strengths..*finite"):
        config(tmp_path, strengths=[float("nan")])
    with pytest.raises(SweepConfigError, match="key 'batch_size'"):
        config(tmp_path, batch_size=0)
    with pytest.raises(SweepConfigError, match="kind 'feeling'"):
        config(tmp_path, conditions=["feeling:calm"])
    with pytest.raises(SweepConfigError, match="concept 'bravery'"):
        config(tmp_path, conditions=["concept:bravery"])
    with pytest.raises(SweepConfigError, match="suite 'nope'"):
        config(tmp_path, suites=["nope"])
    with pytest.raises(SweepConfigError, match="'out' is required"):
        load_config({k: v for k, v in BASE.items()})
    yaml_file = tmp_path / "bad.yaml"
    yaml_file.write_text("conditions: [none\n")
    with pytest.raises(SweepConfigError, match="not valid YAML"):
        load_config(yaml_file)


def test_grid_runs_baselines_once_and_steered_per_strength(tmp_path: Path):
    cfg = config(tmp_path, strengths=[-0.1, 0.1], layers=[[1], [2]])
    units = grid(cfg, default_layer=0)
    per_suite = 2 + 3 * 2 * 2  # none and prompt once; 3 steered conditions x 2 layer sets x 2 strengths
    assert len(units) == 2 * per_suite
    assert len({u.key({"s": 1}) for u in units}) == len(units)


def test_sweep_scores_match_the_standalone_judges(tiny_llama, tmp_path: Path):
    """Log-odds, KL and perplexity read from generation equal the separate passes of the standalone API."""
    from emovec.evaluation.judges.model_scores import next_token_kl, refusal_logodds, reply_perplexity
    from emovec.steer import SteeringSpec, SteerTerm

    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path, conditions=["none", "emotion:calm"], suites=["helpful"], limit=3)
    rows = run_sweep(cfg, tiny_llama, vs, show_progress=False).rows
    for kind, spec in (("none", None), ("emotion", SteeringSpec([SteerTerm("calm", 0.5)], layers=[1]))):
        sub = rows[rows["cond_kind"] == kind]
        prompts = list(sub["prompt"])
        lo = refusal_logodds(tiny_llama, prompts, spec=spec, vectors=vs)
        assert sub["refusal_logodds"].tolist() == pytest.approx(lo.tolist(), abs=1e-3)
        ppl = reply_perplexity(tiny_llama, prompts, list(sub["reply"]))
        ok = [i for i, r in enumerate(sub["reply"]) if r]
        assert [sub["perplexity"].iloc[i] for i in ok] == pytest.approx([ppl[i].item() for i in ok], rel=0.05)
        if spec is not None:
            kl = next_token_kl(tiny_llama, prompts, spec, vs)
            assert sub["kl"].tolist() == pytest.approx(kl.tolist(), rel=1e-2, abs=1e-5)


def test_mixed_spec_gives_each_row_its_own_direction():
    spec = mixed_spec([("calm", 0.1), (None, 0.0), ("desperate", -0.2), ("calm", 0.3)], [4])
    assert spec is not None and list(spec.layers) == [4]
    by_name = {t.direction: list(t.strength) for t in spec.terms}  # type: ignore[arg-type]
    assert by_name == {"calm": [0.1, 0.0, 0.0, 0.3], "desperate": [0.0, 0.0, -0.2, 0.0]}
    assert mixed_spec([(None, 0.0)], [4]) is None


def test_sweep_grades_every_row_and_writes_a_report(tiny_llama, tmp_path: Path):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path)
    result = run_sweep(cfg, tiny_llama, vs, show_progress=False)
    rows = result.rows
    assert len(rows) == result.new_rows == 2 * 5 * 2 and rows["key"].is_unique
    assert set(rows["item_kind"]) == {"harmful", "benign", "helpful"}
    assert set(rows["refusal_label"]) <= {"full_refusal", "partial_refusal", "full_compliance"}
    steered = rows[rows["cond_kind"].isin(["emotion", "random", "concept"])]
    assert (rows[rows["cond_kind"] == "none"]["kl"] == 0).all() and (steered["kl"] > 0).all()
    assert (rows[rows["cond_kind"] == "prompt"]["kl"] > 0).all()  # the system prompt moves the distribution too
    assert (rows[rows["cond_kind"] == "prompt"]["system"].str.contains("calm")).all()
    assert rows[rows["item_id"] == "weapons-01-h"]["control_fit"].all()  # the refusal direction saw this pair
    assert rows["ms_per_token_p50"].gt(0).all() and rows["perplexity"].gt(0).all()
    summaries = summarize(rows, n_boot=100)
    assert [s.condition for s in summaries][:2] == ["none", "prompt:calm"]
    est = summaries[0].metrics["refuse_harmful"]
    assert est.n == 1 and est.low <= est.value <= est.high  # limit 2 on paired: one harmful, one benign
    page = write_sweep_report(cfg.out, rows, result.manifest, summarize(rows, n_boot=100), n_boot=100)
    text = page.read_text()
    assert "data:image/png;base64" in text and "emotion:calm" in text and "Apache-2.0" in text
    assert (Path(cfg.out) / "summary.json").exists()


def test_interrupted_sweep_resumes_without_duplicates(tiny_llama, tmp_path: Path):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path, conditions=["none", "emotion:calm", "random:1"], suites=["paired"], limit=3)

    def stop(done: int, planned: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, tiny_llama, vs, show_progress=False, on_batch=stop)
    partial = read_results(cfg.out)
    assert len(partial) == cfg.batch_size
    again = run_sweep(cfg, tiny_llama, vs, show_progress=False)
    assert again.skipped_rows == len(partial) and len(again.rows) == 3 * 3 and again.rows["key"].is_unique
    third = run_sweep(cfg, tiny_llama, vs, show_progress=False)  # nothing left to do
    assert third.new_rows == 0 and len(read_results(cfg.out)) == 9


def test_full_disk_keeps_what_was_written(tiny_llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path, conditions=["none", "emotion:calm"], suites=["paired"], limit=4)
    real = store.pq.write_table  # sweep rows are written as Arrow tables with their declared schema
    calls = {"n": 0}

    def flaky(table, where, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 1:
            Path(where).write_bytes(b"half a part")  # the write dies midway
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(store.pq, "write_table", flaky)
    with pytest.raises(StoreError, match=r"disk is full.*1 parts already written are intact"):
        run_sweep(cfg, tiny_llama, vs, show_progress=False)
    monkeypatch.setattr(store.pq, "write_table", real)
    assert len(read_results(cfg.out)) == cfg.batch_size
    assert not list((Path(cfg.out) / "results").glob(".*tmp*"))  # no half-written part left behind
    assert len(run_sweep(cfg, tiny_llama, vs, show_progress=False).rows) == 8


def test_refuses_to_mix_models_and_checks_names(tiny_llama, tiny, tmp_path: Path):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path, conditions=["none"], suites=["helpful"], limit=1)
    run_sweep(cfg, tiny_llama, vs, show_progress=False)
    if tiny.source.fingerprint != tiny_llama.source.fingerprint:
        with pytest.raises(ArtifactExistsError, match="another model"):
            run_sweep(cfg, tiny, make_set(tiny, layers=(0, 1, 2)), show_progress=False)
    with pytest.raises(KeyError, match="Did you mean 'calm'"):
        run_sweep(config(tmp_path, conditions=["emotion:clam"]), tiny_llama, vs, show_progress=False)


def test_unreachable_judge_endpoint_lets_the_sweep_finish_offline(tiny_llama, tmp_path: Path):
    import json

    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path, conditions=["none"], suites=["paired"], judge_url="http://127.0.0.1:9/v1")
    with pytest.warns(RuntimeWarning, match="unreachable"):
        result = run_sweep(cfg, tiny_llama, vs, show_progress=False)
    assert len(result.rows) == 2 and result.rows["judge_label"].isna().all()
    assert result.judge_status.startswith("unavailable")
    assert json.loads((Path(cfg.out) / "sweep.json").read_text())["judge_status"].startswith("unavailable")
    manifest = SweepManifest.read(Path(cfg.out))
    assert manifest.judge_status is not None and manifest.judge_status.startswith("unavailable")
    assert manifest == result.manifest and manifest.model.name == tiny_llama.name
    summaries = summarize(result.rows, n_boot=100)
    page = write_sweep_report(cfg.out, result.rows, manifest, summaries, n_boot=100).read_text()
    assert "unavailable" in page


def test_sweep_rows_are_typed_and_old_folders_get_a_clear_error(tiny_llama, tmp_path: Path):
    from emovec.evaluation.rows import FIELDS, SCHEMA_VERSION, SweepRowError, read_sweep_rows, to_rows

    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path, conditions=["none", "emotion:calm"], suites=["paired"], limit=2)
    res = run_sweep(cfg, tiny_llama, vs, show_progress=False)
    part = store.part_paths(cfg.out)[0]
    schema = store.pq.read_schema(part)
    assert tuple(schema.names) == FIELDS and str(schema.field("tone_masked").type) == "bool"
    typed = to_rows(res.rows)
    assert len(typed) == len(res.rows) and all(r.schema_version == SCHEMA_VERSION for r in typed)
    assert {r.cond_kind for r in typed} == {"none", "emotion"}
    old = tmp_path / "old"
    store.write_part(old, [{k: v for k, v in typed[0].model_dump().items() if k != "kl"}])
    with pytest.raises(SweepRowError, match=r"lack kl.*rerun the sweep"):
        read_sweep_rows(old)
    assert list(read_sweep_rows(tmp_path / "none").columns) == list(FIELDS)


def test_report_only_rebuilds_the_report_from_stored_rows_and_prints_the_same_summary(tiny_llama, tmp_path: Path):
    import yaml
    from typer.testing import CliRunner

    from emovec.cli import app

    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cfg = config(tmp_path, conditions=["none", "emotion:calm"], suites=["paired"], limit=2)
    res = run_sweep(cfg, tiny_llama, vs, show_progress=False)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
    assert not (Path(cfg.out) / "report.html").exists()  # run_sweep writes rows; the command draws the report
    shown = CliRunner().invoke(app, ["sweep", str(path), "--report-only"])  # no model is loaded
    assert shown.exit_code == 0, shown.output
    assert (Path(cfg.out) / "report.html").is_file()
    first = summarize(res.rows, n_boot=cfg.bootstrap)[0]
    assert f"refuse harmful {first.metrics['refuse_harmful'].text(2)}" in shown.output
    path.write_text(yaml.safe_dump({**cfg.model_dump(mode="json", exclude_none=True), "out": str(tmp_path / "no")}))
    empty = CliRunner().invoke(app, ["sweep", str(path), "--report-only"])
    assert empty.exit_code == 2 and "no sweep.json" in empty.output and "without --report-only" in empty.output


def test_summary_metrics_are_typed_fields_named_once() -> None:
    from pydantic import ValidationError

    from emovec.evaluation.judges.emotion import PLUTCHIK
    from emovec.evaluation.summary import METRICS, SummaryMetrics
    from emovec.metrics import Estimate

    assert [m for m in METRICS if m.startswith("nade_") and m not in ("nade_target", "nade_calm_minus_distress")] \
        == [f"nade_{e}" for e in PLUTCHIK]  # one field per score of the emotion judge
    est = {m: Estimate.point(float(i), 3, "test") for i, m in enumerate(METRICS)}
    metrics = SummaryMetrics(**est)
    assert metrics["kl_benign"] is metrics.kl_benign and [name for name, _ in metrics.items()] == list(METRICS)
    with pytest.raises(KeyError, match="no metric 'kl'"):
        metrics["kl"]
    with pytest.raises(ValidationError, match="kl_benign"):
        SummaryMetrics(**{k: v for k, v in est.items() if k != "kl_benign"})
    with pytest.raises(ValidationError, match="extra"):
        SummaryMetrics(**est, refusal=est["kl_benign"])
