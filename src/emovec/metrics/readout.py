"""The emotion readout: an activation's projection on a unit direction, measured from a centre, in units of
the layer's mean residual norm (so readouts read like steering strengths). Torch only."""

from __future__ import annotations

from torch import Tensor


def readout(acts: Tensor, units: Tensor, centre: Tensor | float, norm: float) -> Tensor:
    """``[..., K]`` readouts of activations ``[..., d]`` on unit directions ``[K, d]``.

    Example:
        >>> readout(h, torch.nn.functional.normalize(vs.at_layer(14), dim=-1), vs.center[j], float(vs.mean_norm[j]))
    """
    return ((acts - centre) @ units.T) / norm
