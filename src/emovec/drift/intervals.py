"""Intervals for the drift indices at one checkpoint, from the per-key figures a ``DriftRow`` already holds: the
index's own definition applied to bootstrap resamples of the key vectors (so the interval says how much the index
rests on which vectors happen to be keys), and, for the plain refusal log-odds shift, the two estimates' intervals.

- ``drift_index``: the mean of the keys' ``1 - cos``; resampled over keys;
- ``caution_decoupling``: ``emovec.drift.indices.caution_decoupling_index`` over the caution-like keys' slopes;
  resampled over those keys;
- ``modularity_drop``: the mean over keys of the fall of each steer's share on its own readout; resampled over keys;
- ``refusal_logodds_shift``: ``|a - b|`` with the half-widths of the two 95% intervals added in quadrature (a
  normal approximation, floored at 0);
- ``bundle_collapse`` and ``max_activation_shift``: none (the effect profiles are not stored in the row, and a
  maximum has no bootstrap interval worth drawing): NaN bounds.
"""

from __future__ import annotations

import math

import numpy as np

from emovec.drift.indices import caution_decoupling_index
from emovec.drift.measure import CAUTION
from emovec.drift.rows import DriftRow
from emovec.metrics import Estimate, bootstrap, index_bootstrap, target_share

Interval = tuple[float, float]
_NONE: Interval = (math.nan, math.nan)


def _bounds(est: Estimate) -> Interval:
    return (est.low, est.high)


def _shares(row: DriftRow) -> dict[str, float]:
    """Each steered key's share of its readout change on its own readout (the row's modularity, per key)."""
    out = {}
    for steered, reads in row.side_effects.items():
        names = list(reads)
        if steered in names:
            out[steered] = target_share(np.array([[reads[n] for n in names]]), names.index(steered))
    return out


def index_intervals(row: DriftRow, start: DriftRow, n_boot: int = 1000, seed: int = 0) -> dict[str, Interval]:
    """95% intervals of every index at ``row`` against ``start`` (see module docs); NaN bounds where there is none."""
    out: dict[str, Interval] = {"bundle_collapse": _NONE, "max_activation_shift": _NONE}
    drift = np.array(list(row.direction_drift.values()), dtype=float)
    out["drift_index"] = _bounds(bootstrap(drift, n_resamples=n_boot, seed=seed)) if drift.size else _NONE
    caution = [k for k in row.keys if k in CAUTION and k in row.coupling and k in start.coupling]
    if caution:
        behaviours = sorted(start.coupling[caution[0]])
        c0 = np.array([[start.coupling[k].get(b, math.nan) for b in behaviours] for k in caution])
        ct = np.array([[row.coupling[k].get(b, math.nan) for b in behaviours] for k in caution])
        out["caution_decoupling"] = _bounds(index_bootstrap(
            len(caution), lambda i: caution_decoupling_index(c0[i], ct[i]), n_resamples=n_boot, seed=seed))
    else:
        out["caution_decoupling"] = _NONE
    s0, st = _shares(start), _shares(row)
    drops = np.array([s0[k] - st[k] for k in s0 if k in st], dtype=float)
    out["modularity_drop"] = _bounds(bootstrap(drops, n_resamples=n_boot, seed=seed)) if drops.size else _NONE
    a, b = row.plain_refusal_logodds, start.plain_refusal_logodds
    shift = abs(a.value - b.value)
    half = math.hypot((a.high - a.low) / 2, (b.high - b.low) / 2)
    out["refusal_logodds_shift"] = (max(0.0, shift - half), shift + half) if math.isfinite(half) else _NONE
    return out
