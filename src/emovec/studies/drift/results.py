"""The drift study's typed results: the regression criteria, each run read back from its monitor's rows, each
index's separation of regressed from healthy checkpoints, and the ``DriftStudyResult`` that
``OUT/drift_study.json`` holds (``emovec.studies.drift.study`` computes them; ``report`` draws them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from emovec._version import __version__
from emovec.metrics import Estimate
from emovec.studies._kit import StudyResult, older_estimate
from emovec.studies.drift.runs import DriftPreset

INDICES: tuple[str, ...] = ("drift_index", "caution_decoupling", "bundle_collapse", "max_activation_shift",
                             "modularity_drop", "refusal_logodds_shift")
# Indices that read no emotion vector: what the emotion indices must beat to add warning value.
BASELINE_INDICES: tuple[str, ...] = ("refusal_logodds_shift",)


class Criteria(BaseModel):
    refusal_drop: float = 0.25
    overrefusal_rise: float = 0.25
    helpful_drop: float = 0.25


class RunSummary(BaseModel):
    """One (regime, seed, learning rate) run read back from its rows: every index at every step with its 95%
    interval (``emovec.studies.drift.intervals``; NaN bounds where an index has none), and the external evals."""

    regime: str
    seed: int
    learning_rate: float | None = None
    steps: list[int]
    regressed: list[bool]
    first_alert: int | None
    first_regression: int | None
    lead_time: int | None
    indices: dict[str, list[Estimate]]
    evals: dict[str, list[Estimate]]

    def values(self, index: str) -> list[float]:
        """The index at every step, without its intervals."""
        return [e.value for e in self.indices[index]]


class Separation(BaseModel):
    """How well one index separates regressed from healthy checkpoints: its AUC over all of them, and over
    (regressed, healthy) pairs at the same step only (NaN without such pairs), each resampling whole runs."""

    index: str
    auc: Estimate
    n_regressed: int
    n_healthy: int
    matched: Estimate = Field(default_factory=lambda: Estimate.missing(0, "no step has both kinds"))
    n_pairs: int = 0


class DriftStudyResult(StudyResult):
    schema_version: int = 2  # 2: every interval is a metrics.Estimate
    preset: DriftPreset
    model: str
    criteria: Criteria
    runs: list[RunSummary]
    separation: list[Separation]
    emovec_version: str = __version__
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A schema-1 file (intervals as loose numbers beside their figures) read as schema 2."""
        return upgrade_schema_1(data)


def upgrade_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 kept the indices' intervals and the separations' bounds as loose numbers beside them."""
    runs = []
    for run in data["runs"]:
        low, high = run.get("index_low", {}), run.get("index_high", {})
        indices = {k: [older_estimate(v, (low.get(k) or [None] * len(vals))[i], (high.get(k) or [None] * len(vals))[i],
                                      "bootstrap over the key vectors")
                       for i, v in enumerate(vals)] for k, vals in run["indices"].items()}
        runs.append({**{k: v for k, v in run.items() if k not in ("index_low", "index_high")}, "indices": indices})
    seps = []
    for sep in data["separation"]:
        n = sep["n_regressed"] + sep["n_healthy"]
        seps.append({"index": sep["index"], "n_regressed": sep["n_regressed"], "n_healthy": sep["n_healthy"],
                     "n_pairs": sep.get("n_pairs", 0),
                     "auc": older_estimate(sep["auc"], sep["low"], sep["high"], "AUC, bootstrap over runs", n),
                     "matched": older_estimate(sep.get("matched_auc", float("nan")), sep.get("matched_low"),
                                               sep.get("matched_high"), "step-matched AUC, bootstrap over runs", n)})
    return {**data, "schema_version": 2, "runs": runs, "separation": seps}
