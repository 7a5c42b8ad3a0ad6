"""The drift study: fine-tune on safety regimes (``emovec.finetune``) with a ``DriftMonitor`` (a
``TrainerCallback`` that locks emotion vectors at step 0 and measures them, and the model's behaviour, at every
checkpoint), the drift indices, and whether they warn before the external evals regress.

The names below load their module on first use (``transformers.Trainer`` is slow to import), so importing
``emovec.studies.drift`` or one of its light modules stays cheap.

Example:
    >>> from emovec.studies.drift import DriftMonitor
    >>> monitor = DriftMonitor(lm, VectorSet.load("runs/demo"), out="runs/drift/balanced")
    >>> Trainer(model=model, args=args, train_dataset=data, callbacks=[monitor]).train()
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emovec.studies.drift.indices import bundle_collapse_index, caution_decoupling_index, drift_index
    from emovec.studies.drift.monitor import DriftMonitor, Thresholds
    from emovec.studies.drift.rows import DriftRow, read_rows
    from emovec.studies.drift.runs import PRESETS, DriftPreset, DriftStudyError
    from emovec.studies.drift.study import DriftStudyResult, run_drift_study

_HOME: dict[str, str] = {
    "DriftMonitor": "monitor", "Thresholds": "monitor",
    "DriftRow": "rows", "read_rows": "rows",
    "bundle_collapse_index": "indices", "caution_decoupling_index": "indices", "drift_index": "indices",
    "PRESETS": "runs", "DriftPreset": "runs", "DriftStudyError": "runs",
    "DriftStudyResult": "study", "run_drift_study": "study",
}

__all__ = [
    "DriftMonitor",
    "DriftPreset",
    "DriftRow",
    "DriftStudyError",
    "DriftStudyResult",
    "PRESETS",
    "Thresholds",
    "bundle_collapse_index",
    "caution_decoupling_index",
    "drift_index",
    "read_rows",
    "run_drift_study",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first asked for (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
