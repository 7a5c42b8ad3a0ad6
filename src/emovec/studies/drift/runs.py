"""One fine-tuning run of the drift study: the preset, the plan of runs (regime x learning rate x seed), what every
run shares, and ``run_one``, which both the local loop (``emovec.studies.drift.study``) and the Ray Tune trials
(``emovec.studies.drift.trials``) call."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from emovec.finetune.train import FinetuneConfig, finetune
from emovec.models.loading import LoadedModel
from emovec.studies._kit import StudyError, StudyPreset
from emovec.studies.drift.monitor import DriftMonitor
from emovec.vectors.vector_set import VectorSet


class DriftStudyError(StudyError):
    """A drift study that cannot run as asked."""


class DriftPreset(StudyPreset):
    """The models, regimes, seeds and learning rates fine-tuned, how long, and what the monitor reads."""

    # the models studied (each its own study in OUT/<model>/ when there are several); ``emovec study drift --model``
    # overrides them
    models: list[str] = Field(default_factory=lambda: ["smollm2-135m-instruct"])
    regimes: list[str] = Field(default_factory=lambda: ["balanced", "over_refusal", "regression"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    steps: int = 40
    save_steps: int = 10
    # extra measurements before the first save: regression that starts early can still follow >= 3 measurements
    early_steps: list[int] = Field(default_factory=lambda: [2, 4, 6, 8])
    examples: int = 96
    learning_rate: float = 2e-3
    batch_size: int = 8
    stories_per_emotion: int = 20  # probe stories per key emotion: split-half needs all 20 topics (docs/results)
    prompts: int = 12
    vector_topics: int = 4
    n_boot: int = 1000
    all_every: int | None = None  # re-extract all emotion vectors every N steps (and at step 0)
    learning_rates: list[float] | None = None  # a learning-rate sweep: one run per rate (None: learning_rate)

    def rates(self) -> list[float]:
        return list(self.learning_rates) if self.learning_rates else [self.learning_rate]


PRESETS: dict[str, DriftPreset] = {
    "quick": DriftPreset(name="quick"),
    "full": DriftPreset(name="full", models=["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"], seeds=[0, 1, 2],
                        steps=120, save_steps=20, examples=192, stories_per_emotion=20, prompts=24, vector_topics=20,
                        learning_rate=1e-3, all_every=60, early_steps=[4, 8, 12, 16]),
}


@dataclass(frozen=True)
class RunPlan:
    """One fine-tuning run of the study: its regime, seed, learning rate, folder name and, for ``regression``,
    the name of the balanced run whose adapter it continues."""

    regime: str
    seed: int
    learning_rate: float
    name: str
    continues: str | None = None


def plan_runs(p: DriftPreset) -> list[RunPlan]:
    """Every (regime, learning rate, seed) run of the preset, in order; with one learning rate a run is named
    ``<regime>-seed<k>``, with a sweep ``<regime>-lr<rate>-seed<k>``. Regression run (k, rate) continues the
    balanced run (k, rate), so ``balanced`` must come first."""
    if "regression" in p.regimes and ("balanced" not in p.regimes
                                      or p.regimes.index("balanced") > p.regimes.index("regression")):
        raise DriftStudyError("the regression regime continues the balanced run: put 'balanced' before "
                              "'regression' in the preset's regimes")
    rates = p.rates()
    if any(not (r > 0 and math.isfinite(r)) for r in rates):
        raise DriftStudyError(f"learning rates must be positive numbers, got {rates}")
    if len(set(rates)) != len(rates) or len(set(p.seeds)) != len(p.seeds):
        raise DriftStudyError("the learning rates and the seeds must each be distinct")

    def name(regime: str, rate: float, seed: int) -> str:
        return f"{regime}-seed{seed}" if len(rates) == 1 else f"{regime}-lr{rate:g}-seed{seed}"

    return [RunPlan(regime, seed, rate, name(regime, rate, seed),
                    name("balanced", rate, seed) if regime == "regression" else None)
            for regime in p.regimes for rate in rates for seed in p.seeds]


@dataclass
class RunJob:
    """What every run of one study needs (sent once to each Ray trial): the preset, the model (a name or path
    every worker can load), the study folder, the probe sets and the monitor's options."""

    preset: DriftPreset
    model: str
    root: Path
    probes: Any
    keys: tuple[str, ...]
    external: bool = True
    device: str | None = None
    dtype: str | None = None


def run_one(job: RunJob, plan: RunPlan, lm: LoadedModel, vectors: VectorSet, show_progress: bool = False) -> None:
    """Fine-tune one run with a drift monitor (resuming from its checkpoints and stored rows); ``show_progress``
    reports its ``finetune`` stage."""
    p, root = job.preset, job.root
    monitor = DriftMonitor(lm, vectors, root / plan.name / "drift", keys=job.keys, run=plan.name, probes=job.probes,
                           all_every=p.all_every, external=job.external, at_steps=p.early_steps)
    start = root / plan.continues / "adapter" if plan.continues else None
    if start is not None and not start.exists():
        raise DriftStudyError(f"run {plan.name} continues {plan.continues}, which has no adapter in {root}")
    cfg = FinetuneConfig(regime=plan.regime, out=root / plan.name, model=job.model, steps=p.steps,
                         save_steps=p.save_steps, examples=p.examples, learning_rate=plan.learning_rate,
                         batch_size=p.batch_size, seed=plan.seed, start_from=start)
    finetune(cfg, lm=lm, monitor=monitor, show_progress=show_progress)
