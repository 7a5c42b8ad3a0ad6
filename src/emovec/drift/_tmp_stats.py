# TEMPORARY until emovec.metrics has these (helper-2 is adding them); delete then.
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import binomtest

from emovec.metrics import Estimate


def readout(acts: torch.Tensor, units: torch.Tensor, centre: torch.Tensor, norm: float) -> torch.Tensor:
    return ((acts - centre) @ units.T) / norm


def wilson(k: int, n: int) -> Estimate:
    if n == 0:
        return Estimate(value=float("nan"), low=float("nan"), high=float("nan"), n=0, method="none")
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return Estimate(value=k / n, low=float(ci.low), high=float(ci.high), n=n, method="wilson")


def bootstrap_mean(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> Estimate:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return Estimate(value=float("nan"), low=float("nan"), high=float("nan"), n=0, method="none")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(1)
    return Estimate(
        value=float(v.mean()),
        low=float(np.quantile(means, 0.025)),
        high=float(np.quantile(means, 0.975)),
        n=len(v),
        method="bootstrap",
    )
