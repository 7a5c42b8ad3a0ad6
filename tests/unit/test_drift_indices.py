"""The drift indices on arrays with known answers, and the drift row store."""

from __future__ import annotations

import numpy as np
import pytest

from emovec.metrics import Estimate
from emovec.studies.drift import indices
from emovec.studies.drift.rows import DriftRow, DriftStoreError, append_row, read_rows


def test_direction_drift_is_zero_for_the_same_directions_and_one_for_orthogonal() -> None:
    ref = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    cur = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert indices.direction_drift(ref, cur) == pytest.approx([0.0, 1.0])
    assert indices.drift_index(ref, cur) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        indices.direction_drift(ref, cur[:1])


def test_caution_decoupling_reads_vanished_halved_reversed_and_grown_coupling() -> None:
    c0 = np.array([[2.0, 1.0], [1.0, -1.0]])
    assert indices.caution_decoupling_index(c0, c0) == pytest.approx(0.0)
    assert indices.caution_decoupling_index(c0, 0 * c0) == pytest.approx(1.0)
    assert indices.caution_decoupling_index(c0, 0.5 * c0) == pytest.approx(0.5)
    assert indices.caution_decoupling_index(c0, -c0) == pytest.approx(2.0)
    assert indices.caution_decoupling_index(c0, 2 * c0) == pytest.approx(-1.0)
    assert np.isnan(indices.caution_decoupling_index(0 * c0, c0))


def test_effective_rank_counts_distinct_profiles_and_collapse_is_relative_to_step_zero() -> None:
    distinct = np.eye(4)
    same = np.ones((4, 6))
    assert indices.effective_rank(distinct) == pytest.approx(4.0)
    assert indices.effective_rank(same) == pytest.approx(1.0)
    assert indices.bundle_collapse_index(distinct, same) == pytest.approx(0.75)
    assert indices.bundle_collapse_index(distinct, distinct) == pytest.approx(0.0)
    assert indices.mean_profile_cosine(same) == pytest.approx(1.0)
    assert indices.mean_profile_cosine(distinct) == pytest.approx(0.0)


def _row(step: int, run: str = "a") -> DriftRow:
    est = Estimate(value=0.0, low=0.0, high=0.0, n=1, method="test")
    return DriftRow(run=run, step=step, model="m", layer=1, keys=["calm"], activation_shift={}, direction_drift={},
                    drift_to_locked={}, stability={}, coupling={}, drift_index=0.0, caution_decoupling=0.0,
                    bundle_collapse=0.0, effective_rank=1.0, mean_profile_cosine=1.0, plain_refusal_logodds=est,
                    plain_hedge_logodds=est)


def test_rows_are_stored_once_per_run_and_step_in_order_and_corruption_is_reported(tmp_path) -> None:
    assert read_rows(tmp_path) == []
    assert append_row(tmp_path, _row(10))
    assert append_row(tmp_path, _row(0))
    assert not append_row(tmp_path, _row(10))  # a resumed run does not double a row
    assert append_row(tmp_path, _row(10, run="b"))
    assert [(r.run, r.step) for r in read_rows(tmp_path)] == [("a", 0), ("a", 10), ("b", 10)]
    (tmp_path / "drift.jsonl").write_text('{"run": "a", "step": "x"}\n')
    with pytest.raises(DriftStoreError, match="line 1"):
        read_rows(tmp_path)
