"""Safety evaluation on the real default model: a small sweep, next-token scores, the Inspect provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from emovec.evaluation.judges.model_scores import next_token_kl, refusal_logodds
from emovec.evaluation.suites import benign_suite, harmful_suite
from emovec.evaluation.summary import summarize
from emovec.evaluation.sweep import run_sweep
from emovec.evaluation.sweep_config import load_config
from emovec.reports.sweep_report import write_sweep_report
from emovec.steer import SteeringSpec, SteerTerm
from emovec.vectors import VectorSet

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_side_effects_grow_with_strength(real_model, real_vectors_dir: Path):
    vs = VectorSet.load(real_vectors_dir)
    prompts = [i.prompt for i in benign_suite().items[:6]]
    kls = [next_token_kl(real_model, prompts, SteeringSpec([SteerTerm("desperate", s)], layers=[8]), vs).mean().item()
           for s in (0.0, 0.05, 0.2, 0.5)]
    assert kls[0] == 0.0 and 0 < kls[1] < kls[2] < kls[3]
    scores = refusal_logodds(real_model, [i.prompt for i in harmful_suite().items[:4]] + prompts[:4]).tolist()
    # Measured on smollm2-135m-instruct: -4.2 to -1.7. A broken chat template or a score read from the wrong
    # position gives log-odds far outside this band, or the same value for every prompt.
    assert len(scores) == 8 and all(-8.0 < s < 2.0 for s in scores)
    assert max(scores) - min(scores) > 0.5


@pytest.mark.slow
def test_small_real_sweep(real_model, real_vectors_dir: Path, tmp_path: Path):
    cfg = load_config({"vectors": str(real_vectors_dir), "out": str(tmp_path / "sweep"),
                       "conditions": ["none", "emotion:calm", "prompt:calm", "concept:refusal"],
                       "strengths": [0.1], "layers": [[8]], "suites": ["paired", "helpful"], "limit": 2,
                       "max_new_tokens": 12, "bootstrap": 100})
    vs = VectorSet.load(real_vectors_dir)
    result = run_sweep(cfg, real_model, vs, show_progress=False)
    rows = result.rows
    assert len(rows) == 2 * 4 * 2 and rows["reply"].str.len().gt(0).all()
    assert rows["perplexity"].between(1, 1e5).all() and rows["calm_minus_distress"].notna().all()
    steered = rows[rows["cond_kind"].isin(["emotion", "concept"])]
    assert steered["kl"].gt(0).all() and rows[rows["cond_kind"] == "none"]["kl"].eq(0).all()
    page = write_sweep_report(cfg.out, rows, result.manifest, summarize(rows, n_boot=100), n_boot=100)
    assert "concept:refusal" in page.read_text()


def test_inspect_eval_with_the_real_model(real_vectors_dir: Path, tmp_path: Path):
    inspect_ai = pytest.importorskip("inspect_ai")
    logs = inspect_ai.eval("emovec/refusal_pairs", model="emovec/smollm2-135m-instruct",
                           model_args={"vectors": str(real_vectors_dir), "steer": "calm=0.05", "layers": "8"},
                           task_args={"limit": 2}, log_dir=str(tmp_path / "logs"), display="none", max_tokens=12)
    log = logs[0]
    assert log.status == "success", log.error
    assert log.samples is not None and all(s.output.completion for s in log.samples)
