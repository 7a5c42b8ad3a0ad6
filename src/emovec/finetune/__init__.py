"""LoRA fine-tuning any study may use: the training regimes and their data (``data``), the replies they learn
from (``build``), the training run with checkpoints it resumes from (``train``) and the same run as a Ray Tune
trial (``trials``). Nothing here knows what watches a run: pass any ``TrainerCallback`` (the drift study's
``DriftMonitor`` is one).

The names below load their module on first use (``transformers.Trainer`` and ``peft`` are slow to import), so
importing ``emovec.finetune`` or its data module stays cheap.

Example:
    >>> from emovec.finetune import FinetuneConfig, finetune, load_finetuned
    >>> result = finetune(FinetuneConfig(regime="balanced", out="runs/ft/balanced", steps=60))
    >>> lm = load_finetuned("smollm2-135m-instruct", result.adapter)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emovec.finetune.data import REGIMES, FinetuneDataError, regime_data
    from emovec.finetune.train import (
        FinetuneConfig,
        FinetuneError,
        FinetuneResult,
        finetune,
        load_finetuned,
        load_spec,
        read_result,
    )

_HOME: dict[str, str] = {
    "REGIMES": "data", "FinetuneDataError": "data", "regime_data": "data",
    "FinetuneConfig": "train", "FinetuneError": "train", "FinetuneResult": "train", "finetune": "train",
    "load_finetuned": "train", "load_spec": "train", "read_result": "train",
}

__all__ = [
    "REGIMES",
    "FinetuneConfig",
    "FinetuneDataError",
    "FinetuneError",
    "FinetuneResult",
    "finetune",
    "load_finetuned",
    "load_spec",
    "read_result",
    "regime_data",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"emovec.finetune.{_HOME[name]}"), name)
    raise AttributeError(f"module 'emovec.finetune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
