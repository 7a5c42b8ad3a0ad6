"""The result store: unique part names, key-only resume reads, typed rows and a full disk."""

from __future__ import annotations

import errno
import multiprocessing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from emovec.evaluation import store
from emovec.evaluation.store import StoreError, part_paths, read_results, stored_keys, write_part


class _Row(BaseModel):
    key: str
    refused: bool


def _write_many(args: tuple[str, int]) -> None:
    out, worker = args
    for k in range(5):
        write_part(out, [{"key": f"w{worker}-{k}", "refused": False}])


def test_parts_keep_their_order_and_are_read_back(tmp_path: Path):
    for k in range(3):
        write_part(tmp_path, [{"key": f"k{k}", "refused": k % 2 == 0, "reply": "x" * 10}])
    rows = read_results(tmp_path)
    assert list(rows["key"]) == ["k0", "k1", "k2"] and list(rows["refused"]) == [True, False, True]
    assert read_results(tmp_path / "nothing").empty and stored_keys(tmp_path / "nothing") == set()


def test_pydantic_rows_and_an_explicit_schema(tmp_path: Path):
    schema = pa.schema([("key", pa.string()), ("refused", pa.bool_())])
    path = write_part(tmp_path, [_Row(key="a", refused=True), _Row(key="b", refused=False)], schema=schema)
    assert pq.read_schema(path).equals(schema)
    assert read_results(tmp_path).to_dict("list") == {"key": ["a", "b"], "refused": [True, False]}


def test_resume_reads_only_the_key_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_part(tmp_path, [{"key": "a", "reply": "long reply"}, {"key": "b", "reply": "another"}])
    write_part(tmp_path, [{"key": "c", "reply": "third"}])
    asked: list[list[str] | None] = []
    real = pq.read_table

    def spy(source, *args, columns=None, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(columns)
        return real(source, *args, columns=columns, **kwargs)

    monkeypatch.setattr(store.pq, "read_table", spy)
    assert stored_keys(tmp_path) == {"a", "b", "c"}
    assert asked == [["key"], ["key"]]


def test_two_processes_never_overwrite_each_others_parts(tmp_path: Path):
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_write_many, [(str(tmp_path), 0), (str(tmp_path), 1)])
    assert len(part_paths(tmp_path)) == 10
    assert stored_keys(tmp_path) == {f"w{w}-{k}" for w in (0, 1) for k in range(5)}


def test_part_names_differ_even_at_the_same_instant_in_the_same_process(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store.time, "time_ns", lambda: 1_700_000_000_000_000_000)
    for k in range(10):
        write_part(tmp_path, [{"key": str(k)}])
    assert len(part_paths(tmp_path)) == 10 and stored_keys(tmp_path) == {str(k) for k in range(10)}


def test_a_key_stored_twice_is_read_once(tmp_path: Path):
    write_part(tmp_path, [{"key": "a", "score": 1.0}])
    write_part(tmp_path, [{"key": "a", "score": 2.0}, {"key": "b", "score": 3.0}])
    rows = read_results(tmp_path)
    assert list(rows["key"]) == ["a", "b"] and list(rows["score"]) == [1.0, 3.0]


def test_a_full_disk_leaves_earlier_parts_and_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_part(tmp_path, [{"key": "a"}])

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.pd.DataFrame, "to_parquet", full)
    with pytest.raises(StoreError, match=r"disk is full.*1 parts already written are intact"):
        write_part(tmp_path, [{"key": "b"}])
    assert stored_keys(tmp_path) == {"a"}
    assert not list((tmp_path / "results").glob(".*tmp*"))
