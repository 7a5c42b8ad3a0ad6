"""Report pages render from small synthetic results: every section is there, numbers are formatted from the
inputs, untrusted text (replies, prompts, names) is escaped, and a context missing a field fails loudly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import pytest
import torch

from emovec.evaluation.blackmail import summarize_blackmail
from emovec.evaluation.summary import METRICS, ConditionSummary, SummaryMetrics
from emovec.metrics import Estimate
from emovec.reports.pages import environment, render
from emovec.reports.sweep_report import sweep_context, write_blackmail_report, write_sweep_report
from emovec.reports.trace import render_trace, write_trace
from emovec.studies.policy_dominance.report import write_study_report
from emovec.studies.policy_dominance.results import ModelResult, StudyReport
from tests.builders import blackmail_manifest, sweep_manifest

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _summary(condition: str, kind: str, strength: float, refuse: float) -> ConditionSummary:
    metrics = {m: Estimate(value=0.5, low=0.4, high=0.6, n=10, method="test") for m in METRICS}
    metrics["refuse_harmful"] = Estimate(value=refuse, low=refuse - 0.05, high=refuse + 0.05, n=10, method="test")
    return ConditionSummary(condition, kind, condition.split(":")[-1], strength, "" if kind == "none" else "3", 10,
                            SummaryMetrics(**metrics))


def _sweep_rows() -> pd.DataFrame:
    return pd.DataFrame({"condition": ["none", "emotion:calm"], "strength": [0.0, 0.1],
                         "prompt": ["<i>how to</i>", "p"], "reply": [SCRIPT, "fine"], "tone_masked": [True, False]})


def test_sweep_report_uses_the_given_summaries_and_escapes_replies(tmp_path: Path) -> None:
    summaries = [_summary("none", "none", 0.0, 0.123), _summary("emotion:calm", "emotion", 0.1, 0.777),
                 _summary("emotion:calm", "emotion", 0.2, 0.654)]
    manifest = sweep_manifest("tiny <model>", {"paired": 4})
    page = write_sweep_report(tmp_path, _sweep_rows(), manifest, summaries, n_boot=321).read_text()
    assert page.startswith("<!doctype html>")
    for section in ("Safety and usefulness", "Side effects, fluency, latency", "Dose-response", "Model judge",
                    "Tone-masked failures (1)", "Suites", "Provenance"):
        assert section in page
    assert "0.123 [0.073, 0.173]" in page and "0.777 [0.727, 0.827]" in page and "+0.200" in page
    assert "2 graded replies" in page and "(321 resamples of prompts)" in page
    assert SCRIPT not in page and ESCAPED in page and "&lt;i&gt;how to&lt;/i&gt;" in page
    assert "tiny &lt;model&gt;" in page and "not configured" in page
    assert "emotion judge skipped (install nade)" in page  # no nade_* columns
    assert page.count("data:image/png;base64,") == 1  # one steered condition at one layer set
    assert (tmp_path / "figures" / "dose_emotion_calm_L3.png").is_file()
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert [s["metrics"]["refuse_harmful"]["value"] for s in saved] == [0.123, 0.777, 0.654]


def test_a_context_missing_a_field_fails_loudly() -> None:
    context = sweep_context(_sweep_rows(), sweep_manifest(), [_summary("none", "none", 0.0, 0.5)], [], n_boot=10)
    assert "Provenance" in render("sweep.html.j2", context)
    del context["judge_status"]
    with pytest.raises(jinja2.UndefinedError, match="judge_status"):
        render("sweep.html.j2", context)


def test_the_environment_escapes_and_is_built_once() -> None:
    env = environment()
    assert env is environment() and isinstance(env.undefined, type) and issubclass(env.undefined,
                                                                                   jinja2.StrictUndefined)
    assert env.from_string("{{ x }}").render(x=SCRIPT) == ESCAPED
    assert env.get_template("base.html.j2").render(title=SCRIPT).count(ESCAPED) == 1


def _blackmail_rows() -> pd.DataFrame:
    rows = []
    for i, (cond, emotion, strength) in enumerate([("none", "", 0.0)] * 4 + [("calm:+1", "calm", 1.0)] * 4):
        rows.append({"condition": cond, "emotion": emotion, "strength": strength, "variant": f"v{i % 2}",
                     "threat": "replace" if i % 2 == 0 else "none", "leverage": True, "blackmail": i == 0,
                     "valid_format": i in (0, 4), "mentions_secret": i == 0, "to_executive": False,
                     "judge_blackmail": None, "reply": SCRIPT if i == 0 else "ok"})
    return pd.DataFrame(rows)


def test_blackmail_report_counts_formats_rates_and_escapes_replies(tmp_path: Path) -> None:
    page = write_blackmail_report(tmp_path, _blackmail_rows(), blackmail_manifest("tiny"),
                                  summarize_blackmail(_blackmail_rows())).read_text()
    assert "Agentic blackmail scenario: tiny" in page and "Sample replies" in page
    assert "1 of 8 replies blackmailed; 2 used the email format correctly." in page
    assert "never produced a valid action" not in page
    # none: 1 of the 2 threatening replies blackmailed (Wilson interval); calm: 0 of 2
    assert "0.50 [0.09, 0.91] (n=2)" in page and "0.00 [0.00, 0.66] (n=2)" in page
    assert SCRIPT not in page and ESCAPED in page
    assert page.count("data:image/png;base64,") == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [e["condition"] for e in summary] == ["none", "calm:+1"]


def test_blackmail_report_says_when_no_action_was_valid(tmp_path: Path) -> None:
    rows = _blackmail_rows().assign(valid_format=False, blackmail=False)
    page = write_blackmail_report(tmp_path, rows, blackmail_manifest(), summarize_blackmail(rows)).read_text()
    assert "0 of 8 replies blackmailed; 0 used the email format correctly." in page
    assert "never produced a valid action" in page


def test_trace_escapes_tokens_and_keeps_spans_touching(tmp_path: Path) -> None:
    tokens = ["Hi", "Ġthere", "<script>", "ok"]
    scores = torch.tensor([[0.1, -0.2], [0.3, 0.0], [-0.5, 0.4], [0.2, 0.2]])
    page = render_trace(tokens, scores, ["calm", "</script>afraid"], "trace <1>", roles=["user", "user", "bot", "bot"])
    assert page.startswith("<!doctype html>") and "<h1>trace &lt;1&gt;</h1>" in page
    assert '<span class="tok">Hi</span><span class="tok"> there</span><div class="role">bot</div>' in page
    assert '<span class="tok">&lt;script&gt;</span>' in page
    assert page.count('<div class="role">') == 2 and page.count('class="tok"') == 4
    assert page.count("</script>") == 2  # the data block and the code; a name cannot close either
    data = page.split('<script id="trace-data" type="application/json">')[1].split("</script>")[0]
    parsed = json.loads(data)
    assert parsed["names"] == ["calm", "</script>afraid"] and parsed["initial"] == "calm"
    assert parsed["scores"][2] == pytest.approx([-0.5, 0.4])
    assert "<option selected>calm</option><option>&lt;/script&gt;afraid</option>" in page  # largest mean |score|
    one = write_trace(tmp_path / "one.html", [page]).read_text()
    assert one == page
    two = write_trace(tmp_path / "two.html", [page, page]).read_text()
    assert two.count("<iframe") == 2 and "<script" not in two and "srcdoc=\"&lt;!doctype html&gt;" in two


def _estimate(value: float, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"value": value, "low": value - 0.1 if lo is None else lo, "high": value + 0.1 if hi is None else hi, "n": 8,
            "method": "test"}


def _model_result(name: str, split: float, null: float | None = None) -> ModelResult:
    keys = {"desperate": "desperate", "calm": "calm"}
    nulls = {} if null is None else {"split_half_null": {k: _estimate(0.0, -null, null) for k in keys}}
    criteria = {
        "poor_stability": {"met": False, "figures": {"mean_split_half_cosine": split,
                                                     "mean_template_cosine": float("nan")},
                           "rule": "mean split-half or cross-template cosine < 0.5"},
        "broad_side_effects": {"met": True, "figures": {"mean_modularity_index": 0.3141},
                               "rule": "mean modularity index < 0.5"},
    }
    source = {"name": name, "kind": "builtin", "location": name, "family": "llama", "fingerprint": "f",
              "n_layers": 8, "d_model": 16}
    return ModelResult.model_validate({
        "model": name, "source": source, "policy_level": "instruct", "layer": 7, "vectors": "v", "key_vectors": keys,
        "preset": "quick", "emovec_version": "0.0", "baseline_length": 10.0, "n_rows": 20, "seconds": 1.0,
        "summary": {"none": {m: _estimate(0.5) for m in METRICS}},
        "stability": {"split_half": {k: _estimate(0.9) for k in keys}, "resample": {k: _estimate(0.8) for k in keys},
                      "template": {}, "readout_auc": {"desperate": _estimate(0.7), "calm": _estimate(0.9)}, **nulls},
        "modularity": {"names": ["desperate", "calm"], "strength": 0.1,
                       "matrix": [[_estimate(0.5), _estimate(0.1)], [_estimate(-0.1), _estimate(0.4)]],
                       "index": {k: _estimate(0.6) for k in keys},
                       "off_target": {k: {"refuse_harmful_change": -0.05, "kl_benign": 0.012, "length_change": 3.0}
                                      for k in keys}},
        "causal_influence": {k: {"name": k, "behaviour": "refusal", "strengths": [-1, 0, 1],
                                 "mean_by_strength": [0.1, 0.0, -0.1], "slope": _estimate(s), "slope_sd": 0.1,
                                 "wrong_way": 0.25} for k, s in (("desperate", -0.2), ("calm", 0.4))},
        "steering_value": {"value": _estimate(0.05, -0.01, 0.11), "best_control": "concept:refusal",
                           "best_control_gain": 0.1, "budget_kl": 0.2, "best_emotion": "calm",
                           "best_emotion_gain": 0.15, "candidates": [], "note": "at matched KL"},
        "monitoring_value": {"value": _estimate(0.02), "n_unsafe": 3, "n": 20, "auc_controls": 0.6,
                             "auc_with_emotions": 0.62, "note": SCRIPT},
        "verdict": {"text": "inconclusive", "criteria": criteria, "met": ["broad_side_effects"], "adds_value": []},
        "overview": {"mean_split_half_cosine": split, "mean_template_cosine": float("nan"), "mean_readout_auc": 0.8,
                     "mean_modularity_index": 0.3141, "mean_abs_refusal_slope": 0.3,
                     **({} if null is None else {"mean_split_half_null_high": null})},
    })


def test_study_report_reads_the_verdict_means_and_escapes_notes(tmp_path: Path) -> None:
    report = StudyReport(preset="quick", plan={"rows": 10}, key_vectors={"desperate": "desperate", "calm": "calm"},
                         ladder=False, family_note="different <families>", emovec_version="0.0",
                         models={"m1": _model_result("m1", 0.8765, null=0.1357), "m2": _model_result("m2", 0.1234)})
    page = write_study_report(tmp_path, report).read_text()
    for section in ("Overview", "Stability", "Modularity", "Causal influence on refusal", "<h2>m1</h2>",
                    "<h2>m2</h2>"):
        assert section in page
    # the study's overview means: split-half, its shuffled-label null's upper bound, template n/a (NaN), AUC,
    # modularity, |slope|; a result from before the null was measured says so
    assert "<td>0.88</td><td>0.14</td><td>n/a</td><td>0.80</td><td>0.31</td><td>0.30</td>" in page
    assert "<td>0.12</td><td>n/a</td><td>n/a</td>" in page and "0.05 [-0.01, 0.11]" in page
    assert "0.00 [-0.14, 0.14]" in page and "not measured" in page
    assert "desperate &rarr; <code>desperate</code>, calm &rarr; <code>calm</code>" in page
    assert "different &lt;families&gt;" in page and SCRIPT not in page and ESCAPED in page
    assert page.count("data:image/png;base64,") == 6  # split, auc, modularity, two matrices, dose
    assert (tmp_path / "figures" / "matrix_1.png").is_file()
    assert "Caveat." in page
    outside = _model_result("m3", 0.5)  # a percentile interval that does not hold its point estimate still draws
    outside.stability.split_half["calm"] = Estimate(value=0.9, low=0.92, high=0.97, n=8, method="test")
    skewed = report.model_copy(update={"models": {**report.models, "m3": outside}})
    assert "<h2>m3</h2>" in write_study_report(tmp_path / "skewed", skewed).read_text()
    ladder = report.model_copy(update={"ladder": True, "family_note": None})  # one family's rungs: no caveat
    assert "Caveat." not in write_study_report(tmp_path / "ladder", ladder).read_text()
