"""KL divergence between next-token distributions given as log-probabilities (torch)."""

from __future__ import annotations

from torch import Tensor


def kl_logprobs(p: Tensor, q: Tensor) -> Tensor:
    """``KL(p || q)`` in nats over the last dimension of log-probabilities ``p`` and ``q`` (e.g. unsteered and
    steered next-token log-softmax), clamped at 0 against rounding; differentiable in ``q``.

    Example:
        >>> kl_logprobs(plain_logp, steered_logp)  # [batch]
    """
    return (p.exp() * (p - q)).sum(-1).clamp_min(0.0)
