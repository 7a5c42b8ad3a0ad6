"""Point estimates with intervals: cluster bootstrap, Pearson r with a Fisher-z interval, percentiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel
from scipy import stats


class Estimate(BaseModel):
    """A figure with its interval: ``value`` in ``[low, high]`` at ``level``, from ``n`` units by ``method``."""

    value: float
    low: float
    high: float
    level: float = 0.95
    n: int
    method: str

    def fmt(self, digits: int = 3) -> str:
        """``0.123 [0.101, 0.145]``."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def cluster_bootstrap(
    values: ArrayLike,
    clusters: Sequence[object] | None = None,
    *,
    statistic: Callable[[NDArray[np.float64]], float] = lambda v: float(np.mean(v)),
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap of ``statistic`` over ``values``, resampling whole clusters when given.

    Units that share a cluster (stories of one topic, replies to one prompt) are not independent, so
    resampling clusters gives honest, wider intervals than resampling units.

    Args:
        values: one number per unit.
        clusters: a cluster key per unit (default: every unit its own cluster).
        statistic: computed on the concatenated values of a resample (default: the mean).
        n_resamples: bootstrap resamples.
        level: interval coverage.
        seed: the resampling seed.

    Returns:
        ``Estimate`` with the statistic on all units and its percentile interval.

    Example:
        >>> cluster_bootstrap([1, 0, 1, 1], clusters=["a", "a", "b", "b"]).value
        0.75
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("cluster_bootstrap needs at least one value")
    keys = list(range(len(v))) if clusters is None else list(clusters)
    if len(keys) != len(v):
        raise ValueError(f"got {len(keys)} cluster keys for {len(v)} values")
    index: dict[object, list[int]] = {}
    for i, k in enumerate(keys):
        index.setdefault(k, []).append(i)
    groups = [np.asarray(ix) for ix in index.values()]
    rng = np.random.default_rng(seed)
    draws = np.empty(n_resamples)
    for b in range(n_resamples):
        pick = rng.integers(0, len(groups), len(groups))
        draws[b] = statistic(v[np.concatenate([groups[i] for i in pick])])
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    method = "percentile bootstrap over " + ("units" if clusters is None else f"{len(groups)} clusters")
    return Estimate(value=statistic(v), low=float(low), high=float(high), level=level, n=len(v), method=method)


def pearson_estimate(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Pearson r with its Fisher-z interval.

    Example:
        >>> round(pearson_estimate([1, 2, 3, 4], [1, 2, 4, 3]).value, 2)
        0.8
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) != len(b) or len(a) < 4:
        raise ValueError(f"pearson_estimate needs two equal-length samples of at least 4; got {len(a)} and {len(b)}")
    res = stats.pearsonr(a, b)
    ci = res.confidence_interval(confidence_level=level)
    return Estimate(value=float(res.statistic), low=float(ci.low), high=float(ci.high), level=level, n=len(a),
                    method="Pearson r, Fisher z interval")


def percentile(values: ArrayLike, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
