"""Alignment estimators on synthetic data where the shared subspace is known."""

from __future__ import annotations

import numpy as np
import pytest

from emovec.metrics.alignment import (
    centre,
    choose_cca_reg,
    debiased_cka,
    gcca,
    linear_cka,
    mutual_knn,
    procrustes,
    regularized_cca,
    shuffled_null,
)


def _views(n: int = 120, k: int = 4, widths: tuple[int, ...] = (30, 40, 50), noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k))
    views = [centre(z @ rng.normal(size=(k, d)) + noise * rng.normal(size=(n, d))) for d in widths]
    return z, views


def _subspace_cos(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine of the principal angles between the column spaces of a and b."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    return float(np.linalg.svd(qa.T @ qb, compute_uv=False).mean())


def test_procrustes_recovers_a_rotation_between_spaces_of_different_width() -> None:
    rng = np.random.default_rng(1)
    x, _ = np.linalg.qr(centre(rng.normal(size=(80, 12))))  # whitened
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    y = x @ q[:, :9]  # a semi-orthogonal map to 9 dimensions
    w = procrustes(x, y)
    assert w.shape == (12, 9)
    assert np.allclose(x @ w, y, atol=1e-8)
    with pytest.raises(ValueError, match="same stimuli"):
        procrustes(x, y[:10])


def test_cca_finds_the_shared_signal_and_held_out_correlation_beats_independent_data() -> None:
    _, (x, y, _) = _views()
    train, test = slice(0, 80), slice(80, None)
    cca = regularized_cca(x[train], y[train], k=4, reg=choose_cca_reg(x[train], y[train], k=4))
    assert cca.correlations(x[test], y[test]).min() > 0.8
    rng = np.random.default_rng(3)
    indep = centre(rng.normal(size=y.shape))
    cca_null = regularized_cca(x[train], indep[train], k=4, reg=0.1)
    assert np.abs(cca_null.correlations(x[test], indep[test])).mean() < 0.4
    with pytest.raises(ValueError, match="shrinkage"):
        regularized_cca(x, y, 2, reg=2.0)


def test_gcca_recovers_the_shared_subspace_across_three_widths_with_fewer_stimuli_than_dimensions() -> None:
    z, views = _views(n=40, widths=(60, 80, 100))
    fit = gcca(views, k=4, reg=0.1)
    assert _subspace_cos(fit.g, z) > 0.95
    assert all(np.corrcoef(fit.project(j, v)[:, 0], fit.g[:, 0])[0, 1] > 0.9 for j, v in enumerate(views))
    rng = np.random.default_rng(5)
    noise = [centre(rng.normal(size=v.shape)) for v in views]
    assert _subspace_cos(gcca(noise, k=4).g, z) < 0.6
    with pytest.raises(ValueError, match="more than 40"):
        gcca(views, k=40)


def test_debiased_cka_is_near_zero_on_independent_data_where_the_biased_one_reads_high() -> None:
    rng = np.random.default_rng(7)
    x, y = centre(rng.normal(size=(20, 200))), centre(rng.normal(size=(20, 300)))
    assert linear_cka(x, y) > 0.5
    assert abs(debiased_cka(x, y)) < 0.15
    _, (a, b, _) = _views(n=20)
    assert debiased_cka(a, b) > 0.6


def test_mutual_knn_and_the_shuffled_baseline() -> None:
    _, (a, b, _) = _views(n=100, noise=0.1)
    real = mutual_knn(a, b, k=5)
    null = shuffled_null(lambda x, y: mutual_knn(x, y, k=5), a, b, n_perm=20)
    assert real > 0.5 and null.max() < 0.2
    assert mutual_knn(a, a, k=5) == pytest.approx(1.0)
