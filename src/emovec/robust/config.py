"""The direction optimiser's settings (``emovec.robust.optimize``) and its error."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from emovec.errors import EmovecError


class RobustError(EmovecError, ValueError):
    """An optimisation that cannot start, resume or go on."""


class RobustConfig(BaseModel):
    source: str
    out: Path
    layer: int | None = None
    also: list[str] = Field(default_factory=list, max_length=3)  # more source emotions: k = 1 + len(also) directions
    layers: list[int] | None = None  # one layer per direction (default: ``layer`` for all)
    strength: float = Field(default=0.1, gt=0)
    steps: int = Field(default=30, ge=1)
    lr: float = Field(default=0.05, gt=0)
    batch: int = Field(default=4, ge=1)
    beta: float = Field(default=1.0, gt=0)
    safety: float = Field(default=1.0, ge=0)
    retain: float = Field(default=1.0, ge=0)
    meaning: float = Field(default=1.0, ge=0)
    modularity: float = Field(default=1.0, ge=0)
    helpful: float = Field(default=1.0, ge=0)  # keep helpful tasks' answers (emovec.robust.losses.answer_drop)
    stability: float = Field(default=1.0, ge=0)  # same source readout change across templates
    readout_offset: int = Field(default=4, ge=0)  # side effects are read this many layers after the steered one
    save_every: int = Field(default=5, ge=1)
    seed: int = 0
    val_fraction: float = Field(default=0.25, ge=0, le=0.5)  # share of the prompts held out for validation
    val_every: int = Field(default=5, ge=1)
    patience: int = Field(default=0, ge=0)  # validations without improvement before stopping (0: never)
    own_replies: bool = True  # the model's own compliant replies as the dispreferred harmful continuations
    reply_tokens: int = Field(default=24, ge=1)
    adversary: Literal["none", "ablate_refusal", "embedding"] = "none"  # see emovec.robust.adversary
    adv_epsilon: float = Field(default=0.05, ge=0)  # embedding attack: radius, in embedding standard deviations
    adv_steps: int = Field(default=2, ge=0)  # embedding attack: ascent steps per optimisation step

    @model_validator(mode="after")
    def _some_weight(self) -> RobustConfig:
        if self.safety + self.retain + self.meaning + self.modularity + self.helpful + self.stability == 0:
            raise ValueError("every loss weight is 0: the loss is undefined; give at least one a positive weight")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"the source emotions must differ, got {self.sources}")
        if self.layers is not None and len(self.layers) != len(self.sources):
            raise ValueError(f"{len(self.layers)} layers for {len(self.sources)} directions ({self.sources}): give one "
                             "layer per direction")
        return self

    @property
    def sources(self) -> list[str]:
        """The source emotion of every direction, in order (``source`` first)."""
        return [self.source, *self.also]
