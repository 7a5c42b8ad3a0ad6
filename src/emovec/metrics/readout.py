"""The emotion readout: an activation's projection on a unit direction, measured from a centre, in units of
the layer's mean residual norm (so readouts read like steering strengths). Torch only."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from torch import Tensor


def readout_weights(units: Tensor, centre: Tensor | float, norm: float | Tensor) -> tuple[Tensor, Tensor | float]:
    """The readout as ``acts @ weight - offset`` for hooks that score every step: ``weight`` ``[d, K]`` (or
    ``[d]`` for one direction) and ``offset`` the centre's own score.

    Example:
        >>> w, off = readout_weights(units, centre, 3.2); scores = hidden @ w - off
    """
    weight = (units.T if units.dim() == 2 else units) / norm
    offset = centre @ weight if isinstance(centre, Tensor) else 0.0
    return weight, offset


def readout(acts: Tensor, units: Tensor, centre: Tensor | float, norm: float | Tensor = 1.0) -> Tensor:
    """``[..., K]`` readouts of activations ``[..., d]`` on unit directions ``[K, d]`` (``[...]`` for one
    direction ``[d]``); ``norm=1`` gives the raw centred projection.

    Example:
        >>> readout(h, torch.nn.functional.normalize(vs.at_layer(14), dim=-1), vs.center[j], float(vs.mean_norm[j]))
    """
    return ((acts - centre) @ (units.T if units.dim() == 2 else units)) / norm


def target_share(delta: NDArray[np.float64], target: int) -> float:
    """The modularity of one steer: the share of the absolute mean readout change (``delta`` ``[n, K]``, steered
    minus unsteered readouts of ``n`` texts on ``K`` vectors) that falls on the steered vector's own readout
    ``target``; 1 is a perfectly modular steer, ``1/K`` one that moves every readout alike. NaN when nothing moved.
    """
    m = np.abs(np.asarray(delta, dtype=np.float64).mean(0))
    return float(m[target] / m.sum()) if np.isfinite(m).all() and m.sum() > 0 else float("nan")
