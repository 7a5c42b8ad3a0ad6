"""One optimisation step of ``emovec.robust.optimize``: the directions added at their layers, the harmful
prompts read under the adversary, the loss terms of ``emovec.robust.losses`` weighted into a total, and the
same terms on the held-out prompts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch

from emovec.models.loading import LoadedModel
from emovec.robust import adversary, losses
from emovec.robust.config import RobustConfig
from emovec.robust.pairs import Pairs
from emovec.steer import differentiable_steering

CHUNK = 8  # prompts per forward pass when scoring many prompts at once (plain readings, validation)


@dataclass
class Setup:
    """What every step needs: each direction's layer and scale, the readout layer and its norm, the sources and
    the other emotions."""

    config: RobustConfig
    layers: list[int]
    scales: list[float]  # strength times each steered layer's mean norm
    readout: int
    norm: float
    source: torch.Tensor  # [k, d]
    others: torch.Tensor
    help_batch: int = 0  # helpful tasks per step (0: the helpful term is off)
    refusal: torch.Tensor | None = None  # the ablation adversary's refusal direction


def read_all(lm: LoadedModel, pairs: Pairs, readout: int) -> losses.Reading:
    """Readings of every prompt of ``pairs``, ``CHUNK`` prompts per forward pass."""
    return losses.Reading.cat([losses.read(lm, pairs.take(range(i, min(i + CHUNK, len(pairs)))).batch(lm), readout)
                               for i in range(0, len(pairs), CHUNK)])


def terms_of(s: Setup, direction: torch.Tensor, steered: dict[str, losses.Reading],
             plain: dict[str, losses.Reading]) -> dict[str, torch.Tensor]:
    """The loss terms from steered and plain readings keyed ``bad`` (harmful, under the adversary if any),
    ``good`` (benign), ``help`` (helpful tasks, when on) and ``bad_clean`` (harmful, no adversary)."""
    c = s.config
    sb, sg = steered["bad"], steered["good"]
    pb, pg = plain["bad"], plain["good"]
    units = torch.nn.functional.normalize(s.source, dim=-1)
    terms = {
        "safety": losses.preference(sb, pb, c.beta),
        "retain": losses.preference(sg, pg, c.beta) + losses.kl_next(pg, sg),
        "meaning": torch.stack([losses.meaning(d, src) for d, src in zip(direction, s.source, strict=True)]).mean(),
        "modularity": losses.side_effects(sg, pg, s.others, s.norm),
        "stability": losses.template_variance(steered.get("bad_clean", sb), pb, units, s.norm, c.strength),
    }
    if "help" in steered:
        sh, ph = steered["help"], plain["help"]
        terms["helpful"] = losses.answer_drop(sh, ph) + losses.kl_next(ph, sh)
    terms["total"] = (c.safety * terms["safety"] + c.retain * terms["retain"] + c.meaning * terms["meaning"]
                      + c.modularity * terms["modularity"] + c.stability * terms["stability"]
                      + c.helpful * terms.get("helpful", torch.zeros((), device=sb.seq_logp.device)))
    return terms


@contextmanager
def steering(lm: LoadedModel, s: Setup, direction: torch.Tensor) -> Iterator[None]:
    """Every direction ``[k, d]`` added at its layer (gradients flow to ``direction``)."""
    with ExitStack() as stack:
        for i, (at, scale) in enumerate(zip(s.layers, s.scales, strict=True)):
            stack.enter_context(differentiable_steering(lm, at, direction[i], scale))
        yield


def attacked(lm: LoadedModel, s: Setup, direction: torch.Tensor, batch: losses.PairBatch,
              plain: losses.Reading) -> losses.Reading:
    """The steered reading of harmful ``batch`` under the configured adversary (``emovec.robust.adversary``)."""
    c = s.config
    if c.adversary == "ablate_refusal" and s.refusal is not None:
        with steering(lm, s, direction), adversary.refusal_ablation(lm, s.refusal):
            return losses.read(lm, batch, s.readout)
    if c.adversary == "embedding":
        fixed = direction.detach()

        def safety(delta: torch.Tensor) -> torch.Tensor:
            with steering(lm, s, fixed), adversary.embedding_shift(lm, delta):
                return losses.preference(losses.read(lm, batch, s.readout), plain, c.beta)

        with torch.enable_grad():
            delta = adversary.embedding_attack(lm, safety, (int(batch.ids.shape[0]), int(batch.ids.shape[1])),
                                               epsilon=c.adv_epsilon, steps=c.adv_steps)
        with steering(lm, s, direction), adversary.embedding_shift(lm, delta):
            return losses.read(lm, batch, s.readout)
    with steering(lm, s, direction):
        return losses.read(lm, batch, s.readout)


def step_terms(lm: LoadedModel, s: Setup, direction: torch.nn.Parameter, batch: dict[str, Pairs],
                plain: dict[str, losses.Reading]) -> dict[str, torch.Tensor]:
    bad = batch["bad"].batch(lm)
    steered = {"bad": attacked(lm, s, direction, bad, plain["bad"])}
    with steering(lm, s, direction):
        steered["good"] = losses.read(lm, batch["good"].batch(lm), s.readout)
        if "help" in batch:
            steered["help"] = losses.read(lm, batch["help"].batch(lm), s.readout)
        if s.config.adversary != "none" and s.config.stability > 0:  # the template term without the attack
            steered["bad_clean"] = losses.read(lm, bad, s.readout)
    terms = terms_of(s, direction, steered, plain)
    terms["cos_source"] = 1.0 - terms["meaning"].detach()
    return terms


def validate(lm: LoadedModel, s: Setup, direction: torch.Tensor, val: dict[str, Pairs],
              plain: dict[str, losses.Reading]) -> dict[str, float]:
    """The loss terms of ``direction`` on the held-out prompts (``val_*``)."""
    with torch.no_grad(), steering(lm, s, direction):
        steered = {k: read_all(lm, val[k], s.readout) for k in plain}
        terms = terms_of(s, direction, steered, plain)
    out = {f"val_{k}": float(v) for k, v in terms.items() if k != "meaning"}
    if s.config.adversary != "none":  # the held-out safety loss under the attack as well: the worst case
        bad = val["bad"]
        parts = [(bad.take(range(i, min(i + CHUNK, len(bad)))), range(i, min(i + CHUNK, len(bad))))
                 for i in range(0, len(bad), CHUNK)]
        with torch.no_grad():
            worst = losses.Reading.cat([attacked(lm, s, direction, p.batch(lm), plain["bad"].rows(idx))
                                           for p, idx in parts])
        out["val_safety_attacked"] = float(losses.preference(worst, plain["bad"], s.config.beta))
        # the direction is chosen by its worst case: the validation total counts the attacked safety loss
        out["val_total"] += s.config.safety * (out["val_safety_attacked"] - out["val_safety"])
    return out
