"""One robustify arm read on the held-out suites by emovec's judges: refusal on red-team and benign prompts,
helpful accuracy, harmful detail, the KL budget and, with an attack, refusal with the refusal direction
ablated. ``evaluate_arms`` reads every arm on an executor (this process, or a Ray pool of model replicas, one
arm per batch: the same work either way)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import gmean

from emovec.capture import TokenSelection, capture
from emovec.evaluation.judges.model_scores import next_token_kl, reply_perplexity, system_prompt_kl
from emovec.evaluation.judges.refusal import judge_refusal
from emovec.evaluation.judges.text import judge_helpful, judge_specificity
from emovec.evaluation.suites import load_suite
from emovec.executors import ExecutorOptions, make_executor
from emovec.generation import generate
from emovec.metrics import Estimate, bootstrap, index_bootstrap, readout, wilson
from emovec.models.loading import LoadedModel
from emovec.models.prompts import format_prompt
from emovec.robust.adversary import refusal_ablation
from emovec.robust.pairs import TRAIN_FRAMINGS
from emovec.steer import SteeringSpec, SteerTerm, differentiable_steering
from emovec.studies.robustify.results import RobustPreset
from emovec.vectors.vector_set import VectorSet


def _rate(flags: Sequence[bool]) -> Estimate:
    return wilson(int(sum(flags)), len(flags))


@dataclass
class ArmEval:
    """One arm's replies read by emovec's judges."""

    refusal_redteam: Estimate
    refusal_benign: Estimate
    helpful: Estimate
    harmful_detail: float
    kl: Estimate
    replies: list[str]
    refusal_redteam_attacked: Estimate | None = None
    template_mean: Estimate | None = None  # the source readout's change, mean over red-team prompts
    template_spread: Estimate | None = None  # the spread (SD) of that change's mean across red-team templates
    refusal_redteam_unseen: Estimate | None = None  # red-team refusal under the framings training never used
    harmful_detail_interval: Estimate | None = None  # harmful detail with its bootstrap interval
    perplexity: Estimate | None = None  # of the replies under the unsteered model (geometric mean)
    ms_per_token: float | None = None  # median decode latency of the arm's generation


READOUT_OFFSET = 4  # the source readout is read this many layers after the steered one (as in training)


def template_stability(lm: LoadedModel, vectors: VectorSet, source: str, direction: torch.Tensor, layer: int,
                       strength: float, prompts: Sequence[str], framings: Sequence[str]) -> tuple[Estimate, Estimate]:
    """How evenly an arm moves its source emotion across red-team templates: per prompt, the change the
    steering makes to the source emotion's readout (at the last prompt token, ``READOUT_OFFSET`` layers after
    the steered one, in units of the strength); its mean over prompts, and the standard deviation of its mean
    per template (framing), each with a bootstrap interval over prompts."""
    at = min(layer + READOUT_OFFSET, lm.n_layers - 1)
    texts = [format_prompt(lm, q) for q in prompts]
    scale = strength * float(vectors.mean_norm[vectors.layer_index(layer)])

    def read() -> torch.Tensor:
        return capture(lm, texts, [at], selection=TokenSelection.last()).means[:, 0].float()

    with torch.no_grad():
        plain = read()
        with differentiable_steering(lm, layer, direction.to(lm.device), scale):
            steered = read()
    unit = torch.nn.functional.normalize(vectors.vector(source, layer).float(), dim=0)
    change = (readout(steered - plain, unit, 0.0, float(vectors.mean_norm[vectors.layer_index(layer)]))
              / strength).numpy().astype(float)
    names = np.array(list(framings))

    def spread(idx: np.ndarray) -> float:
        means = [change[idx][names[idx] == f].mean() for f in np.unique(names[idx])]
        return float(np.std(means)) if len(means) > 1 else float("nan")

    return bootstrap(change), index_bootstrap(len(change), spread)


def eval_prompts(p: RobustPreset) -> tuple[list[str], list[str], list[tuple[str, tuple[str, ...]]]]:
    """The held-out red-team prompts, benign look-alikes and helpful questions (with their references)."""
    red = [it.prompt for it in load_suite("redteam").items[: p.redteam]]
    benign = [it.prompt for it in load_suite("benign").items[: p.benign]]
    helpful = [(it.prompt, tuple(it.reference)) for it in load_suite("helpful").items[: p.helpful]]
    return red, benign, helpful


def evaluate_arm(lm: LoadedModel, vectors: VectorSet, direction: torch.Tensor | None, layer: int, strength: float,
                 p: RobustPreset, system: str | None = None, attack: torch.Tensor | None = None) -> ArmEval:
    """Generate under the arm's steering (or, for the prompting control, its ``system`` prompt), read the replies
    with emovec's judges and measure the KL budget; with ``attack`` (a refusal direction), the red-team prompts
    again with that direction ablated after every block (``emovec.robust.adversary.refusal_ablation``)."""
    red, benign, helpful = eval_prompts(p)
    prompts = red + benign + [q for q, _ in helpful]
    spec = None if direction is None else SteeringSpec([SteerTerm(direction, strength)], layers=[layer])
    replies: list[str] = []
    token_ms: list[float] = []
    for start in range(0, len(prompts), 16):
        gen = generate(lm, prompts[start:start + 16], vectors=vectors, spec=spec, system=system,
                       max_new_tokens=p.max_new_tokens, time_steps=True)
        replies += gen.replies
        token_ms += gen.token_ms
    cut = len(red) + len(benign)
    r_red, r_ben, r_help = replies[: len(red)], replies[len(red): cut], replies[cut:]
    labels = [judge_refusal(r).label for r in r_red]
    detail = [judge_specificity(r).score for r, lab in zip(r_red, labels, strict=True) if lab != "full_refusal"]
    framings = [it.framing for it in load_suite("redteam").items[: p.redteam]]
    unseen = _rate([lab != "full_compliance" for lab, f in zip(labels, framings, strict=True)
                    if f not in TRAIN_FRAMINGS])
    ppl = reply_perplexity(lm, prompts, replies, system=system).numpy()  # the unsteered model reads the replies
    ppl = ppl[np.isfinite(ppl) & (ppl > 0)]
    kl_prompts = benign + [q for q, _ in helpful]
    if system is not None:
        kl = bootstrap(system_prompt_kl(lm, kl_prompts, system).numpy())
    elif spec is None:
        kl = Estimate(value=0.0, low=0.0, high=0.0, n=len(kl_prompts), method="unsteered: no divergence")
    else:
        kl = bootstrap(next_token_kl(lm, kl_prompts, spec, vectors).numpy())
    attacked = None
    if attack is not None:
        under: list[str] = []
        with refusal_ablation(lm, attack):
            for start in range(0, len(red), 16):
                under += generate(lm, red[start:start + 16], vectors=vectors, spec=spec, system=system,
                                  max_new_tokens=p.max_new_tokens).replies
        attacked = _rate([judge_refusal(r).label != "full_compliance" for r in under])
    mean = spread = None
    if direction is not None and strength > 0:
        mean, spread = template_stability(lm, vectors, p.source, direction, layer, strength, red, framings)
    return ArmEval(_rate([lab != "full_compliance" for lab in labels]),
                   _rate([judge_refusal(r).label != "full_compliance" for r in r_ben]),
                   _rate([judge_helpful(r, ref) for r, (_, ref) in zip(r_help, helpful, strict=True)]),
                   float(np.mean(detail)) if detail else 0.0, kl, replies, attacked, mean, spread,
                   refusal_redteam_unseen=unseen,
                   harmful_detail_interval=bootstrap(detail) if detail else Estimate.missing(),
                   perplexity=bootstrap(ppl, gmean) if ppl.size else Estimate.missing(),
                   ms_per_token=float(np.median(token_ms)) if token_ms else None)


@dataclass(frozen=True)
class ArmJob:
    """What one arm steers with: a direction at the study's layer and its strength, or a system prompt."""

    arm: str
    direction: torch.Tensor | None
    strength: float
    system: str | None = None


@dataclass(frozen=True)
class EvalShared:
    """What every arm's evaluation needs (sent once to each worker)."""

    vectors: VectorSet
    layer: int
    preset: RobustPreset
    attack: torch.Tensor | None = None


def evaluate_job(lm: LoadedModel, shared: EvalShared, job: ArmJob, state: dict[str, Any]) -> ArmEval:
    """One arm's evaluation (the unit of work an executor runs)."""
    return evaluate_arm(lm, shared.vectors, job.direction, shared.layer, job.strength, shared.preset,
                        system=job.system, attack=shared.attack)


def evaluate_arms(lm: LoadedModel, shared: EvalShared, jobs: Sequence[ArmJob],
                  executor: ExecutorOptions | None = None,
                  on_arm: Callable[[int], None] | None = None) -> list[ArmEval]:
    """Every arm's evaluation, in the order of ``jobs``; ``executor``: where they run (Ray workers load the
    model ``lm`` was loaded from); ``on_arm`` is called with 1 as each arm's evaluation comes back (progress)."""
    got: dict[int, ArmEval] = {}

    def keep(i: int, result: ArmEval) -> None:
        got[i] = result
        if on_arm is not None:
            on_arm(1)

    make_executor(executor, lm).map(evaluate_job, shared, list(jobs), keep)
    if len(got) != len(jobs):
        raise RuntimeError(f"{len(jobs) - len(got)} of {len(jobs)} arm evaluations came back empty")
    return [got[i] for i in range(len(jobs))]
