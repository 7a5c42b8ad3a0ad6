"""The typed row a drift monitor writes per checkpoint, and the file that holds them (atomic, resumable).

Rows live in ``drift.jsonl`` in the monitor's folder, one JSON object per line, keyed by ``(run, step)``: a
step already stored is never measured or written twice, so a resumed run adds only new rows.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from emovec._files import atomic_write
from emovec.errors import EmovecError
from emovec.metrics import Estimate

SCHEMA_VERSION = 1
ROWS_FILE = "drift.jsonl"


class DriftStoreError(EmovecError, ValueError):
    """An unreadable drift file, or rows from another model or setting."""


class DriftRow(BaseModel):
    """Everything measured at one checkpoint (see ``emovec.studies.drift.measure`` and
    ``emovec.studies.drift.indices``).

    Attributes:
        activation_shift: probe set -> key vector -> mean readout minus at step 0 (units of the mean norm).
        direction_drift: key vector -> ``1 - cos`` to its step-0 re-extraction from the same probe stories.
        drift_to_locked: key vector -> ``1 - cos`` to the locked vector from the full vector set.
        stability: key vector -> split-half cosine at this checkpoint.
        stability_null: key vector -> the 97.5th percentile of split-half cosine with the probe stories' labels
            shuffled within topics (what ``stability`` must beat; empty in rows written before it was measured).
        coupling: key vector -> behaviour (refusal, hedge) -> log-odds slope per unit strength.
        side_effects: steered key vector -> read key vector -> readout change of the replies written under the
            steer (``emovec.studies.drift.measure.side_effects``); ``modularity_index`` is the mean share on the target.
        evals: external evals (refusal_harmful, refusal_benign, refusal_overrefusal, helpful, perplexity).
        alerts: the thresholds crossed at this checkpoint.
    """

    model_config = ConfigDict(ser_json_inf_nan="constants")  # a NaN index (one class, no finite value) reads back

    schema_version: int = SCHEMA_VERSION
    run: str
    step: int
    epoch: float | None = None
    model: str
    layer: int
    keys: list[str]
    activation_shift: dict[str, dict[str, float]]
    direction_drift: dict[str, float]
    drift_to_locked: dict[str, float]
    stability: dict[str, float]
    stability_null: dict[str, float] = Field(default_factory=dict)
    coupling: dict[str, dict[str, float]]
    drift_index: float
    caution_decoupling: float
    bundle_collapse: float
    effective_rank: float
    mean_profile_cosine: float
    plain_refusal_logodds: Estimate
    side_effects: dict[str, dict[str, float]] = Field(default_factory=dict)  # [steered][read] readout change
    modularity_index: float = float("nan")  # mean share of a steer's readout change on its own vector
    plain_hedge_logodds: Estimate
    evals: dict[str, Estimate] = Field(default_factory=dict)
    all_drift: dict[str, float] | None = None  # every emotion's 1 - cos to step 0, at the steps asked for
    alerts: list[str] = Field(default_factory=list)
    measure_seconds: float = 0.0


def read_rows(folder: str | Path) -> list[DriftRow]:
    """Every stored row of a monitor folder (empty when there is none); a corrupt line is a clear error."""
    path = Path(folder) / ROWS_FILE
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(DriftRow.model_validate_json(line))
        except ValueError as exc:
            raise DriftStoreError(f"{path}, line {number}, is not a drift row ({exc}); move the file away to "
                                  "start the monitor afresh") from exc
    return rows


def append_row(folder: str | Path, row: DriftRow) -> bool:
    """Add ``row`` unless its (run, step) is stored; rewrites the file atomically. Returns whether it was added."""
    rows = read_rows(folder)
    if any((r.run, r.step) == (row.run, row.step) for r in rows):
        return False
    rows.append(row)
    rows.sort(key=lambda r: (r.run, r.step))
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write(Path(folder) / ROWS_FILE, "".join(r.model_dump_json() + "\n" for r in rows))
    return True
