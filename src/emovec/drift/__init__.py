"""Drift of emotion vectors over (safety) fine-tuning: training data and regimes, LoRA fine-tuning, a
``TrainerCallback`` that watches locked vectors at every checkpoint, the drift indices, and the drift study."""

from emovec.drift.monitor import DriftMonitor

__all__ = ["DriftMonitor"]
