from __future__ import annotations

import math

import numpy as np
import pytest

from emovec.metrics import cluster_bootstrap, pearson_estimate, percentile


def test_cluster_bootstrap_is_wider_when_units_share_clusters():
    rng = np.random.default_rng(0)
    cluster_means = rng.normal(0, 1, 10)
    values = np.repeat(cluster_means, 20) + rng.normal(0, 0.1, 200)
    clusters = np.repeat(np.arange(10), 20).tolist()
    naive = cluster_bootstrap(values, n_resamples=400)
    honest = cluster_bootstrap(values, clusters, n_resamples=400)
    assert honest.value == pytest.approx(values.mean())
    assert (honest.high - honest.low) > 2.5 * (naive.high - naive.low)
    assert honest.low <= honest.value <= honest.high and "10 clusters" in honest.method


def test_cluster_bootstrap_covers_the_truth_mostly():
    rng = np.random.default_rng(1)
    hits = 0
    for i in range(40):
        est = cluster_bootstrap(rng.normal(0.3, 1, 60), n_resamples=300, seed=i)
        hits += est.low <= 0.3 <= est.high
    assert hits >= 33  # 95% nominal


def test_pearson_and_percentile_and_errors():
    est = pearson_estimate([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5])
    assert 0.7 < est.value < 0.9 and est.low < est.value < est.high
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    with pytest.raises(ValueError, match="at least 4"):
        pearson_estimate([1, 2], [1, 2])
    with pytest.raises(ValueError, match="at least one value"):
        cluster_bootstrap([])


def test_bootstrap_drops_nan_and_handles_tiny_samples():
    from emovec.metrics import bootstrap

    est = bootstrap([1.0, float("nan"), 0.0, 1.0, 1.0])
    assert est.n == 4 and est.value == 0.75 and 0.0 <= est.low <= est.value <= est.high <= 1.0
    assert math.isnan(bootstrap([float("nan")]).value) and bootstrap([]).n == 0
    one = bootstrap([0.3])
    assert one.low == one.high == 0.3 and "no interval" in one.method
    assert bootstrap([1.0, 2.0, 3.0, 100.0], lambda x, axis: np.median(x, axis=axis)).value == 2.5


def test_balanced_accuracy_resamples_each_class_and_needs_both():
    from emovec.metrics import balanced_accuracy

    est = balanced_accuracy(np.ones(50), np.zeros(10))
    assert est.value == 0.5 and est.low == est.high == 0.5  # each class's rate is fixed within its stratum
    mixed = balanced_accuracy(np.r_[np.ones(30), np.zeros(20)], np.r_[np.ones(5), np.zeros(5)], seed=1)
    assert mixed.low < mixed.value < mixed.high
    assert math.isnan(balanced_accuracy([1, 0], []).value)


def test_index_bootstrap_is_paired_and_drops_nonfinite_draws():
    from emovec.metrics import index_bootstrap

    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + 0.01 * rng.normal(size=40)  # paired: the difference is tiny though each mean varies a lot
    est = index_bootstrap(40, lambda i: float(np.mean(y[i] - x[i])))
    assert est.high - est.low < 0.02
    lab = np.r_[np.zeros(3), np.ones(37)]
    odd = index_bootstrap(40, lambda i: float(lab[i].mean()) if lab[i].min() == 0 else float("nan"), seed=2)
    assert "non-finite draws dropped" in odd.method


def test_auc_estimate_with_groups_and_too_few():
    from emovec.metrics import auc_estimate

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    s = y + rng.normal(scale=0.8, size=60)
    est = auc_estimate(y, s, groups=[i // 3 for i in range(60)])
    assert 0.6 < est.value < 1.0 and est.low < est.value < est.high and "20 groups" in est.method
    few = auc_estimate(np.r_[np.zeros(30), np.ones(2)], np.arange(32.0))
    assert math.isnan(few.value) and "need 5" in few.method


def test_kl_and_readout_weights_agree_with_their_definitions():
    import torch

    from emovec.metrics import kl_logprobs, readout, readout_weights

    p = torch.log_softmax(torch.randn(3, 11), -1)
    q = torch.log_softmax(torch.randn(3, 11), -1)
    assert torch.allclose(kl_logprobs(p, p), torch.zeros(3))
    ref = torch.nn.functional.kl_div(q, p, log_target=True, reduction="none").sum(-1)
    assert torch.allclose(kl_logprobs(p, q), ref, atol=1e-6) and (kl_logprobs(p, q) > 0).all()
    acts, units, centre = torch.randn(5, 8), torch.nn.functional.normalize(torch.randn(4, 8), dim=-1), torch.randn(8)
    w, off = readout_weights(units, centre, 2.0)
    assert torch.allclose(acts @ w - off, readout(acts, units, centre, 2.0), atol=1e-5)
    assert readout(acts, units[0], centre, 2.0).shape == (5,)


def test_a_missing_estimate_survives_a_json_round_trip_inside_any_model():
    import math

    from pydantic import BaseModel

    from emovec.metrics import Estimate
    from emovec.studies.drift.rows import DriftRow

    class Holder(BaseModel):
        e: Estimate

    back = Holder.model_validate_json(Holder(e=Estimate.missing(3)).model_dump_json())
    assert math.isnan(back.e.value) and math.isnan(back.e.low) and back.e.n == 3
    nan = float("nan")
    row = DriftRow(run="r", step=0, model="m", layer=1, keys=["calm"], activation_shift={}, direction_drift={},
                   drift_to_locked={}, stability={}, coupling={}, drift_index=0.0, caution_decoupling=nan,
                   bundle_collapse=nan, effective_rank=1.0, mean_profile_cosine=nan,
                   plain_refusal_logodds=Estimate.missing(), plain_hedge_logodds=Estimate.missing(),
                   side_effects={"calm": {"calm": nan}})
    again = DriftRow.model_validate_json(row.model_dump_json())
    assert math.isnan(again.caution_decoupling) and math.isnan(again.side_effects["calm"]["calm"])
    assert math.isnan(again.modularity_index) and math.isnan(again.plain_refusal_logodds.value)


def test_the_mean_of_a_few_correlations_has_an_interval_inside_minus_one_to_one() -> None:
    from emovec.metrics import fisher_mean

    # three paraphrases' rho: a Student-t interval on the raw scale would reach past 1 (0.60 [0.10, 1.11])
    est = fisher_mean([0.95, 0.62, 0.23])
    assert -1 <= est.low <= est.value <= est.high <= 1 and est.n == 3
    assert est.value == pytest.approx(0.6)
    wide = fisher_mean([0.9, -0.95, -0.3])
    assert -1 <= wide.low < 0 < wide.high <= 1
    perfect = fisher_mean([1.0, 1.0, 0.98])  # a perfect rank correlation has z = inf; it is clipped
    assert perfect.high <= 1 and perfect.low > 0.5
    assert np.isnan(fisher_mean([0.5]).low) and fisher_mean([]).n == 0
