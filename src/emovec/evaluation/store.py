"""Result storage shared by sweeps and scenarios: Parquet parts written whole and renamed atomically.

A run's rows live in ``OUT/results/part-<time>-<pid>-<random>.parquet``. A part is written through a temporary
file and an atomic rename, so a reader (or a resumed run) never sees half a part; a full disk leaves every earlier
part intact and says so. Part names carry the write time, the process id and a random suffix, so two processes
appending to one folder never pick the same name, and sorting the names keeps the order the parts were written.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emovec._files import temp_path
from emovec.errors import EmovecError

KEY = "key"


class StoreError(EmovecError, RuntimeError):
    """Results could not be written."""


class _Dumpable(Protocol):
    def model_dump(self) -> dict[str, Any]: ...


Row = Mapping[str, Any] | _Dumpable


def part_paths(out: str | Path) -> list[Path]:
    """The part files under ``OUT/results``, in the order they were written."""
    return sorted((Path(out) / "results").glob("part-*.parquet"))


def read_results(out: str | Path) -> pd.DataFrame:
    """Every row written so far (an empty frame when none).

    A key stored twice (two processes resumed the same run at once) is kept once, from the earlier part.

    Example:
        >>> rows = read_results("runs/sweep")
        >>> rows.groupby("condition")["refused"].mean()
    """
    parts = part_paths(out)
    if not parts:
        return pd.DataFrame()
    rows = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    if KEY in rows.columns:
        rows = rows.drop_duplicates(KEY, keep="first").reset_index(drop=True)
    return rows


def stored_keys(out: str | Path) -> set[str]:
    """The keys of every row written so far, read from the key column alone (replies are not loaded).

    Example:
        >>> todo = [row for row in planned if row.key not in stored_keys("runs/sweep")]
    """
    keys: set[str] = set()
    for part in part_paths(out):
        if KEY in pq.read_schema(part).names:
            keys.update(str(k) for k in pq.read_table(part, columns=[KEY]).column(KEY).to_pylist())
    return keys


def _part_name() -> str:
    return f"part-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"


def _as_dict(row: Row) -> dict[str, Any]:
    dump = getattr(row, "model_dump", None)
    return dict(dump()) if callable(dump) else dict(row)  # type: ignore[arg-type]


def write_part(out: str | Path, rows: Sequence[Row], schema: pa.Schema | None = None) -> Path:
    """Write ``rows`` as a new part, atomically.

    Args:
        out: the run's folder; parts go to ``out/results``.
        rows: dicts, or pydantic models (written through ``model_dump()``).
        schema: the Arrow schema to write with; inferred from the rows when None.

    Returns:
        The part's path.

    Example:
        >>> write_part("runs/sweep", [{"key": "a1", "refused": True}])
        PosixPath('runs/sweep/results/part-...parquet')
    """
    folder = Path(out) / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _part_name()
    tmp = temp_path(path)
    records = [_as_dict(r) for r in rows]
    table = pa.Table.from_pylist(records, schema=schema) if schema is not None else pd.DataFrame(records)
    try:
        if isinstance(table, pa.Table):
            pq.write_table(table, tmp)
        else:
            table.to_parquet(tmp, index=False)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreError(f"the disk is full while writing {path}; the {len(part_paths(out))} parts already "
                             "written are intact. Free some space and rerun the same command to continue.") from None
        raise
    return path
