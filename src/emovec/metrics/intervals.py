"""Point estimates with intervals: the percentile bootstrap (one sample, stratified, paired, over units or
clusters, through ``scipy.stats.bootstrap`` where the statistic vectorises), Pearson r with a Fisher-z
interval, the mean of a few correlations with a Fisher-z interval, percentiles. Every interval in emovec comes
from here."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, field_validator
from scipy import stats


class Estimate(BaseModel):
    """A figure with its interval: ``value`` in ``[low, high]`` at ``level``, from ``n`` units by ``method``."""

    value: float
    low: float
    high: float
    level: float = 0.95
    n: int
    method: str

    @field_validator("value", "low", "high", mode="before")
    @classmethod
    def _null_is_nan(cls, v: Any) -> Any:
        """JSON has no NaN: pydantic writes a NaN figure as ``null``, and it reads back as NaN."""
        return _NAN if v is None else v

    def fmt(self, digits: int = 3) -> str:
        """``0.123 [0.101, 0.145]``."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def text(self, digits: int = 3) -> str:
        """``fmt``, or ``n/a`` when the estimate is NaN (nothing to estimate from)."""
        return "n/a" if math.isnan(self.value) else self.fmt(digits)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (NaN stays NaN)."""
        return self.model_dump()

    @classmethod
    def missing(cls, n: int = 0, method: str = "not estimable", level: float = 0.95) -> Estimate:
        """A NaN estimate from ``n`` units (too few, or none finite)."""
        return cls(value=_NAN, low=_NAN, high=_NAN, level=level, n=n, method=method)

    @classmethod
    def from_draws(cls, value: float, draws: ArrayLike, n: int, method: str, level: float = 0.95) -> Estimate:
        """``value`` with the percentile interval of resampled ``draws`` of it (non-finite draws dropped), for
        statistics too costly to vectorise (vectors refitted per draw)."""
        d = np.asarray(draws, dtype=np.float64).ravel()
        d = d[np.isfinite(d)]
        if d.size == 0:
            return cls(value=float(value), low=_NAN, high=_NAN, level=level, n=n, method=f"{method}: no finite draw")
        alpha = (1 - level) / 2
        low, high = np.quantile(d, [alpha, 1 - alpha])
        return cls(value=float(value), low=float(low), high=float(high), level=level, n=n, method=method)

    @classmethod
    def point(cls, value: float, n: int, method: str) -> Estimate:
        """A figure with no interval (a median latency, a fixed count): NaN bounds."""
        return cls(value=float(value), low=_NAN, high=_NAN, n=n, method=method)


Seed = int | np.random.Generator
_NAN = float("nan")


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _finite(values: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def bootstrap(
    values: ArrayLike,
    statistic: Callable[..., Any] = np.mean,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
) -> Estimate:
    """Percentile bootstrap of a vectorised ``statistic(x, axis=-1)`` over the finite ``values``.

    NaN entries (a judge that did not run, an empty reply) are dropped first; no values gives a NaN estimate,
    a single value a zero-width interval.

    Example:
        >>> bootstrap([0, 1, 1, 1]).value
        0.75
    """
    v = _finite(values)
    if v.size == 0:
        return Estimate.missing()
    value = float(statistic(v[None, :], axis=-1)[0])
    if v.size == 1:
        return Estimate(value=value, low=value, high=value, level=level, n=1, method="one value: no interval")
    res = stats.bootstrap((v,), statistic, vectorized=True, axis=-1, method="percentile", n_resamples=n_resamples,
                          confidence_level=level, rng=_rng(seed))
    ci = res.confidence_interval
    return Estimate(value=value, low=float(ci.low), high=float(ci.high), level=level, n=int(v.size),
                    method="percentile bootstrap over units")


def stratified_bootstrap(
    samples: Sequence[ArrayLike],
    statistic: Callable[..., Any],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
) -> Estimate:
    """Percentile bootstrap of ``statistic(*samples, axis=-1)``, each sample (stratum) resampled on its own,
    e.g. balanced accuracy from harmful and benign prompts. NaN when any stratum is empty.

    Example:
        >>> stratified_bootstrap([[1, 1, 0], [0, 1]], lambda a, b, axis: (a.mean(axis) + b.mean(axis)) / 2).value
        0.5833333333333333
    """
    parts = [_finite(s) for s in samples]
    n = sum(p.size for p in parts)
    if any(p.size == 0 for p in parts):
        return Estimate.missing(n, "not estimable: an empty stratum")
    value = float(statistic(*[p[None, :] for p in parts], axis=-1)[0])
    if any(p.size < 2 for p in parts):
        return Estimate(value=value, low=value, high=value, level=level, n=n, method="a one-value stratum")
    res = stats.bootstrap(tuple(parts), statistic, vectorized=True, axis=-1, method="percentile",
                          n_resamples=n_resamples, confidence_level=level, rng=_rng(seed))
    ci = res.confidence_interval
    return Estimate(value=value, low=float(ci.low), high=float(ci.high), level=level, n=n,
                    method=f"stratified percentile bootstrap ({len(parts)} strata)")


def index_bootstrap(
    n_units: int,
    statistic: Callable[[NDArray[np.intp]], float],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
    groups: Sequence[object] | None = None,
) -> Estimate:
    """Percentile bootstrap of any ``statistic(index)`` of resampled unit indices (paired: every array the
    statistic reads is indexed by the same draw). With ``groups``, whole groups are resampled together.
    Draws whose statistic is not finite (an AUC on one class) are dropped; the method says how many.

    Example:
        >>> y, s = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
        >>> index_bootstrap(4, lambda i: float(np.mean(s[i][y[i] == 1]) - np.mean(s[i][y[i] == 0]))).n
        4
    """
    if n_units == 0:
        return Estimate.missing()
    keys = list(range(n_units)) if groups is None else list(groups)
    if len(keys) != n_units:
        raise ValueError(f"got {len(keys)} group keys for {n_units} units")
    where: dict[object, list[int]] = {}
    for i, k in enumerate(keys):
        where.setdefault(k, []).append(i)
    blocks = [np.asarray(ix, dtype=np.intp) for ix in where.values()]
    value = float(statistic(np.arange(n_units, dtype=np.intp)))
    rng = _rng(seed)
    draws = np.empty(n_resamples)
    for b in range(n_resamples):
        pick = rng.integers(0, len(blocks), len(blocks))
        draws[b] = statistic(np.concatenate([blocks[i] for i in pick]))
    over = "units" if groups is None else f"{len(blocks)} groups"
    bad = int((~np.isfinite(draws)).sum())
    dropped = f", {bad} non-finite draws dropped" if bad else ""
    return Estimate.from_draws(value, draws, n_units, f"percentile bootstrap over {over}{dropped}", level)


def vector_index_bootstrap(
    n_units: int,
    statistic: Callable[[NDArray[np.intp]], ArrayLike],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-component percentile intervals ``(low, high)`` of a vector-valued ``statistic(index)`` over
    resampled unit indices (e.g. one score per item from resampled comparisons). Non-finite draws of a
    component are left out of that component's interval.

    Example:
        >>> x = np.arange(10.0)
        >>> low, high = vector_index_bootstrap(10, lambda i: np.array([x[i].mean(), x[i].max()]), n_resamples=200)
        >>> bool(low[0] < 4.5 < high[0]), float(high[1])
        (True, 9.0)
    """
    if n_units == 0:
        raise ValueError("no units to resample")
    rng = _rng(seed)
    draws = np.stack([np.asarray(statistic(rng.integers(0, n_units, n_units)), dtype=np.float64)
                      for _ in range(n_resamples)])
    alpha = (1.0 - level) / 2.0
    return (np.nanquantile(np.where(np.isfinite(draws), draws, np.nan), alpha, axis=0),
            np.nanquantile(np.where(np.isfinite(draws), draws, np.nan), 1.0 - alpha, axis=0))


def stratified_indices(labels: ArrayLike, rng: np.random.Generator) -> NDArray[np.intp]:
    """One bootstrap draw of unit indices, resampled with replacement within each label (every emotion keeps
    its count of stories)."""
    lab = np.asarray(labels)
    return np.concatenate([rng.choice(np.flatnonzero(lab == v), size=int((lab == v).sum())) for v in np.unique(lab)])


def permuted_within(labels: ArrayLike, groups: ArrayLike | None, rng: np.random.Generator) -> NDArray[Any]:
    """The labels permuted among the units of each group (among all units without groups): a permutation null
    that keeps the design (each group its units, each label its count per group) and breaks the label-unit link."""
    lab = np.asarray(labels)
    out = lab.copy()
    parts = [np.arange(len(lab))] if groups is None else [np.flatnonzero(np.asarray(groups) == g)
                                                          for g in np.unique(np.asarray(groups))]
    for rows in parts:
        out[rows] = lab[rng.permutation(rows)]
    return out


def cluster_bootstrap(
    values: ArrayLike,
    clusters: Sequence[object] | None = None,
    *,
    statistic: Callable[[NDArray[np.float64]], float] = lambda v: float(np.mean(v)),
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: Seed = 0,
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
        seed: the resampling seed (or a generator).

    Returns:
        ``Estimate`` with the statistic on all units and its percentile interval.

    Example:
        >>> cluster_bootstrap([1, 0, 1, 1], clusters=["a", "a", "b", "b"]).value
        0.75
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("cluster_bootstrap needs at least one value")
    if clusters is not None and len(list(clusters)) != len(v):
        raise ValueError(f"got {len(list(clusters))} cluster keys for {len(v)} values")
    est = index_bootstrap(len(v), lambda i: statistic(v[i]), n_resamples=n_resamples, level=level, seed=seed,
                          groups=clusters)
    if clusters is not None:
        est.method = est.method.replace(" groups", " clusters")
    return est


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


FISHER_CLIP = 0.999  # |r| is clipped here before Fisher's z (a perfect correlation has z = inf)


def fisher_mean(correlations: ArrayLike, level: float = 0.95) -> Estimate:
    """The mean of a few correlations (e.g. one Spearman rho per paraphrase of a template) with a Student-t
    interval of their mean on Fisher's z scale, carried back by tanh, so the interval stays inside [-1, 1].

    The value is the plain mean of the correlations (what a table of per-item correlations reports); the
    interval is widened to hold it in the rare case the two means part. Fewer than two correlations give NaN
    bounds; the interval of a handful is wide (t with n - 1 degrees of freedom), as it should be.

    Example:
        >>> est = fisher_mean([0.6, 0.9, 0.3])
        >>> -1 <= est.low <= est.value <= est.high <= 1
        True
    """
    r = _finite(correlations)
    method = f"mean of {r.size} correlations, Student-t interval on Fisher's z scale"
    if r.size == 0:
        return Estimate.missing(0, method)
    value = float(r.mean())
    if r.size < 2:
        return Estimate(value=value, low=_NAN, high=_NAN, level=level, n=1, method=method)
    z = np.arctanh(np.clip(r, -FISHER_CLIP, FISHER_CLIP))
    half = float(stats.t.ppf(0.5 + level / 2, r.size - 1) * z.std(ddof=1) / math.sqrt(r.size))
    low, high = float(np.tanh(z.mean() - half)), float(np.tanh(z.mean() + half))
    return Estimate(value=value, low=min(low, value), high=max(high, value), level=level, n=int(r.size),
                    method=method)


def percentile(values: ArrayLike, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
