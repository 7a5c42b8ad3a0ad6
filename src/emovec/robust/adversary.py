"""The optimiser's optional adversary: the safety loss of a direction is taken under an attack on the steered
model, so the direction is trained (and validated) against a worst case and not only the training prompts.

- ``ablate_refusal``: the model's refusal direction is projected out of the residual stream after every block
  (the ablation attack of Arditi et al., 2024), steering included. The direction is the unit mean difference of
  last-token activations at the steered layer between the *training* harmful and benign prompts, so no
  evaluation prompt is used to fit it.
- ``embedding``: a small perturbation of the input embeddings, found by ``steps`` of projected sign-gradient
  ascent on the safety loss inside an L-infinity ball of radius ``epsilon`` times the embedding matrix's
  standard deviation (latent adversarial training in its simplest form), then held fixed for the step.

Both attack only the harmful prompts; the benign (retain) terms are read unattacked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from emovec.capture import TokenSelection, capture
from emovec.models.loading import LoadedModel
from emovec.models.prompts import format_prompt
from emovec.models.sites import block_output_hooks


def refusal_direction(lm: LoadedModel, harmful: Sequence[str], benign: Sequence[str], layer: int) -> Tensor:
    """Unit mean difference (harmful minus benign) of the chat-formatted prompts' last-token activations at
    ``layer``."""
    if not harmful or not benign:
        raise ValueError("the refusal direction needs harmful and benign prompts")
    texts = [format_prompt(lm, p) for p in [*harmful, *benign]]
    means = capture(lm, texts, [layer], selection=TokenSelection.last()).means[:, 0].float()
    diff = means[: len(harmful)].mean(0) - means[len(harmful):].mean(0)
    return diff / diff.norm()


@contextmanager
def refusal_ablation(lm: LoadedModel, direction: Tensor) -> Iterator[None]:
    """Project ``direction`` (any norm) out of the residual stream after every block, for the forward passes
    inside the block."""
    unit = (direction / direction.norm()).to(lm.device)

    def ablate(_layer: int, hidden: Tensor) -> Tensor:
        u = unit.to(hidden.dtype)
        return hidden - (hidden @ u)[..., None] * u

    with block_output_hooks(lm, list(range(lm.n_layers)), ablate):
        yield


def _embeddings(lm: LoadedModel) -> torch.nn.Module:
    module = lm.model.get_input_embeddings()
    if module is None:
        raise ValueError(f"{lm.name} exposes no input embeddings to perturb")
    return module


@contextmanager
def embedding_shift(lm: LoadedModel, delta: Tensor) -> Iterator[None]:
    """Add ``delta`` (``[batch, seq, d_model]``, matching the next forward pass) to the input embeddings."""
    handle = _embeddings(lm).register_forward_hook(lambda _m, _i, out: out + delta.to(out.dtype))
    try:
        yield
    finally:
        handle.remove()


def embedding_attack(lm: LoadedModel, loss: Callable[[Tensor], Tensor], shape: tuple[int, int], *,
                     epsilon: float, steps: int) -> Tensor:
    """The perturbation ``[batch, seq, d_model]`` that (approximately) maximises ``loss(delta)`` in the ball
    ``|delta|_inf <= epsilon * std(embedding matrix)``: ``steps`` of sign-gradient ascent with step size
    ``2.5 * radius / steps``, from a random start inside the ball. Detached."""
    weight = getattr(_embeddings(lm), "weight", None)
    scale = float(weight.detach().float().std()) if isinstance(weight, Tensor) else 1.0
    radius = epsilon * scale
    gen = torch.Generator().manual_seed(0)
    delta = ((torch.rand((*shape, lm.d_model), generator=gen) * 2 - 1) * radius).to(lm.device)
    if radius == 0 or steps == 0:
        return delta.detach()
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(delta), delta)
        delta = (delta.detach() + 2.5 * radius / steps * grad.sign()).clamp(-radius, radius)
    return delta.detach()
