"""Intervals for the drift indices at one checkpoint, from the per-key figures a ``DriftRow`` already holds: the
index's own definition applied to bootstrap resamples of the key vectors (so the interval says how much the index
rests on which vectors happen to be keys), and, for the plain refusal log-odds shift, the two estimates' intervals.

- ``drift_index``: the mean of the keys' ``1 - cos``; resampled over keys;
- ``caution_decoupling``: ``emovec.studies.drift.indices.caution_decoupling_index`` over the caution-like keys' slopes;
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

from emovec.metrics import Estimate, bootstrap, index_bootstrap, target_share
from emovec.studies.drift.indices import caution_decoupling_index
from emovec.studies.drift.measure import CAUTION
from emovec.studies.drift.rows import DriftRow

_KEYS = "bootstrap over the key vectors"
_NO_BOOTSTRAP = "no interval: the effect profiles are not in the row"


def _shares(row: DriftRow) -> dict[str, float]:
    """Each steered key's share of its readout change on its own readout (the row's modularity, per key)."""
    out = {}
    for steered, reads in row.side_effects.items():
        names = list(reads)
        if steered in names:
            out[steered] = target_share(np.array([[reads[n] for n in names]]), names.index(steered))
    return out


def index_intervals(row: DriftRow, start: DriftRow, n_boot: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """95% intervals of every index at ``row`` against ``start`` (see module docs); NaN bounds where there is none.
    Each ``Estimate``'s value is the statistic on all the keys (the run summary pairs its bounds with the index)."""
    n = len(row.keys)
    out: dict[str, Estimate] = {"bundle_collapse": Estimate.missing(n, _NO_BOOTSTRAP),
                                "max_activation_shift": Estimate.missing(n, "no interval: a maximum")}
    drift = np.array(list(row.direction_drift.values()), dtype=float)
    out["drift_index"] = (bootstrap(drift, n_resamples=n_boot, seed=seed) if drift.size
                          else Estimate.missing(0, "no key vector drift"))
    caution = [k for k in row.keys if k in CAUTION and k in row.coupling and k in start.coupling]
    if caution:
        behaviours = sorted(start.coupling[caution[0]])
        c0 = np.array([[start.coupling[k].get(b, math.nan) for b in behaviours] for k in caution])
        ct = np.array([[row.coupling[k].get(b, math.nan) for b in behaviours] for k in caution])
        out["caution_decoupling"] = index_bootstrap(
            len(caution), lambda i: caution_decoupling_index(c0[i], ct[i]), n_resamples=n_boot, seed=seed)
    else:
        out["caution_decoupling"] = Estimate.missing(0, "no caution-like key vector")
    s0, st = _shares(start), _shares(row)
    drops = np.array([s0[k] - st[k] for k in s0 if k in st], dtype=float)
    out["modularity_drop"] = (bootstrap(drops, n_resamples=n_boot, seed=seed) if drops.size
                              else Estimate.missing(0, "no side effects measured"))
    a, b = row.plain_refusal_logodds, start.plain_refusal_logodds
    shift = abs(a.value - b.value)
    half = math.hypot((a.high - a.low) / 2, (b.high - b.low) / 2)
    method = "|a - b| with the two intervals' half-widths added in quadrature"
    out["refusal_logodds_shift"] = (Estimate(value=shift, low=max(0.0, shift - half), high=shift + half,
                                             n=min(a.n, b.n), method=method) if math.isfinite(half)
                                    else Estimate.missing(min(a.n, b.n), method))
    return out
