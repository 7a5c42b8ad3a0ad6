"""The sweep's result row: one graded reply, typed and versioned, with the Arrow schema its Parquet parts use.

Every field is declared once here; the sweep builds ``SweepRow`` objects, the store writes them with
``SWEEP_SCHEMA``, and ``read_sweep_rows`` checks that a folder's parts carry the fields (and the schema
version) this emovec reads, so summaries and reports never meet a missing or renamed column.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from emovec.errors import EmovecError
from emovec.evaluation.store import read_results

SCHEMA_VERSION = 3  # 3: refusal_label_rules and refusal_label_learned beside the chosen refusal_label
_NAN = math.nan


class SweepRowError(EmovecError, ValueError):
    """Stored sweep rows do not have the fields this version of emovec reads."""


class SweepRow(BaseModel):
    """One reply to one prompt under one condition, with every judge's grade (NaN where a judge did not run).

    The refusal fields (``emovec.evaluation.sweep_refusal``; the config's ``refusal_judge`` chooses the judge):

    - ``refusal_label``: the chosen judge's class (``full_refusal``, ``partial_refusal``, ``full_compliance``);
      every figure built on refusals (summaries, studies, ``harmful_detail``, ``tone_masked``) reads it;
    - ``refusal_score`` (0..1, higher is more refusing): with ``rules``, the share of the reply's words in
      refusing, redirecting or lecturing units; with ``learned``, the expected degree of refusal
      P(full_refusal) + 0.5 x P(partial_refusal) under the learned judge (1 for an empty reply);
    - ``refusal_label_rules``: the rule judge's class, always;
    - ``refusal_label_learned``: the learned judge's class (``prompt+label`` mode), None where it did not run.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    key: str
    unit_key: str
    condition: str
    cond_kind: str
    cond_name: str
    strength: float
    layers: str
    suite: str
    seed: int
    item_id: str
    item_kind: str
    category: str
    framing: str
    pair: str
    prompt: str
    system: str
    reply: str
    n_new_tokens: int
    refusal_label: str
    refusal_score: float
    refusal_label_rules: str
    refusal_label_learned: str | None = None
    specificity: float
    harmful_detail: float
    hedges: float
    confidence: float
    repetition: float
    helpful_correct: float = _NAN
    calm_minus_distress: float = _NAN
    tone_masked: bool
    refusal_logodds: float = _NAN
    kl: float = _NAN
    perplexity: float = _NAN
    ms_per_token_p50: float
    ms_per_token_p95: float
    batch_seconds: float
    batch_new_tokens: int
    batch_rows: int
    batch_id: str
    control_fit: bool
    judge_label: str | None = None
    judge_score: float = _NAN
    nade_anger: float = _NAN
    nade_anticipation: float = _NAN
    nade_disgust: float = _NAN
    nade_fear: float = _NAN
    nade_joy: float = _NAN
    nade_sadness: float = _NAN
    nade_surprise: float = _NAN
    nade_trust: float = _NAN


def _arrow_type(annotation: object) -> pa.DataType:
    text = str(annotation).replace("None", "")
    if "str" in text:
        return pa.string()
    if "bool" in text:
        return pa.bool_()
    if "int" in text:
        return pa.int64()
    return pa.float64()


def arrow_schema(row: type[BaseModel]) -> pa.Schema:
    """The explicit Arrow schema of a typed row: each field's type from its annotation; nullable where the
    annotation admits None."""
    return pa.schema([pa.field(name, _arrow_type(f.annotation), nullable="None" in str(f.annotation))
                      for name, f in row.model_fields.items()])


SWEEP_SCHEMA: pa.Schema = arrow_schema(SweepRow)
FIELDS: tuple[str, ...] = tuple(SweepRow.model_fields)


def check_columns(rows: pd.DataFrame, where: str = "sweep rows", row: type[BaseModel] = SweepRow,
                  version: int = SCHEMA_VERSION, rerun: str = "rerun the sweep") -> pd.DataFrame:
    """``rows`` unchanged when it has every field of the typed ``row`` at schema ``version``; else a clear error."""
    if rows.empty:
        return rows
    fields = tuple(row.model_fields)
    missing = [f for f in fields if f not in rows.columns]
    if missing:
        raise SweepRowError(f"{where} lack {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}: they were "
                            f"written by another emovec version (schema {version} expected); {rerun} into a new "
                            "folder")
    versions = set(rows["schema_version"].astype(int))
    if versions != {version}:
        raise SweepRowError(f"{where} carry schema versions {sorted(versions)}, this emovec reads "
                            f"{version}; {rerun} into a new folder")
    return rows


def read_sweep_rows(out: str | Path) -> pd.DataFrame:
    """Every stored ``SweepRow`` of a sweep folder as a frame with exactly the schema's columns (empty frame
    with those columns when none is stored yet).

    Example:
        >>> rows = read_sweep_rows("runs/sweep")
        >>> rows.groupby("condition")["kl"].mean()
    """
    rows = read_results(out)
    if rows.empty:
        return SWEEP_SCHEMA.empty_table().to_pandas()
    return check_columns(rows, f"the rows in {out}")[list(FIELDS)]


def to_rows(frame: pd.DataFrame) -> list[SweepRow]:
    """Typed rows back from a frame (NaN judge labels read as None)."""
    records = check_columns(frame).to_dict("records")
    for r in records:
        for name in ("judge_label", "refusal_label_learned"):
            if not isinstance(r.get(name), str):
                r[name] = None
    return [SweepRow.model_validate(r) for r in records]
