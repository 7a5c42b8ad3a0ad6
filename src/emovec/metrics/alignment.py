"""Aligning representation spaces of different widths through shared stimuli, and measuring how well they
align (numpy only).

Every function takes activation matrices whose rows are the *same* stimuli in each model (``[n, d_model]``,
widths may differ). Centre them first (``centre``); the functions do not.

- ``procrustes``: the semi-orthogonal map ``W`` (``d_x x d_y``, ``W^T W = I`` when ``d_x >= d_y``) maximising
  ``tr(W^T X^T Y)``, from the SVD of ``X^T Y``; it minimises ``||X W - Y||`` when ``X`` is whitened (reduce both
  spaces to the same number of whitened principal components first, as the cross-model study does).
- ``regularized_cca``: canonical directions of two views with ridge shrinkage of each covariance towards a
  scaled identity, ``C <- (1 - r) C + r tr(C)/d I``, so that ``n < d`` is well posed; ``r`` is given, or chosen
  by held-out canonical correlation.
- ``gcca``: generalised CCA over any number of views (MAXVAR form): the shared response ``G`` (``n x k``,
  orthonormal columns) maximising the summed squared correlation with every view; each view's loadings map its
  activations onto ``G``. Computed in the ``n x n`` stimulus space, so width does not matter.
- ``debiased_cka``: linear CKA from the unbiased HSIC estimator (Song et al. 2012), which is near 0 for
  independent data at small ``n`` where the plain (biased) CKA reads high; ``linear_cka`` is the biased one.
- ``mutual_knn``: the mean share of each stimulus's ``k`` nearest neighbours that the two spaces agree on.
- ``shuffled_null``: a statistic on stimulus-shuffled pairs, the baseline every alignment figure must beat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def centre(x: np.ndarray) -> np.ndarray:
    """Columns minus their mean."""
    return np.asarray(x - x.mean(0, keepdims=True))


def whiten(stimuli: np.ndarray, pcs: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, W)`` with ``(x - mean) @ W`` the top ``pcs`` principal components scaled to unit variance."""
    mean = stimuli.mean(0)
    _, s, vt = np.linalg.svd(stimuli - mean, full_matrices=False)
    p = min(pcs, len(s) - 1)
    scale = s[:p] / np.sqrt(max(len(stimuli) - 1, 1))
    return mean, vt[:p].T / np.where(scale > 0, scale, 1.0)


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"alignment needs the same stimuli (rows) in both spaces; got {x.shape} and {y.shape}")
    if x.shape[0] < 3:
        raise ValueError(f"alignment needs at least 3 shared stimuli; got {x.shape[0]}")


def procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Semi-orthogonal ``W`` (``[d_x, d_y]``) maximising ``tr(W^T x^T y)`` (see module docs).

    Example:
        >>> w = procrustes(x, y); mapped = x @ w
    """
    _check_pair(x, y)
    u, _, vt = np.linalg.svd(x.T @ y, full_matrices=False)
    return np.asarray(u @ vt)


def _shrunk_cov(x: np.ndarray, r: float) -> np.ndarray:
    c = x.T @ x / max(len(x) - 1, 1)
    d = c.shape[0]
    return np.asarray((1 - r) * c + r * np.trace(c) / d * np.eye(d))


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c)
    vals = np.clip(vals, 1e-12, None)
    return np.asarray((vecs / np.sqrt(vals)) @ vecs.T)


@dataclass(frozen=True)
class CCA:
    """Canonical directions ``wx`` ``[d_x, k]``, ``wy`` ``[d_y, k]`` and the in-sample correlations ``corr``."""

    wx: np.ndarray
    wy: np.ndarray
    corr: np.ndarray
    reg: float

    def correlations(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per component, the correlation of the projections of (held-out) ``x`` and ``y``."""
        a, b = centre(x @ self.wx), centre(y @ self.wy)
        num = (a * b).sum(0)
        den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
        return np.asarray(num / np.where(den > 0, den, 1.0))


def regularized_cca(x: np.ndarray, y: np.ndarray, k: int, reg: float = 0.1) -> CCA:
    """CCA with covariance shrinkage ``reg`` in [0, 1] (see module docs); ``k`` components.

    Example:
        >>> cca = regularized_cca(centre(x), centre(y), k=5, reg=0.2)
        >>> cca.correlations(x_test, y_test)
    """
    _check_pair(x, y)
    if not 0.0 <= reg <= 1.0:
        raise ValueError(f"reg is a shrinkage weight in [0, 1]; got {reg}")
    k = min(k, x.shape[1], y.shape[1])
    cx, cy = _inv_sqrt(_shrunk_cov(x, reg)), _inv_sqrt(_shrunk_cov(y, reg))
    cxy = x.T @ y / max(len(x) - 1, 1)
    u, s, vt = np.linalg.svd(cx @ cxy @ cy, full_matrices=False)
    return CCA(cx @ u[:, :k], cy @ vt.T[:, :k], s[:k], reg)


def choose_cca_reg(x: np.ndarray, y: np.ndarray, k: int, grid: Sequence[float] = (0.01, 0.05, 0.1, 0.3, 0.6, 0.9),
                   folds: int = 5, seed: int = 0) -> float:
    """The shrinkage with the highest mean held-out canonical correlation (k-fold over stimuli)."""
    _check_pair(x, y)
    order = np.random.default_rng(seed).permutation(len(x))
    parts = np.array_split(order, min(folds, len(x)))
    best, best_score = grid[0], -np.inf
    for r in grid:
        scores = []
        for test in parts:
            train = np.setdiff1d(order, test)
            if len(train) < 3 or len(test) < 2:
                continue
            mx, my = x[train].mean(0), y[train].mean(0)
            cca = regularized_cca(x[train] - mx, y[train] - my, k, r)
            scores.append(float(np.nanmean(cca.correlations(x[test] - mx, y[test] - my))))
        score = float(np.mean(scores)) if scores else -np.inf
        if score > best_score:
            best, best_score = r, score
    return float(best)


@dataclass(frozen=True)
class GCCA:
    """Shared response ``g`` ``[n, k]`` and per-view loadings ``w[j]`` ``[d_j, k]`` with ``x_j @ w[j] ~ g``."""

    g: np.ndarray
    w: list[np.ndarray]
    eigenvalues: np.ndarray
    reg: float

    def project(self, view: int, x: np.ndarray) -> np.ndarray:
        """Activations of view ``view`` (centred like the fit) in the shared space."""
        return np.asarray(x @ self.w[view])


def gcca(views: Sequence[np.ndarray], k: int, reg: float = 0.1) -> GCCA:
    """MAXVAR generalised CCA over two or more views (rows = shared stimuli); ``reg`` is the ridge, relative to
    each view's mean eigenvalue.

    Example:
        >>> fit = gcca([centre(a), centre(b), centre(c)], k=8)
        >>> shared_a = fit.project(0, centre(a))
    """
    if len(views) < 2:
        raise ValueError("generalised CCA needs at least two views")
    for v in views[1:]:
        _check_pair(views[0], v)
    n = views[0].shape[0]
    if k > n - 1:
        raise ValueError(f"a shared basis of {k} directions needs more than {k} shared stimuli; got {n}")
    projectors = []
    solvers = []
    for x in views:
        gram = x @ x.T  # [n, n]: the view's projection computed in stimulus space (any width)
        ridge = reg * max(np.trace(gram) / n, 1e-12)
        inv = np.linalg.inv(gram + ridge * np.eye(n))
        projectors.append(gram @ inv)
        solvers.append(x.T @ inv)  # maps the shared response back to loadings
    vals, vecs = np.linalg.eigh(sum(projectors) / len(views))
    order = np.argsort(vals)[::-1][:k]
    g = vecs[:, order]
    return GCCA(g, [s @ g for s in solvers], vals[order], reg)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """The plain (biased) linear CKA of centred ``x`` and ``y``."""
    _check_pair(x, y)
    xy = np.linalg.norm(x.T @ y) ** 2
    return float(xy / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    n = k.shape[0]
    k, l_ = k.copy(), l_.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l_, 0.0)
    ones = np.ones(n)
    term = np.trace(k @ l_) + (ones @ k @ ones) * (ones @ l_ @ ones) / ((n - 1) * (n - 2))
    term -= 2.0 / (n - 2) * (ones @ k @ l_ @ ones)
    return float(term / (n * (n - 3)))


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA from unbiased HSIC estimates (needs at least 4 stimuli); near 0 for independent data.

    Example:
        >>> debiased_cka(centre(a), centre(b))
    """
    _check_pair(x, y)
    if x.shape[0] < 4:
        raise ValueError("debiased CKA needs at least 4 shared stimuli")
    kx, ky = x @ x.T, y @ y.T
    xy, xx, yy = _unbiased_hsic(kx, ky), _unbiased_hsic(kx, kx), _unbiased_hsic(ky, ky)
    return float(xy / np.sqrt(xx * yy)) if xx > 0 and yy > 0 else float("nan")


def mutual_knn(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mean over stimuli of |kNN_x(i) & kNN_y(i)| / k (cosine neighbours, self excluded); chance is about
    ``k / (n - 1)``."""
    _check_pair(x, y)
    k = min(k, x.shape[0] - 1)

    def neighbours(z: np.ndarray) -> np.ndarray:
        u = z / np.clip(np.linalg.norm(z, axis=1, keepdims=True), 1e-12, None)
        sims = u @ u.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]

    nx, ny = neighbours(x), neighbours(y)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nx, ny, strict=True)]))


def shuffled_null(stat: Callable[[np.ndarray, np.ndarray], float], x: np.ndarray, y: np.ndarray,
                  n_perm: int = 100, seed: int = 0) -> np.ndarray:
    """``stat`` on ``n_perm`` stimulus-shuffled pairings of ``x`` and ``y`` (the baseline to beat)."""
    rng = np.random.default_rng(seed)
    return np.array([stat(x, y[rng.permutation(len(y))]) for _ in range(n_perm)])
