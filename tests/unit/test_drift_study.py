"""The drift study's read-out of monitor rows: regression flags, lead times, AUCs, and its report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emovec.metrics import Estimate
from emovec.studies.drift.rows import DriftRow
from emovec.studies.drift.study import (
    Criteria,
    DriftPreset,
    DriftStudyError,
    DriftStudyResult,
    auc,
    regressed,
    separation,
    summarize_run,
)


def _est(v: float) -> Estimate:
    return Estimate(value=v, low=v - 0.1, high=v + 0.1, n=8, method="test")


def _row(step: int, drift: float, refusal: float, benign: float = 0.0, alerts: list[str] | None = None,
         plain: float = 0.0) -> DriftRow:
    return DriftRow(run="r", step=step, model="m", layer=1, keys=["calm"],
                    activation_shift={"stories": {"calm": drift}}, direction_drift={}, drift_to_locked={},
                    stability={}, coupling={}, drift_index=drift,
                    caution_decoupling=drift, bundle_collapse=0.0, effective_rank=1.0, mean_profile_cosine=1.0,
                    plain_refusal_logodds=_est(plain), plain_hedge_logodds=_est(0.0), alerts=alerts or [],
                    evals={"refusal_harmful": _est(refusal), "refusal_benign": _est(benign),
                           "refusal_overrefusal": _est(benign), "helpful": _est(0.8), "perplexity": _est(5.0)})


def test_regression_means_a_drop_in_refusal_or_a_rise_in_over_refusal_against_step_zero() -> None:
    c = Criteria(refusal_drop=0.25, overrefusal_rise=0.25, helpful_drop=0.25)
    start = _row(0, 0.0, 0.8)
    assert not regressed(_row(10, 0.1, 0.7), start, c)
    assert regressed(_row(10, 0.1, 0.5), start, c)
    assert regressed(_row(10, 0.1, 0.8, benign=0.3), start, c)


def test_lead_time_counts_steps_from_the_first_alert_to_the_first_regressed_checkpoint() -> None:
    rows = [_row(0, 0.0, 0.8), _row(10, 0.2, 0.8, alerts=["drift"]), _row(20, 0.3, 0.7), _row(30, 0.4, 0.4)]
    run = summarize_run("regression", 0, rows[::-1], Criteria())
    assert run.steps == [0, 10, 20, 30] and run.regressed == [False, False, False, True]
    assert (run.first_alert, run.first_regression, run.lead_time) == (10, 30, 20)
    with pytest.raises(DriftStudyError, match="step-0"):
        summarize_run("x", 0, rows[1:], Criteria())


def test_auc_and_its_interval_over_runs() -> None:
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert math.isnan(auc(np.array([]), np.array([1.0])))
    good = summarize_run("balanced", 0, [_row(0, 0, 0.8), _row(10, 0.01, 0.8), _row(20, 0.02, 0.8)], Criteria())
    bad = summarize_run("regression", 0, [_row(0, 0, 0.8), _row(10, 0.3, 0.4), _row(20, 0.5, 0.3)], Criteria())
    sep = separation([good, bad, good, bad], "drift_index", n_boot=200)
    assert sep.auc.value == 1.0 and sep.n_regressed == 4 and sep.n_healthy == 4  # step 0 is left out
    assert 0.0 <= sep.auc.low <= sep.auc.high <= 1.0
    flipped = separation([good, bad], "caution_decoupling", n_boot=50)
    assert flipped.auc.value == 1.0


def test_report_renders_every_section_and_escapes_text(tmp_path) -> None:
    from emovec.studies.drift.report import write_drift_report

    runs = [summarize_run("balanced", 0, [_row(0, 0, 0.8), _row(10, 0.3, 0.4, alerts=["a"])], Criteria())]
    result = DriftStudyResult(preset=DriftPreset(name="quick"), model="tiny", criteria=Criteria(), runs=runs,
                              separation=[separation(runs, "drift_index", n_boot=20)],
                              notes=["<script>alert(1)</script>"])
    page = write_drift_report(tmp_path, result).read_text()
    assert "Did an index move before" in page and "balanced/seed 0" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert page.count("data:image/png;base64,") == 2
    back = DriftStudyResult.model_validate_json((tmp_path / "drift_study.json").read_text())
    assert back.model_dump_json() == result.model_dump_json()  # NaN AUCs (one class only) survive the trip


def test_the_plain_refusal_shift_is_the_baseline_every_emotion_index_is_set_against() -> None:
    from emovec.studies.drift.study import BASELINE_INDICES, INDICES

    assert set(BASELINE_INDICES) <= set(INDICES)
    rows = [_row(0, 0, 0.8, plain=1.5), _row(10, 0.01, 0.8, plain=1.2), _row(20, 0.3, 0.4, plain=-0.5)]
    run = summarize_run("regression", 0, rows, Criteria())
    assert run.values("refusal_logodds_shift") == pytest.approx([0.0, 0.3, 2.0])
    sep = separation([run, run], "refusal_logodds_shift", n_boot=50)
    assert sep.auc.value == 1.0  # the regressed checkpoint moved the plain log-odds most


def test_each_index_carries_an_interval_over_the_key_vectors_at_every_step() -> None:
    from emovec.studies.drift.intervals import index_intervals

    keys = ["worried", "afraid", "calm", "eager"]

    def row(step: int, drift: list[float], slope: list[float], own: list[float], plain: float) -> DriftRow:
        base = _row(step, float(np.mean(drift)), 0.8, plain=plain)
        side = {k: {j: (own[i] if j == k else 0.1) for j in keys} for i, k in enumerate(keys)}
        return base.model_copy(update={"keys": keys, "direction_drift": dict(zip(keys, drift, strict=True)),
                                       "coupling": {k: {"refusal": s, "hedge": s / 2} for k, s in
                                                    zip(keys, slope, strict=True)}, "side_effects": side})

    start = row(0, [0.0] * 4, [1.0, 2.0, 1.0, 0.5], [0.9, 0.9, 0.9, 0.9], 0.0)
    even = row(10, [0.2, 0.2, 0.2, 0.2], [0.5, 1.0, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], 1.0)
    uneven = row(10, [0.0, 0.0, 0.0, 0.8], [0.5, 1.0, 0.5, 0.5], [0.9, 0.9, 0.9, 0.1], 1.0)
    a, b = index_intervals(even, start, n_boot=200), index_intervals(uneven, start, n_boot=200)
    def bounds(est: Estimate) -> tuple[float, float]:
        return est.low, est.high

    assert bounds(a["drift_index"]) == pytest.approx((0.2, 0.2))  # every key drifted alike: no spread
    assert b["drift_index"].low < 0.2 < b["drift_index"].high  # one key carries the whole mean
    lo, hi = bounds(a["caution_decoupling"])  # slopes halved on every caution-like key: 0.5 whatever is drawn
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    assert b["modularity_drop"].low <= 0.0 < b["modularity_drop"].high
    shift_lo, shift_hi = bounds(a["refusal_logodds_shift"])  # |1 - 0| with two +/-0.1 intervals
    assert shift_lo == pytest.approx(1 - 0.1 * 2**0.5) and shift_hi == pytest.approx(1 + 0.1 * 2**0.5)
    assert all(math.isnan(x) for x in bounds(a["bundle_collapse"]))
    run = summarize_run("balanced", 0, [start, uneven], Criteria())
    drift = run.indices["drift_index"][1]
    assert drift.low < drift.value < drift.high


def test_step_matched_separation_ignores_an_index_that_only_grows_with_training() -> None:
    from emovec.studies.drift.study import matched_auc

    # healthy run: index grows with steps; regressed run: regressed only late, index lower than healthy at
    # each step. Pooled, late regressed checkpoints outrank early healthy ones; matched by step they never do.
    healthy = summarize_run("balanced", 0, [_row(0, 0, 0.8), _row(10, 0.1, 0.8), _row(20, 0.2, 0.8),
                                            _row(30, 0.3, 0.8)], Criteria())
    worse = summarize_run("regression", 0, [_row(0, 0, 0.8), _row(10, 0.05, 0.8), _row(20, 0.15, 0.4),
                                            _row(30, 0.25, 0.4)], Criteria())
    sep = separation([healthy, worse], "drift_index", n_boot=50)
    assert sep.auc.value > 0.5 and sep.matched.value == 0.0 and sep.n_pairs == 2
    value, pairs = matched_auc(np.array([1.0, 1.0, 2.0]), np.array([True, False, True]), np.array([10, 10, 20]))
    assert (value, pairs) == (0.5, 1)  # a tie counts half; step 20 has no healthy checkpoint
    assert math.isnan(matched_auc(np.array([1.0]), np.array([True]), np.array([10]))[0])
