"""Story and neutral-text corpora: the record format and loading (``emovec.corpus_writer`` writes them).

A corpus is a JSONL file, one ``CorpusRecord`` a line, beside a ``<file>.meta.json`` holding the settings
it was generated with (model, its file hash, prompt templates, sampling, seed, emovec version).
"""
from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from emovec._version import __version__
from emovec.data import corpus_path
from emovec.errors import CorpusError

Kind = Literal["story", "neutral"]


class CorpusRecord(BaseModel):
    """One text. ``emotion`` is ``None`` for neutral texts; ``index`` counts texts per pair. A text written by a
    writer (a person or a model given a brief) records the writer's id and the brief's version."""

    id: str
    kind: Kind
    emotion: str | None
    topic: str
    index: int
    text: str
    writer: str | None = None
    brief: str | None = None


# tokens a writer may write per text: the shipped corpus's setting (data/corpus/smollm2.jsonl.meta.json), room for
# about 150 words; `generate_corpus` and `emovec stories --max-new-tokens` both default to it
MAX_NEW_TOKENS = 170


class GenerationSettings(BaseModel):
    """How a corpus was generated: stored beside it so it can be reproduced and resumed."""

    model: str
    model_file_sha256: str | None
    model_fingerprint: str
    story_template: str
    neutral_template: str
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    batch_size: int
    design: str = "rotating"
    emovec_version: str = __version__


class WriterInfo(BaseModel):
    """One writer of a written corpus: the brief it was given and what it wrote."""

    id: str
    brief: str
    topics: list[str]
    stories: int
    neutral: int


class WrittenCorpusMeta(BaseModel):
    """How a corpus by independent writers was made: stored beside it as its meta file."""

    source: Literal["writers"] = "writers"
    design: str
    description: str
    date: str
    licence: str
    topics: dict[str, str]  # topic id -> the situation, as the writers were given it
    briefs: dict[str, str]  # brief version -> its template, exactly as sent
    writers: list[WriterInfo]
    counts: dict[str, int]
    emovec_version: str = __version__


CorpusMeta = GenerationSettings | WrittenCorpusMeta


def read_meta(path: Path) -> CorpusMeta:
    """A corpus meta file: a written corpus's (it names its writers) or a generated one's settings."""
    raw = path.read_text(encoding="utf-8")
    try:
        if '"writers"' in raw:
            return WrittenCorpusMeta.model_validate_json(raw)
        return GenerationSettings.model_validate_json(raw)
    except ValidationError:
        raise CorpusError(f"{path}: unreadable corpus meta file; fix or delete it") from None


def meta_path(path: Path) -> Path:
    """``stories.jsonl.meta.json`` beside ``stories.jsonl`` (also for a gzipped ``stories.jsonl.gz``)."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return path.with_name(name + ".meta.json")


@dataclass(frozen=True)
class Corpus:
    """Loaded corpus records with helpers to split them.

    Example:
        >>> corpus = load_corpus()
        >>> len(corpus.stories), len(corpus.neutral)
    """

    records: tuple[CorpusRecord, ...]
    source: str
    settings: CorpusMeta | None = None

    @property
    def design(self) -> str | None:
        """The design recorded in the corpus's meta file (``crossed``, ``rotating``), if it has one."""
        return self.settings.design if self.settings is not None else None

    def topics(self) -> list[str]:
        """Story topics in first-seen order (the generation order for a crossed corpus)."""
        return list(dict.fromkeys(r.topic for r in self.stories))

    @property
    def stories(self) -> list[CorpusRecord]:
        return [r for r in self.records if r.kind == "story"]

    @property
    def neutral(self) -> list[CorpusRecord]:
        return [r for r in self.records if r.kind == "neutral"]

    def emotions(self) -> list[str]:
        """Emotions with stories, in first-seen order."""
        return list(dict.fromkeys(r.emotion for r in self.stories if r.emotion))

    def split(self, heldout_per_emotion: int) -> tuple[list[CorpusRecord], list[CorpusRecord]]:
        """(train, held-out): the ``heldout_per_emotion`` highest-index stories of each emotion are held out."""
        by_emotion: dict[str, list[CorpusRecord]] = {}
        for r in self.stories:
            by_emotion.setdefault(str(r.emotion), []).append(r)
        train: list[CorpusRecord] = []
        held: list[CorpusRecord] = []
        for emotion, rows in by_emotion.items():
            rows = sorted(rows, key=lambda r: r.index)
            if heldout_per_emotion and len(rows) <= heldout_per_emotion:
                raise CorpusError(
                    f"emotion {emotion!r} has {len(rows)} stories; holding out {heldout_per_emotion} leaves none "
                    "to fit on. Use fewer held-out stories or a larger corpus."
                )
            cut = len(rows) - heldout_per_emotion
            train += rows[:cut]
            held += rows[cut:]
        return train, held

    def subset(self, stories_per_emotion: int | None, neutral_limit: int | None = None,
               topics: int | None = None, emotions: Sequence[str] | None = None) -> Corpus:
        """Keep the stories of the first ``topics`` topics (and of ``emotions`` only, when given), then the first
        ``stories_per_emotion`` stories of each emotion, and ``neutral_limit`` neutral texts."""
        wanted = set(emotions) if emotions is not None else None
        counts: Counter[str] = Counter()
        keep: list[CorpusRecord] = []
        n_neutral = 0
        kept_topics = set(self.topics()[:topics]) if topics is not None else None
        for r in sorted(self.records, key=lambda r: (r.kind, str(r.emotion), r.index)):
            if r.kind == "story":
                if (kept_topics is not None and r.topic not in kept_topics) or (
                        wanted is not None and r.emotion not in wanted):
                    continue
                counts[str(r.emotion)] += 1
                if stories_per_emotion is None or counts[str(r.emotion)] <= stories_per_emotion:
                    keep.append(r)
            elif neutral_limit is None or n_neutral < neutral_limit:
                n_neutral += 1
                keep.append(r)
        return Corpus(tuple(keep), self.source, self.settings)


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def load_corpus(path: str | Path | None = None) -> Corpus:
    """Read a corpus JSONL file, plain or gzipped, validating every line. ``path`` is a file or the name of a
    shipped corpus (``emovec.data.CORPORA``: ``writers``, the default, or ``smollm2``).

    Raises:
        CorpusError: the file is missing, empty, has a malformed line (its number is given), a duplicate id, or
            (in a written corpus) a record without its writer's id.

    Example:
        >>> corpus = load_corpus("my_stories.jsonl")
    """
    p = corpus_path(path)
    if not p.is_file():
        raise CorpusError(f"corpus file {p} does not exist; generate one with `emovec stories --out {p}`")
    records: list[CorpusRecord] = []
    seen: set[str] = set()
    for number, line in _iter_lines(p):
        try:
            rec = CorpusRecord.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "line"
            raise CorpusError(f"{p}:{number}: malformed corpus line ({where}: {first['msg']})") from None
        if rec.id in seen:
            raise CorpusError(f"{p}:{number}: duplicate id {rec.id!r}")
        if not rec.text.strip():
            raise CorpusError(f"{p}:{number}: record {rec.id!r} has empty text")
        seen.add(rec.id)
        records.append(rec)
    if not records:
        raise CorpusError(f"corpus file {p} holds no records; generate stories with `emovec stories`")
    meta = meta_path(p)
    settings = read_meta(meta) if meta.is_file() else None
    if isinstance(settings, WrittenCorpusMeta):
        _require_writers(p, records)
    return Corpus(tuple(records), str(p), settings)


def _require_writers(path: Path, records: list[CorpusRecord]) -> None:
    missing = [r.id for r in records if not r.writer or not r.brief]
    if missing:
        raise CorpusError(
            f"{path}: {len(missing)} records of this written corpus have no writer id or brief version (first: "
            f"{missing[0]!r}); every record of a written corpus must name its writer and brief: add 'writer' and "
            "'brief' to each record, or drop the 'writers' meta file if the corpus was generated by a model")
