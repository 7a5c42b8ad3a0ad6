"""Scores of a binary outcome: balanced accuracy of two rates, and ROC AUC with a bootstrap interval
(numpy, scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emovec.metrics.intervals import Estimate, Seed, index_bootstrap, stratified_bootstrap


def _balanced_stat(pos: NDArray[np.float64], neg: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
    return np.asarray((pos.mean(axis) + neg.mean(axis)) / 2)


def balanced_rate(hits_pos: ArrayLike, hits_neg: ArrayLike) -> float:
    """The mean of two hit rates with no interval; NaN when either class has no rows.

    Example:
        >>> balanced_rate([1, 1, 0, 1], [1, 0])
        0.625
    """
    pos, neg = np.asarray(hits_pos, dtype=np.float64), np.asarray(hits_neg, dtype=np.float64)
    return float("nan") if pos.size == 0 or neg.size == 0 else float(_balanced_stat(pos, neg))


def balanced_accuracy(hits_pos: ArrayLike, hits_neg: ArrayLike, *, n_resamples: int = 1000,
                      seed: Seed = 0) -> Estimate:
    """Mean of two hit rates (harmful prompts refused, benign ones answered), each class resampled on its own.

    Example:
        >>> balanced_accuracy([1, 1, 0, 1], [1, 0]).value
        0.625
    """
    return stratified_bootstrap([hits_pos, hits_neg], _balanced_stat, n_resamples=n_resamples, seed=seed)


def auc_estimate(y: ArrayLike, score: ArrayLike, groups: Sequence[object] | None = None, *,
                 n_resamples: int = 1000, seed: Seed = 0, min_class: int = 5) -> Estimate:
    """ROC AUC of ``score`` for the binary ``y`` with a percentile bootstrap over units (or whole ``groups``:
    the replies to one prompt). Rows with a non-finite score are dropped; fewer than ``min_class`` of either
    class gives a NaN estimate whose method says why.

    Example:
        >>> auc_estimate([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], min_class=2).value
        0.75
    """
    from sklearn.metrics import roc_auc_score

    yy, ss = np.asarray(y, dtype=int), np.asarray(score, dtype=np.float64)
    ok = np.isfinite(ss)
    yy, ss = yy[ok], ss[ok]
    g = None if groups is None else [k for k, keep in zip(groups, ok, strict=True) if keep]
    n_pos, n_neg = int(yy.sum()), int(len(yy) - yy.sum())
    if min(n_pos, n_neg) < min_class:
        return Estimate.missing(len(yy), f"not estimable: {n_pos} positives / {n_neg} negatives "
                                         f"(need {min_class} of each)")

    def stat(i: NDArray[np.intp]) -> float:
        return float(roc_auc_score(yy[i], ss[i])) if 0 < yy[i].sum() < len(i) else float("nan")

    return index_bootstrap(len(yy), stat, n_resamples=n_resamples, seed=seed, groups=g)
