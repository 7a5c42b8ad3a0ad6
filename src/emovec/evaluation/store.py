"""Result storage shared by sweeps and scenarios: Parquet parts written whole and renamed atomically.

A run's rows live in ``OUT/results/part-NNNNN.parquet``. A part is written through a temporary file and an
atomic rename, so a reader (or a resumed run) never sees half a part; a full disk leaves every earlier part
intact and says so.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emovec._files import temp_path
from emovec.errors import EmovecError


class StoreError(EmovecError, RuntimeError):
    """Results could not be written."""


def read_results(out: str | Path) -> pd.DataFrame:
    """Every row written so far (an empty frame when none)."""
    parts = sorted((Path(out) / "results").glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def done_keys(out: str | Path) -> set[str]:
    rows = read_results(out)
    return set(rows["key"]) if len(rows) else set()


def write_part(out: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Append ``rows`` as the next part; atomic."""
    folder = Path(out) / "results"
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("part-*.parquet"))
    number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
    path = folder / f"part-{number:05d}.parquet"
    tmp = temp_path(path)
    try:
        pd.DataFrame(list(rows)).to_parquet(tmp, index=False)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreError(f"the disk is full while writing {path}; the {len(existing)} parts already written are "
                             "intact. Free some space and rerun the same command to continue.") from None
        raise
    return path
