"""``emovec corpus assemble``: join writers' JSON-lines files into one corpus in the shipped record format.

Each writer (a person, or a model given only a brief) writes one file of records with ``kind``, ``emotion``,
``topic_id``, ``writer``, ``brief`` and ``text``. Assembly orders stories topic-major (the topics file's order, so a
corpus cut after topic k holds whole topics), gives every record an id, and writes the meta file naming the
design, the topics, each brief's template, each writer and the counts. Nothing is rewritten: a record with a
problem stays as it is, for ``emovec corpus check`` to name.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emovec.corpus import CorpusRecord, WriterInfo, WrittenCorpusMeta, meta_path
from emovec.data import emotions
from emovec.errors import ArtifactExistsError, CorpusError

__all__ = ["assemble_corpus", "read_topics"]

LICENCE = "Apache-2.0 (the emovec project's own licence); written for emovec by language-model writers"


def read_topics(path: Path) -> dict[str, str]:
    """``id<TAB>[domain<TAB>]situation`` lines: topic id -> the situation sentence, in file order."""
    topics: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise CorpusError(f"{path}:{number}: expected 'id<TAB>situation' (optionally id<TAB>domain<TAB>situation)")
        topics[parts[0].strip()] = parts[-1].strip()
    return topics


def _read_writer_file(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError:
            raise CorpusError(f"{path}:{number}: not valid JSON; fix the line or ask its writer again") from None
        if not d.get("writer") or not d.get("brief"):
            raise CorpusError(f"{path}:{number}: record without a writer id or brief version; every written record "
                              "must say who wrote it under which brief (keys 'writer' and 'brief')")
        rows.append(d)
    return rows


def _records(rows: list[dict[str, Any]], topics: dict[str, str], emotions: Sequence[str]) -> list[CorpusRecord]:
    order = {e: i for i, e in enumerate(emotions)}
    tix = {t: i for i, t in enumerate(topics)}
    stories = [r for r in rows if r.get("kind") == "story"]
    unknown = sorted({str(r.get("topic_id")) for r in stories} - set(topics))
    if unknown:
        raise CorpusError(f"stories name topic ids {unknown} that the topics file lacks; add them to it")
    stories.sort(key=lambda r: (tix[r["topic_id"]], order.get(r.get("emotion", ""), len(order))))
    seen: Counter[str] = Counter()
    out: list[CorpusRecord] = []
    for r in stories:
        key = f"story/{r['topic_id']}/{r.get('emotion')}"
        out.append(CorpusRecord(id=f"{key}/{seen[key]}", kind="story", emotion=r.get("emotion"),
                                topic=topics[r["topic_id"]], index=seen[key], text=str(r.get("text", "")).strip(),
                                writer=r["writer"], brief=r["brief"]))
        seen[key] += 1
    for r in (r for r in rows if r.get("kind") == "neutral"):
        key = f"neutral/{r['writer']}"
        out.append(CorpusRecord(id=f"{key}/{seen[key]}", kind="neutral", emotion=None,
                                topic=str(r.get("subject") or "neutral"), index=seen[key],
                                text=str(r.get("text", "")).strip(), writer=r["writer"], brief=r["brief"]))
        seen[key] += 1
    return out


def _writers(rows: list[dict[str, Any]]) -> list[WriterInfo]:
    info: dict[str, WriterInfo] = {}
    for r in rows:
        w = info.setdefault(r["writer"], WriterInfo(id=r["writer"], brief=r["brief"], topics=[], stories=0,
                                                    neutral=0))
        if r.get("kind") == "story":
            w.stories += 1
            if r.get("topic_id") not in w.topics:
                w.topics.append(str(r.get("topic_id")))
        else:
            w.neutral += 1
    return sorted(info.values(), key=lambda w: w.id)


def assemble_corpus(writer_files: Sequence[Path], topics_file: Path, briefs: dict[str, str], out: Path, *,
                    description: str, overwrite: bool = False, date: str | None = None) -> WrittenCorpusMeta:
    """Join ``writer_files`` into ``out`` (``.jsonl`` or ``.jsonl.gz``) and its meta file; returns the meta.

    ``briefs`` maps each brief version the records name to its template text (stored in the meta file).

    Raises:
        ArtifactExistsError: ``out`` exists and ``overwrite`` is false.
        CorpusError: a record has no writer id or brief version, names a topic or brief that is not given, or a
            file is not JSON lines.
    """
    if out.exists() and not overwrite:
        raise ArtifactExistsError(f"{out} exists; pass --overwrite to replace it")
    topics = read_topics(topics_file)
    rows = [r for f in writer_files for r in _read_writer_file(Path(f))]
    missing = sorted({str(r["brief"]) for r in rows} - set(briefs))
    if missing:
        raise CorpusError(f"records name brief versions {missing} whose text was not given; pass each brief's file")
    records = _records(rows, topics, emotions())
    used = [t for t in topics if any(r.topic == topics[t] for r in records if r.kind == "story")]
    writers = _writers(rows)
    meta = WrittenCorpusMeta(
        design="crossed", description=description, date=date or _dt.date.today().isoformat(), licence=LICENCE,
        topics={t: topics[t] for t in used}, briefs={v: briefs[v] for v in sorted({w.brief for w in writers})},
        writers=writers, counts={"stories": sum(r.kind == "story" for r in records),
                                 "neutral": sum(r.kind == "neutral" for r in records), "topics": len(used),
                                 "writers": len(writers)})
    _write_atomic(out, records)
    meta_path(out).write_text(meta.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return meta


def _write_atomic(out: Path, records: list[CorpusRecord]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    body = "".join(r.model_dump_json() + "\n" for r in records).encode("utf-8")
    if out.name.endswith(".gz"):
        body = gzip.compress(body, compresslevel=9, mtime=0)
    tmp.write_bytes(body)
    tmp.replace(out)
