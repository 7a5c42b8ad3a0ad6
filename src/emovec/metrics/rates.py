"""Rates with Wilson intervals, and the bootstrap mean of the finite values of an array (numpy, scipy)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest

from emovec.metrics.intervals import Estimate, bootstrap

_NAN = float("nan")


def wilson(k: int, n: int, level: float = 0.95) -> Estimate:
    """``k / n`` with its Wilson score interval (sound at 0 and 1, unlike a bootstrap); NaN when ``n == 0``.

    Example:
        >>> wilson(0, 10).high > 0
        True
    """
    if n == 0:
        return Estimate(value=_NAN, low=_NAN, high=_NAN, level=level, n=0, method="Wilson score (no trials)")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Estimate(value=k / n, low=float(ci.low), high=float(ci.high), level=level, n=n, method="Wilson score")


def finite_mean(values: ArrayLike, n_resamples: int = 1000, seed: int = 0) -> Estimate:
    """Percentile-bootstrap mean of the finite entries (NaN estimate when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(value=_NAN, low=_NAN, high=_NAN, n=0, method="no finite values")
    return bootstrap(v, n_resamples=n_resamples, seed=seed)
