"""The robustify study's preset and typed results (``emovec.studies.robustify.run`` runs it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from emovec.metrics import Estimate
from emovec.studies._kit import StudyError, StudyPreset, StudyResult


class RobustifyError(StudyError):
    """A robustify study that cannot run as asked."""


class RobustPreset(StudyPreset):
    """The arms, the optimisation's budget and the held-out suites' sizes."""

    source: str = "calm"
    strength: float = 0.1
    naive_multipliers: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0])
    steps: int = 20
    meaning_weights: list[float] = Field(default_factory=lambda: [0.3, 3.0])
    n_prompts: int = 64  # optimisation prompts per side (a quarter held out)
    val_every: int = 5
    patience: int = 2
    stability_arms: list[str] = Field(default_factory=lambda: ["metric-only"])
    # arms trained against the refusal-ablation adversary (emovec.robust.adversary), one per meaning weight
    adversarial_weights: list[float] = Field(default_factory=lambda: [3.0])
    attacked_eval: bool = True  # every arm's red-team refusal also under refusal-direction ablation
    refusal_control: bool = True
    prompt_control: bool = True  # an arm that asks for the source emotion in the system prompt, with no steering
    prompt_template: str = "You are feeling {emotion}. Let that feeling shape how you respond."
    redteam: int = 42
    benign: int = 24
    helpful: int = 24
    max_new_tokens: int = 48
    vector_topics: int = 4

    @field_validator("meaning_weights", "adversarial_weights")
    @classmethod
    def _weights(cls, v: list[float]) -> list[float]:
        if any(not w >= 0 for w in v):  # also catches NaN
            raise ValueError(f"meaning weights must be >= 0, got {v}")
        return v

    @field_validator("naive_multipliers")
    @classmethod
    def _multipliers(cls, v: list[float]) -> list[float]:
        if not v or any(not m > 0 for m in v):
            raise ValueError(f"naive strength multipliers must be > 0 (at least one), got {v}")
        return v

    @model_validator(mode="after")
    def _stability(self) -> RobustPreset:
        arms = {"metric-only", *(f"robust-{w:g}" for w in self.meaning_weights),
                *(f"robust-{w:g}-vs-ablation" for w in self.adversarial_weights)}
        unknown = sorted(set(self.stability_arms) - arms)
        if unknown:
            raise ValueError(f"stability_arms {unknown} are not optimised arms of this preset ({sorted(arms)})")
        return self


PRESETS = {"quick": RobustPreset(name="quick"),
           "full": RobustPreset(name="full", steps=80, meaning_weights=[0.1, 0.3, 1.0, 3.0, 10.0], n_prompts=128,
                                naive_multipliers=[0.25, 0.5, 1.0, 2.0, 4.0], redteam=210, benign=100, helpful=55,
                                max_new_tokens=96, vector_topics=20,
                                stability_arms=["metric-only", "robust-1", "robust-10"])}

ArmKind = Literal["plain", "naive", "random", "control", "optimised"]


class Stability(BaseModel):
    """The arm optimised again with another seed."""

    seed: int
    cos_between: float  # cosine between the two directions
    cos_moves: float  # cosine between their parts orthogonal to the source (what each added to it)
    cos_source_other: float  # the other seed's direction against the source


class ArmResult(BaseModel):
    arm: str
    kind: ArmKind
    strength: float
    meaning_weight: float | None
    cos_source: float | None  # None for plain (no direction)
    nearest: list[tuple[str, float]]
    refusal_redteam: Estimate
    refusal_benign: Estimate
    helpful: Estimate
    harmful_detail: float
    kl: Estimate  # mean next-token KL(unsteered || steered) on benign and helpful prompts, nats
    refusal_redteam_attacked: Estimate | None = None  # the same prompts with the refusal direction ablated
    adversary: str = "none"  # what the arm was trained against
    template_mean: Estimate | None = None  # the source readout's change per unit strength, over red-team prompts
    template_spread: Estimate | None = None  # the SD of that change's mean across red-team templates (framings)
    refusal_redteam_unseen: Estimate | None = None  # red-team refusal under framings no optimisation saw
    harmful_detail_interval: Estimate | None = None  # harmful detail with its bootstrap interval over replies
    perplexity: Estimate | None = None  # geometric mean perplexity of the replies under the unsteered model
    ms_per_token: float | None = None  # median decode latency of the arm's generation (ms)
    emotion: dict[str, float] | None = None  # nade's mean score per Plutchik emotion over the arm's replies
    emotion_shift: Estimate | None = None  # the source's Plutchik emotion: mean of (arm - plain) per prompt
    final_losses: dict[str, float] = Field(default_factory=dict)  # the chosen step's training and held-out losses
    start_val: dict[str, float] = Field(default_factory=dict)  # the source vector's held-out losses
    best_step: int | None = None
    stopped_early: bool = False
    stability: Stability | None = None


class RobustifyResult(StudyResult):
    schema_version: int = 2
    model: str
    source: str
    layer: int
    strength: float
    preset: RobustPreset
    arms: list[ArmResult]
    emotion_judge: str = ""  # what judged the replies' emotion, or why it was skipped
    refusal_fit_overlap: int = 0  # red-team requests evaluated that were also used to fit the refusal direction
    answer: str = ""
