"""Steering: add, clamp or ablate directions in the residual stream while the model runs.

Strengths are fractions of the mean residual-stream norm at the steered layer (the paper's convention;
the norm comes from the vector set). ``steering(lm, spec)`` is a context manager: inside it every forward
pass of the model, ``generate`` with its KV cache included, is steered; on exit the hooks are removed, also
after an exception. Model modules are never replaced.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from emovec.errors import EmovecError, IncompatibleVectorsError
from emovec.metrics import readout
from emovec.models.loading import LoadedModel
from emovec.models.sites import backbone_pre_hook, block_output_hooks, cache_offset
from emovec.vectors.vector_set import VectorSet

Op = Literal["add", "clamp", "ablate"]
Scope = Literal["all", "prompt", "generated"]


class SteeringError(EmovecError, ValueError):
    """An invalid or conflicting steering specification."""


@dataclass(frozen=True)
class SteerTerm:
    """One direction to steer with.

    Attributes:
        direction: a name in the vector set, or a raw ``[d_model]`` tensor.
        strength: for ``add``, the multiple of the layer's mean residual norm added along the unit direction
            (0.05 = 5% of the norm); for ``clamp``, the target projection in the same unit. A sequence gives
            one strength per batch row.
        op: ``add``, ``clamp`` (set the component to ``strength``) or ``ablate`` (remove the component).
    """

    direction: str | Tensor
    strength: float | Sequence[float] = 0.0
    op: Op = "add"

    @property
    def label(self) -> str:
        return self.direction if isinstance(self.direction, str) else "<raw vector>"


@dataclass(frozen=True)
class Condition:
    """Steer only at tokens whose projection on ``direction`` at ``layer`` crosses ``threshold``.

    The projection is measured from the vector set's centre, in units of the layer's mean residual norm, so
    thresholds read like strengths. ``above=False`` fires below the threshold instead.
    """

    direction: str | Tensor
    layer: int
    threshold: float
    above: bool = True


@dataclass(frozen=True)
class SteeringSpec:
    """What to steer, where, and when.

    Attributes:
        terms: the directions and their strengths.
        layers: steered layers; a mapping gives each layer its own multiplier of the strengths.
        scope: ``all`` tokens, only the ``prompt``, or only ``generated`` tokens.
        start: steer only positions >= ``start`` (positions count the padded prompt from 0).
        condition: gate the steering on a monitored projection.

    Example:
        >>> spec = SteeringSpec([SteerTerm("desperate", 0.05), SteerTerm("calm", -0.05)], layers=[12])
        >>> with steering(lm, spec, vectors):
        ...     out = lm.model.generate(**batch)
    """

    terms: Sequence[SteerTerm]
    layers: Sequence[int] | Mapping[int, float]
    scope: Scope = "all"
    start: int = 0
    condition: Condition | None = None

    def layer_weights(self) -> dict[int, float]:
        if isinstance(self.layers, Mapping):
            return {int(k): float(v) for k, v in self.layers.items()}
        return {int(layer): 1.0 for layer in self.layers}


def mixed_spec(per_row: Sequence[tuple[str | None, float]], layers: Sequence[int],
               scope: Scope = "all") -> SteeringSpec | None:
    """One specification for a batch whose rows steer different directions: ``per_row`` gives each row's
    (direction name or ``None`` for no steering, strength); every direction becomes a term with zero strength
    on the other rows (adding zero leaves a row exactly unsteered). ``None`` when no row steers.

    Example:
        >>> spec = mixed_spec([("calm", 0.05), (None, 0.0), ("desperate", 0.05)], layers=[12])
    """
    directions = sorted({d for d, _ in per_row if d is not None})
    if not directions:
        return None
    terms = [SteerTerm(d, [s if name == d else 0.0 for name, s in per_row]) for d in directions]
    return SteeringSpec(terms, layers=list(layers), scope=scope)


@dataclass
class _Resolved:
    """A term made concrete for one layer: unit direction, strengths per row (in residual units), op."""

    unit: Tensor
    strength: Tensor  # [rows] or [1]
    op: Op


@dataclass
class _Positions:
    offset: int = 0
    prompt_len: int = 0
    gate: dict[str, Tensor] = field(default_factory=dict)


def _unit(vectors: VectorSet | None, direction: str | Tensor, layer: int, d_model: int) -> Tensor:
    if isinstance(direction, str):
        if vectors is None:
            raise SteeringError(f"direction {direction!r} is a name, but no vector set was given")
        vec = vectors.vector(direction, layer)
    else:
        vec = direction.detach().float().flatten()
    if vec.shape[-1] != d_model:
        raise IncompatibleVectorsError(f"a steering vector has width {vec.shape[-1]}, the model has {d_model}")
    norm = vec.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise SteeringError("a steering direction is zero or not finite")
    return vec / norm


def _mean_norm(vectors: VectorSet | None, layer: int) -> float:
    if vectors is None:
        raise SteeringError("strengths are fractions of the mean residual norm; give the vector set that has it")
    return float(vectors.mean_norm[vectors.layer_index(layer)])


def _strengths(term: SteerTerm) -> list[float]:
    values = [float(term.strength)] if isinstance(term.strength, int | float) else [float(x) for x in term.strength]
    for value in values:
        if not math.isfinite(value):
            raise SteeringError(f"strength for {term.label} is {value}; give a finite number")
    if not values:
        raise SteeringError(f"strength for {term.label} is an empty list")
    return values


def _check_conflicts(terms: Sequence[SteerTerm]) -> None:
    seen: dict[str, Op] = {}
    for term in terms:
        if not isinstance(term.direction, str):
            continue
        previous = seen.get(term.direction)
        if previous is not None and (previous != "add" or term.op != "add"):
            raise SteeringError(
                f"{term.direction!r} is both {previous} and {term.op} in one specification; combine them into one term"
            )
        seen[term.direction] = term.op


def resolve(lm: LoadedModel, spec: SteeringSpec, vectors: VectorSet | None) -> dict[int, list[_Resolved]]:
    """Check a specification against the model and vector set; return each layer's concrete terms."""
    if not spec.terms:
        raise SteeringError("a steering specification needs at least one term")
    if vectors is not None:
        vectors.check_compatible(lm)
    _check_conflicts(spec.terms)
    weights = spec.layer_weights()
    layers = lm.check_layers(list(weights))
    out: dict[int, list[_Resolved]] = {}
    for layer in layers:
        norm = _mean_norm(vectors, layer) if any(t.op != "ablate" for t in spec.terms) else 1.0
        out[layer] = [
            _Resolved(
                unit=_unit(vectors, t.direction, layer, lm.d_model).to(lm.device, lm.dtype),
                strength=torch.tensor(_strengths(t), device=lm.device, dtype=lm.dtype) * norm * weights[layer],
                op=t.op,
            )
            for t in spec.terms
        ]
    if spec.condition is not None:
        cond_layer = lm.check_layers([spec.condition.layer])[0]
        if cond_layer > min(layers):
            raise SteeringError(
                f"the condition is read at layer {cond_layer}, after the first steered layer {min(layers)}; "
                "read it at or before the layers it gates"
            )
    return out


def _row_values(strength: Tensor, rows: int) -> Tensor:
    if strength.numel() == 1:
        return strength.expand(rows)
    if strength.numel() != rows:
        raise SteeringError(f"{strength.numel()} per-row strengths for a batch of {rows} rows")
    return strength


def _scope_mask(spec: SteeringSpec, pos: _Positions, seq: int, device: torch.device) -> Tensor:
    positions = torch.arange(pos.offset, pos.offset + seq, device=device)
    mask = positions >= spec.start
    if spec.scope == "prompt":
        mask &= positions < pos.prompt_len
    elif spec.scope == "generated":
        mask &= positions >= pos.prompt_len
    return mask


def _apply(h: Tensor, terms: list[_Resolved], mask: Tensor) -> Tensor:
    """Steer ``h`` ``[b, s, d]`` at the positions where ``mask`` ``[b, s]`` is true."""
    rows = h.shape[0]
    m = mask.to(h.dtype)[..., None]
    adds = [t for t in terms if t.op == "add"]
    out = h
    if adds:
        # Adding an exact zero leaves h bit-identical, so strength 0 needs no special case (and no device sync).
        delta = sum(_row_values(t.strength, rows)[:, None, None] * t.unit for t in adds)
        out = h + m * delta
    for term in terms:
        if term.op == "add":
            continue
        proj = out @ term.unit  # [b, s]
        target = _row_values(term.strength, rows)[:, None] if term.op == "clamp" else torch.zeros_like(proj)
        out = out + m * ((target - proj)[..., None] * term.unit)
    return out


@contextmanager
def steering(lm: LoadedModel, spec: SteeringSpec, vectors: VectorSet | None = None) -> Iterator[None]:
    """Steer every forward pass of ``lm`` inside the ``with`` block.

    Args:
        lm: the model.
        spec: what to steer (``SteeringSpec``).
        vectors: the vector set that names directions and gives each layer's mean residual norm.

    Example:
        >>> spec = SteeringSpec([SteerTerm("calm", 0.05)], layers=[vs.default_layer], scope="generated")
        >>> with steering(lm, spec, vs):
        ...     ids = lm.model.generate(**enc, max_new_tokens=40)
    """
    by_layer = resolve(lm, spec, vectors)
    pos = _Positions()
    cond = spec.condition
    cond_layer = lm.check_layers([cond.layer])[0] if cond is not None else -1
    cond_unit: Tensor | None = None
    cond_center: Tensor | float = 0.0
    cond_norm = 1.0
    if cond is not None:
        cond_unit = _unit(vectors, cond.direction, cond_layer, lm.d_model).to(lm.device, lm.dtype)
        if vectors is not None and vectors.center is not None and cond_layer in vectors.layers:
            cond_center = vectors.center[vectors.layer_index(cond_layer)].to(lm.device, lm.dtype)
        cond_norm = _mean_norm(vectors, cond_layer)

    def before_forward(kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids")
        inputs = ids if ids is not None else kwargs.get("inputs_embeds")
        if inputs is None:
            raise SteeringError("the model was called without input_ids or inputs_embeds")
        seq = int(inputs.shape[1])
        offset = cache_offset(kwargs)
        if offset == 0:
            pos.prompt_len = seq
        pos.offset = offset
        pos.gate.clear()

    def on_block(layer: int, hidden: Tensor) -> Tensor | None:
        mask = _scope_mask(spec, pos, hidden.shape[1], hidden.device)[None].expand(hidden.shape[0], -1)
        if cond is not None and cond_unit is not None:
            if layer == cond_layer:
                score = readout(hidden, cond_unit, cond_center, cond_norm)
                pos.gate["g"] = score > cond.threshold if cond.above else score < cond.threshold
            mask = mask & pos.gate.get("g", torch.zeros_like(mask))
        if layer not in by_layer:
            return None
        return _apply(hidden, by_layer[layer], mask)

    hooked = sorted(set(by_layer) | ({cond_layer} if cond is not None else set()))
    with ExitStack() as stack:
        stack.enter_context(backbone_pre_hook(lm, before_forward))
        stack.enter_context(block_output_hooks(lm, hooked, on_block))
        yield


@contextmanager
def differentiable_steering(lm: LoadedModel, layer: int, direction: Tensor, scale: float) -> Iterator[None]:
    """Add ``scale * direction / |direction|`` to the residual stream after block ``layer`` at every position,
    keeping the autograd graph so the direction itself can be optimised through the frozen model
    (``emovec.robust``). ``scale`` is in residual-stream units (a strength times the layer's mean norm).

    Example:
        >>> v = torch.nn.Parameter(vs.vector("calm", 14).clone())
        >>> with differentiable_steering(lm, 14, v, 0.1 * float(vs.mean_norm[vs.layer_index(14)])):
        ...     loss = lm.model(**batch).logits.sum()
    """
    chosen = lm.check_layers([layer])[0]
    if direction.shape[-1] != lm.d_model:
        raise IncompatibleVectorsError(f"a steering vector has width {direction.shape[-1]}, the model has {lm.d_model}")

    def on_block(_layer: int, hidden: Tensor) -> Tensor:
        return hidden + scale * (direction / direction.norm()).to(hidden.dtype)

    with block_output_hooks(lm, [chosen], on_block):
        yield


@contextmanager
def masked_steering(lm: LoadedModel, layer: int, direction: Tensor, scale: float, mask: Tensor) -> Iterator[None]:
    """Add ``scale * unit(direction)`` after block ``layer`` only where ``mask`` (``[batch, seq]``, the padded
    positions of the next full forward pass) is true: steering on chosen tokens, e.g. one activity's words.

    Example:
        >>> with masked_steering(lm, 14, vs.vector("happy", 14), 0.1 * norm, mask):
        ...     logits = lm.model(input_ids=ids, attention_mask=attn).logits
    """
    chosen = lm.check_layers([layer])[0]
    unit = direction.detach().float() / direction.detach().float().norm()

    def on_block(_layer: int, hidden: Tensor) -> Tensor:
        if hidden.shape[:2] != mask.shape:
            raise SteeringError(f"the steering mask is {tuple(mask.shape)} but the batch is {tuple(hidden.shape[:2])}")
        m = mask.to(hidden.device, hidden.dtype)[..., None]
        return hidden + scale * m * unit.to(hidden.device, hidden.dtype)

    with block_output_hooks(lm, [chosen], on_block):
        yield
