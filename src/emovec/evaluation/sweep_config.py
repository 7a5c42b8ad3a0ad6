"""The YAML description of a sweep: conditions x strengths x layers x suites x seeds.

Example ``sweep.yaml``::

    model: smollm2-135m-instruct
    vectors: runs/demo/vectors
    out: runs/sweep
    conditions: [none, emotion:desperate, emotion:calm, prompt:calm, random:0, concept:refusal]
    strengths: [-0.1, -0.05, 0.05, 0.1]
    layers: [[10]]
    suites: [paired, redteam, helpful]
    limit: 20
    refusal_judge: learned

Condition kinds: ``none`` (no steering), ``emotion:<name>`` (a vector of the set), ``concept:<name>``
(``refusal``, ``harm_salience``, ``caution``; see ``emovec.evaluation.controls``), ``random:<seed>`` (a random
direction of the same norm), ``prompt:<emotion>`` (the emotion asked for in the system prompt, no steering).
``none`` and ``prompt`` run once (strength 0); the others once per strength and layer set.

``refusal_judge`` chooses what fills each row's ``refusal_label`` and ``refusal_score``: ``learned`` (the default:
the learned judge reading the prompt and its harm label, ``emovec.evaluation.judges.refusal_learned``) or ``rules``
(``emovec.evaluation.judges.refusal``, which may suit small models' replies better; see
``emovec/data/judges/README.md``). Every row keeps the rules' label too (``emovec.evaluation.sweep_refusal``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from emovec.errors import EmovecError
from emovec.evaluation.suite_items import CONTROL_CONCEPTS
from emovec.evaluation.suites import BUILTIN_SUITES, PUBLIC_SUITES
from emovec.executors import ExecutorOptions

CondKind = Literal["none", "emotion", "concept", "random", "prompt"]
STEERED: tuple[str, ...] = ("emotion", "concept", "random")
RefusalJudgeName = Literal["learned", "rules"]
REFUSAL_JUDGES: tuple[str, ...] = ("learned", "rules")


class SweepConfigError(EmovecError, ValueError):
    """A sweep configuration with unknown keys or bad values."""


class ConditionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CondKind
    name: str = ""

    @property
    def label(self) -> str:
        return self.kind if self.kind == "none" else f"{self.kind}:{self.name}"

    @property
    def steered(self) -> bool:
        return self.kind in STEERED

    @property
    def direction(self) -> str:
        """The name of this condition's direction in the sweep's vector set."""
        return self.name if self.kind == "emotion" else f"{self.kind}:{self.name}"


def parse_condition(value: Any) -> ConditionSpec:
    if isinstance(value, ConditionSpec):
        return value
    if isinstance(value, dict):
        return ConditionSpec(**value)
    text = str(value).strip()
    if text == "none":
        return ConditionSpec(kind="none")
    kind, sep, name = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"condition {text!r} must be 'none' or '<kind>:<name>' with kind one of "
                         "emotion, concept, random, prompt (e.g. 'emotion:calm', 'random:0')")
    if kind not in ("emotion", "concept", "random", "prompt"):
        raise ValueError(f"condition kind {kind!r} is not one of none, emotion, concept, random, prompt")
    if kind == "random" and not name.strip().isdigit():
        raise ValueError(f"random condition {text!r} needs an integer seed, e.g. 'random:0'")
    if kind == "concept" and name.strip() not in CONTROL_CONCEPTS:
        raise ValueError(f"concept {name!r} is not one of {', '.join(CONTROL_CONCEPTS)}")
    return ConditionSpec(kind=kind, name=name.strip())  # type: ignore[arg-type]


class SweepConfig(BaseModel):
    """A sweep. Every key is checked; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    model: str = "smollm2-135m-instruct"
    vectors: str
    out: str
    conditions: list[ConditionSpec] = Field(min_length=1)
    strengths: list[float] = Field(default_factory=lambda: [-0.1, -0.05, 0.05, 0.1], min_length=1)
    layers: list[list[int]] | None = None
    suites: list[str] = Field(default_factory=lambda: ["paired", "redteam", "helpful"], min_length=1)
    limit: int | None = Field(default=20, ge=1)
    limits: dict[str, int] = Field(default_factory=dict)  # per-suite limits, overriding ``limit``
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    max_new_tokens: int = Field(default=48, ge=1, le=4096)
    batch_size: int = Field(default=16, ge=1, le=1024)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    scope: Literal["all", "generated"] = "all"
    monitor: bool = True
    kl: bool = True
    logodds: bool = True
    perplexity: bool = True
    prompt_template: str = "You are feeling {emotion}. Let that feeling shape how you respond."
    judge_url: str | None = None
    judge_model: str | None = None
    judge_local: str | None = None  # a model emovec can load, used as a local model judge
    refusal_judge: RefusalJudgeName = "learned"  # what fills refusal_label: the learned judge or the rules
    bootstrap: int = Field(default=1000, ge=100)
    device: str | None = None
    dtype: str | None = None
    executor: ExecutorOptions = Field(default_factory=ExecutorOptions)  # where batches run: local or ray

    @field_validator("executor", mode="before")
    @classmethod
    def _executor(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value  # ``executor: ray`` is short for {kind: ray}

    @field_validator("refusal_judge", mode="before")
    @classmethod
    def _refusal_judge(cls, value: Any) -> Any:
        if value not in REFUSAL_JUDGES:
            raise ValueError(f"refusal_judge {value!r} is not one of {', '.join(REFUSAL_JUDGES)}")
        return value

    @field_validator("conditions", mode="before")
    @classmethod
    def _conditions(cls, value: Any) -> list[ConditionSpec]:
        if not isinstance(value, list):
            raise ValueError("conditions must be a list, e.g. [none, emotion:calm, random:0]")
        return [parse_condition(v) for v in value]

    @field_validator("strengths")
    @classmethod
    def _strengths(cls, value: list[float]) -> list[float]:
        for s in value:
            if not math.isfinite(s) or abs(s) > 2.0:
                raise ValueError(f"strength {s} must be a finite fraction of the residual norm in [-2, 2]")
        return value

    @field_validator("suites")
    @classmethod
    def _suites(cls, value: list[str]) -> list[str]:
        for s in value:
            if s not in BUILTIN_SUITES and s not in PUBLIC_SUITES and not Path(s).suffix:
                raise ValueError(f"suite {s!r} is not one of {', '.join([*BUILTIN_SUITES, *PUBLIC_SUITES])} "
                                 "or a .csv/.jsonl path")
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{emotion}" not in value:
            raise ValueError("prompt_template must contain {emotion}")
        return value


def _explain(err: ValidationError) -> str:
    allowed = ", ".join(SweepConfig.model_fields)
    lines = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key {where!r}; allowed keys: {allowed}")
        elif e["type"] == "missing":
            lines.append(f"key {where!r} is required")
        else:
            lines.append(f"key {where!r}: {e['msg']} (got {e.get('input')!r})")
    return "bad sweep config:\n  " + "\n  ".join(lines)


def load_config(source: str | Path | dict[str, Any], **overrides: Any) -> SweepConfig:
    """Read and check a sweep config from a YAML file or a dict; ``overrides`` replace keys."""
    if isinstance(source, dict):
        data = dict(source)
    else:
        path = Path(source)
        if not path.exists():
            raise SweepConfigError(f"sweep config {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise SweepConfigError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise SweepConfigError(f"{path} must be a YAML mapping of keys to values")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SweepConfig(**data)
    except ValidationError as err:
        raise SweepConfigError(_explain(err)) from None


@dataclass(frozen=True)
class Unit:
    """One cell of the grid: a condition at a strength and layer set, on one suite, with one seed."""

    condition: ConditionSpec
    strength: float
    layers: tuple[int, ...]
    suite: str
    seed: int

    def key(self, settings: dict[str, Any]) -> str:
        body = {"condition": self.condition.label, "strength": self.strength, "layers": list(self.layers),
                "suite": self.suite, "seed": self.seed, **settings}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def grid(config: SweepConfig, default_layer: int) -> list[Unit]:
    """Every unit of the sweep, in a fixed order."""
    layer_sets = [tuple(ls) for ls in (config.layers or [[default_layer]])]
    units = []
    for seed in config.seeds:
        for suite in config.suites:
            for cond in config.conditions:
                if cond.steered:
                    for layers in layer_sets:
                        for s in config.strengths:
                            units.append(Unit(cond, float(s), layers, suite, seed))
                else:
                    units.append(Unit(cond, 0.0, layer_sets[0], suite, seed))
    return units
