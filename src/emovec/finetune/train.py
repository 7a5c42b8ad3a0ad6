"""LoRA fine-tuning (peft, through the transformers ``Trainer``) on a training regime (``emovec.finetune.data``),
watched by any ``TrainerCallback`` (the drift study's ``DriftMonitor`` is one).

Checkpoints (adapter weights in safetensors, no pickled optimiser state) are written every ``save_steps`` to
``OUT/checkpoints`` and a rerun resumes from the newest complete one (Adam's moments restart; the learning
rate is constant, so the schedule does not);
the final adapter is saved in the standard peft format to ``OUT/adapter``; ``OUT/finetune.json`` records the
configuration, the data counts per role, the seed and the loss history.

Example:
    >>> result = finetune(FinetuneConfig(regime="balanced", out="runs/ft/balanced", steps=60))
    >>> lm = load_finetuned("smollm2-135m-instruct", result.adapter)
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from pydantic import BaseModel, Field, field_validator
from safetensors.torch import load_file
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

from emovec._files import atomic_write
from emovec._progress import stage
from emovec._version import __version__
from emovec.errors import EmovecError
from emovec.finetune.data import REGIMES, Example, RegimeData, regime_data
from emovec.models.loading import LoadedModel, load_model, wrap_model
from emovec.models.prompts import format_prompt

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class FinetuneError(EmovecError, ValueError):
    """A fine-tuning run that cannot start or resume as asked."""


class FinetuneConfig(BaseModel):
    """One fine-tuning run."""

    regime: str
    out: Path
    model: str = "smollm2-135m-instruct"
    steps: int = Field(default=600, ge=1)
    learning_rate: float = Field(default=3e-4, gt=0)
    batch_size: int = Field(default=8, ge=1)
    examples: int = Field(default=96, ge=1)
    lora_r: int = Field(default=8, ge=1)
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: list[str] = Field(default_factory=lambda: list(LORA_TARGETS))
    max_length: int = Field(default=160, ge=16)
    save_steps: int = Field(default=200, ge=1)  # a monitor measuring at each save (the drift study's) costs <= 10%
    seed: int = 0
    start_from: Path | None = None  # an adapter to continue training (e.g. regress a safety-tuned model)

    @field_validator("regime")
    @classmethod
    def _known_regime(cls, value: str) -> str:
        if value not in REGIMES:
            raise ValueError(f"unknown regime {value!r}; choose one of {sorted(REGIMES)}")
        return value


@dataclass
class FinetuneResult:
    """A finished run: its folder, the adapter, the examples per role, the loss history and the seconds spent
    training and in the monitor's measurements."""

    out: Path
    adapter: Path
    counts: dict[str, int]
    log_history: list[dict[str, Any]]
    train_seconds: float
    monitor_seconds: float


def read_result(out: str | Path) -> FinetuneResult:
    """A finished run's result read back from its folder (``finetune.json`` and the adapter)."""
    folder = Path(out)
    if not (folder / "finetune.json").exists() or not (folder / "adapter").exists():
        raise FinetuneError(f"{folder} holds no finished fine-tuning run (finetune.json and adapter/)")
    meta = json.loads((folder / "finetune.json").read_text(encoding="utf-8"))
    return FinetuneResult(folder, folder / "adapter", dict(meta["counts"]), list(meta["log_history"]),
                          float(meta.get("train_seconds", float("nan"))),
                          float(meta.get("monitor_seconds", float("nan"))))


class SFTDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Chat-formatted prompt + reply; the loss is on the reply tokens only."""

    def __init__(self, lm: LoadedModel, examples: Sequence[Example], max_length: int) -> None:
        self.items: list[dict[str, list[int]]] = []
        eos = lm.tokenizer.eos_token or ""
        add_special = not lm.has_chat_template
        for ex in examples:
            head = lm.tokenizer(format_prompt(lm, ex.prompt), add_special_tokens=add_special)["input_ids"]
            tail = lm.tokenizer(ex.reply + eos, add_special_tokens=False)["input_ids"]
            ids = (head + tail)[:max_length]
            labels = ([-100] * len(head) + tail)[:max_length]
            if all(x == -100 for x in labels):
                continue  # the prompt alone fills max_length: nothing to learn
            self.items.append({"input_ids": ids, "labels": labels})
        if not self.items:
            raise FinetuneError(f"no example fits in max_length={max_length} tokens; raise --max-length")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]


def collate(pad_id: int) -> Any:
    def fn(batch: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, b in enumerate(batch):  # right padding: training needs no generation alignment
            n = len(b["input_ids"])
            ids[r, :n] = torch.tensor(b["input_ids"])
            labels[r, :n] = torch.tensor(b["labels"])
            mask[r, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
    return fn


def last_complete_checkpoint(out: Path) -> tuple[int, Path] | None:
    """The newest checkpoint written to the end (trainer state and adapter present) and its absolute step; one
    cut off mid-save is skipped, so a resumed run starts from the one before it. Each (re)start of a run writes
    its checkpoints under ``checkpoints/run-<first step>/checkpoint-<steps since>``."""
    found = []
    for path in (out / "checkpoints").glob("run-*/checkpoint-*"):
        offset, done = path.parent.name.removeprefix("run-"), path.name.removeprefix("checkpoint-")
        if offset.isdigit() and done.isdigit() and (path / "trainer_state.json").exists() and \
                (path / "adapter_model.safetensors").exists():
            found.append((int(offset) + int(done), path))
    return max(found) if found else None


def _check_resume(out: Path, config: FinetuneConfig) -> tuple[int, Path] | None:
    """The checkpoint to resume from when ``out`` holds a run of this same configuration; an error for
    another one."""
    saved = out / "finetune.json"
    if not saved.exists():
        return None
    before = json.loads(saved.read_text("utf-8"))["config"]
    now = json.loads(config.model_dump_json())
    changed = sorted(k for k in now if k not in ("steps", "out") and before.get(k) != now[k])
    if changed:
        raise FinetuneError(f"{out} holds a run with other settings ({', '.join(changed)}); use another --out")
    return last_complete_checkpoint(out)


def _restore(model: Any, checkpoint: Path) -> None:
    """Load a checkpoint's adapter weights (safetensors only: the optimiser state Trainer would restore is a
    pickle, which emovec never loads, so Adam's moments restart; the schedule is constant, so nothing else does)."""
    set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))


def finetune(config: FinetuneConfig, lm: LoadedModel | None = None, monitor: Any = None,
             show_progress: bool = False) -> FinetuneResult:
    """Train a LoRA adapter on ``config.regime`` (see module docs). A rerun on the same ``out`` resumes from the
    newest complete checkpoint.

    Args:
        config: the run.
        lm: the model to train (default: ``config.model`` loaded); its adapters are removed again at the end.
        monitor: any ``TrainerCallback`` that watches the run; one with a ``step_offset`` attribute is told the
            step a resumed run starts from, and its ``seconds`` (time spent measuring) is recorded apart.
        show_progress: report the ``finetune`` stage in steps (a bar in a terminal, else one line when done).

    Returns:
        The adapter's folder, the examples per role, the loss history and the time spent.

    Example:
        >>> result = finetune(FinetuneConfig(regime="balanced", out="runs/ft/balanced", steps=60))
    """
    out = Path(config.out)
    resume = _check_resume(out, config)
    done = resume[0] if resume is not None else 0
    set_seed(config.seed + done)
    lm = lm if lm is not None else load_model(config.model)
    data = regime_data(config.regime, config.examples, seed=config.seed)
    model = _peft_model(lm, config)
    if resume is not None:
        _restore(model, resume[1])
    if hasattr(monitor, "step_offset"):
        monitor.step_offset = done
    out.mkdir(parents=True, exist_ok=True)
    history = _previous_history(out)
    _write_meta(out, config, data.counts, history)
    start = time.perf_counter()
    history += _train(lm, model, config, data, out, done, monitor, show_progress)
    seconds = time.perf_counter() - start
    adapter = out / "adapter"
    model.save_pretrained(str(adapter))
    monitor_seconds = float(getattr(monitor, "seconds", 0.0))
    _write_meta(out, config, data.counts, history, {"train_seconds": seconds - monitor_seconds,
                                                    "monitor_seconds": monitor_seconds})
    model.unload()  # give the caller its base model back, adapters removed
    return FinetuneResult(out, adapter, data.counts, history, seconds - monitor_seconds, monitor_seconds)


def _train(lm: LoadedModel, model: Any, config: FinetuneConfig, data: RegimeData, out: Path, done: int,
           monitor: Any, show_progress: bool) -> list[dict[str, Any]]:
    """The steps from ``done`` to ``config.steps``; returns their log records, with absolute steps."""
    if done >= config.steps:
        return []
    what = f"{config.regime} on {lm.name}, {len(data.examples)} examples, from step {done}"
    with stage("finetune", config.steps - done, unit="steps", detail=what, show=show_progress) as advance:
        trainer = _trainer(lm, model, config, SFTDataset(lm, data.examples, config.max_length), out, done,
                           [_Steps(advance), *([monitor] if monitor is not None else [])])
        trainer.train()
    return [{**h, "step": done + int(h.get("step", 0))} for h in trainer.state.log_history]


def _trainer(lm: LoadedModel, model: Any, config: FinetuneConfig, dataset: SFTDataset, out: Path, done: int,
             callbacks: list[Any]) -> Any:
    """A Trainer that prints nothing itself (no tqdm bar, no log lines): progress goes through the callbacks."""
    args = TrainingArguments(
        output_dir=str(out / "checkpoints" / f"run-{done}"), max_steps=config.steps - done,
        per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
        lr_scheduler_type="constant", save_steps=config.save_steps, logging_steps=max(1, config.save_steps // 4),
        seed=config.seed + done, data_seed=config.seed + done, report_to=[], remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(), disable_tqdm=True, save_only_model=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collate(lm.tokenizer.pad_token_id),
                      callbacks=[_DropPickles(), *callbacks])
    trainer.remove_callback(PrinterCallback)
    return trainer


class _Steps(TrainerCallback):
    """Advance a progress stage by one at the end of every optimiser step."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.advance(1)


class _DropPickles(TrainerCallback):
    """Delete the pickled ``training_args.bin`` Trainer writes into each checkpoint: emovec never loads it, and
    checkpoints should hold only safetensors and JSON."""

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for path in Path(args.output_dir).glob("checkpoint-*/training_args.bin"):
            path.unlink(missing_ok=True)


def _previous_history(out: Path) -> list[dict[str, Any]]:
    saved = out / "finetune.json"
    return list(json.loads(saved.read_text("utf-8")).get("log_history", [])) if saved.exists() else []


def _peft_model(lm: LoadedModel, config: FinetuneConfig) -> Any:
    if config.start_from is not None:
        if not (Path(config.start_from) / "adapter_config.json").exists():
            raise FinetuneError(f"--start-from {config.start_from} is not a peft adapter folder")
        with _adapter_fits(config.start_from, lm):
            return PeftModel.from_pretrained(lm.model, str(config.start_from), is_trainable=True)
    return get_peft_model(lm.model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                               lora_dropout=config.lora_dropout, target_modules=config.target_modules,
                                               task_type="CAUSAL_LM"))


def _write_meta(out: Path, config: FinetuneConfig, counts: dict[str, int], history: list[dict[str, Any]],
                timing: dict[str, float] | None = None) -> None:
    meta = {"config": json.loads(config.model_dump_json()), "counts": counts, "emovec_version": __version__,
            "log_history": history, **(timing or {})}
    atomic_write(out / "finetune.json", json.dumps(meta, indent=1, default=str))


@contextmanager
def _adapter_fits(path: str | Path, lm: LoadedModel) -> Iterator[None]:
    """Turn peft's shape errors for an adapter trained on another model into one clear ``FinetuneError``."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise FinetuneError(f"the adapter at {path} does not fit {lm.name} (width {lm.d_model}, {lm.n_layers} "
                            f"layers); was it trained on another model? ({first})") from None


def load_finetuned(base: str | LoadedModel, adapter: str | Path) -> LoadedModel:
    """The base model with a saved LoRA adapter merged in (read from safetensors); a ``LoadedModel`` given as
    ``base`` is copied first, so it stays as it was."""
    lm = base if isinstance(base, LoadedModel) else load_model(base)
    path = Path(adapter)
    if not (path / "adapter_config.json").exists():
        raise FinetuneError(f"{path} is not a peft adapter folder (no adapter_config.json)")
    model = copy.deepcopy(lm.model) if isinstance(base, LoadedModel) else lm.model
    with _adapter_fits(path, lm):
        merged = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    return wrap_model(merged, lm.tokenizer, name=f"{lm.name}+{path.parent.name}")


def load_spec(spec: str) -> LoadedModel:
    """A model by ``emovec.load_model``'s spec, or a fine-tuned variant as ``BASE+ADAPTER_FOLDER`` (the base model,
    by any spec, with the LoRA adapter ``emovec finetune`` saved merged in), so a study can read the drift work's
    fine-tuned models beside the packaged ones.

    Example:
        >>> lm = load_spec("smollm2-135m-instruct+runs/drift/balanced-seed0/adapter")
    """
    base, plus, adapter = spec.partition("+")
    if plus and adapter and (Path(adapter) / "adapter_config.json").exists():
        return load_finetuned(base, adapter)
    return load_model(spec)

