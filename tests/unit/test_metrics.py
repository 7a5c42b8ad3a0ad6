from __future__ import annotations

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
