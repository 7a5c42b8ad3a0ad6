"""Monitoring: per-token projections of the residual stream onto emotion (or any concept) vectors.

Scores are read in the forward passes the model is already making (``generate`` included): no second
pass. A token's score for a vector at a layer is ``(h - centre) . unit(v) / mean_norm``: the projection of
the residual stream, measured from the vector set's centre, in units of that layer's mean residual norm
(the unit steering strengths use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from emovec.metrics import readout_weights
from emovec.models.loading import LoadedModel
from emovec.models.sites import backbone_pre_hook, block_output_hooks, cache_offset
from emovec.vectors.vector_set import VectorSet

# on_step(scores [rows, new_positions, n_layers, n_vectors], first_position)
StepCallback = Callable[[Tensor, int], None]


@dataclass
class TokenScore:
    """One row of the tidy table."""

    row: int
    token_index: int
    token: str
    layer: int
    name: str
    score: float


@dataclass
class MonitorTrace:
    """Scores recorded inside a ``monitoring`` block.

    Attributes:
        names: monitored vector names.
        layers: monitored layers.
        steps: one ``[rows, positions, n_layers, n_vectors]`` tensor per forward pass, on the CPU.
    """

    names: list[str]
    layers: list[int]
    steps: list[Tensor] = field(default_factory=list)

    @property
    def scores(self) -> Tensor:
        """``[rows, positions, n_layers, n_vectors]`` over every forward pass so far (padded positions too)."""
        if not self.steps:
            return torch.empty(0, 0, len(self.layers), len(self.names))
        return torch.cat(self.steps, dim=1)

    def table(self, token_ids: Tensor, tokenizer: Any, mask: Tensor | None = None,
              names: Sequence[str] | None = None) -> list[TokenScore]:
        """A tidy table (row, token index, token text, layer, name, score) of the real (unpadded) tokens.

        Args:
            token_ids: ``[rows, positions]`` ids aligned with the scores (e.g. ``generate``'s output; its last
                token was never fed back, so it has no score and is left out).
            tokenizer: to turn ids into token text.
            mask: ``[rows, positions]`` 1 for real tokens; default: every position.
            names: a subset of names to list.
        """
        scores = self.scores
        n_pos = scores.shape[1]
        keep = [self.names.index(n) for n in names] if names is not None else list(range(len(self.names)))
        rows: list[TokenScore] = []
        for r in range(scores.shape[0]):
            tokens = tokenizer.convert_ids_to_tokens(token_ids[r, :n_pos].tolist())
            index = 0
            for p in range(n_pos):
                if mask is not None and not bool(mask[r, p]):
                    continue
                for j, layer in enumerate(self.layers):
                    for k in keep:
                        rows.append(TokenScore(r, index, tokens[p], layer, self.names[k], float(scores[r, p, j, k])))
                index += 1
        return rows

    def summary(self, mask: Tensor | None = None, top: int = 5) -> list[dict[str, Any]]:
        """Per row: mean and max score of each vector over real tokens (first layer), and the top vectors.

        A row with no real tokens (an empty reply) gets an empty ``top`` and empty ``mean``/``max``."""
        scores = self.scores[..., 0, :]  # [rows, positions, n_vectors]
        out: list[dict[str, Any]] = []
        for r in range(scores.shape[0]):
            s = scores[r] if mask is None else scores[r][mask[r, : scores.shape[1]].bool()]
            if s.shape[0] == 0:
                out.append({"row": r, "layer": self.layers[0], "top": [], "mean": {}, "max": {}})
                continue
            mean, peak = s.mean(0), s.max(0).values
            order = mean.argsort(descending=True)[:top].tolist()
            out.append({"row": r, "layer": self.layers[0], "top": [(self.names[i], float(mean[i])) for i in order],
                        "mean": dict(zip(self.names, mean.tolist(), strict=True)),
                        "max": dict(zip(self.names, peak.tolist(), strict=True))})
        return out


@contextmanager
def monitoring(
    lm: LoadedModel,
    vectors: VectorSet,
    names: Sequence[str] | None = None,
    layers: Sequence[int] | None = None,
    on_step: StepCallback | None = None,
) -> Iterator[MonitorTrace]:
    """Record per-token scores on ``vectors`` during every forward pass inside the block.

    Args:
        lm: the model.
        vectors: the vector set (its centre and mean norms set the score's origin and unit).
        names: the vectors to read (default: all).
        layers: the layers to read (default: the set's default layer).
        on_step: called after each forward pass with its new scores, for live use.

    Example:
        >>> with monitoring(lm, vs) as trace:
        ...     out = lm.model.generate(**enc, max_new_tokens=30)
        >>> rows = trace.table(out, lm.tokenizer)
    """
    vectors.check_compatible(lm)
    chosen = [vectors.layer_index(layer) for layer in (layers if layers is not None else [vectors.default_layer])]
    model_layers = [vectors.layers[j] for j in chosen]
    lm.check_layers(model_layers)
    cols = [vectors.index(n) for n in names] if names is not None else list(range(len(vectors.names)))
    trace = MonitorTrace(names=[vectors.names[c] for c in cols], layers=model_layers)
    # Scores are measured from the set's centre, in units of the layer's mean norm: ``hidden @ w - offset``.
    weights: dict[int, tuple[Tensor, Tensor | float]] = {}
    for j, layer in zip(chosen, model_layers, strict=True):
        units = torch.nn.functional.normalize(vectors.directions[j][cols], dim=-1).to(lm.device, lm.dtype)
        centre = vectors.center[j].to(lm.device, lm.dtype) if vectors.center is not None else 0.0
        weights[layer] = readout_weights(units, centre, float(vectors.mean_norm[j]))
    pending: dict[int, Tensor] = {}
    state = {"position": 0}

    def before_forward(kwargs: dict[str, Any]) -> None:
        state["position"] = cache_offset(kwargs)
        if state["position"] == 0 and trace.steps:
            trace.steps.clear()  # a new sequence starts

    def on_block(layer: int, hidden: Tensor) -> None:
        weight, offset = weights[layer]
        pending[layer] = hidden @ weight - offset
        if len(pending) == len(model_layers):
            step = torch.stack([pending[m] for m in model_layers], dim=2).float().cpu()
            pending.clear()
            trace.steps.append(step)
            if on_step is not None:
                on_step(step, state["position"])

    with ExitStack() as stack:
        stack.enter_context(backbone_pre_hook(lm, before_forward))
        stack.enter_context(block_output_hooks(lm, model_layers, on_block))
        yield trace
