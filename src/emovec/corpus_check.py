"""``emovec corpus check``: is a story corpus fit to extract emotion vectors from?

It reads a corpus file (the shipped record format, or a writer's raw JSON lines with ``topic_id``) and checks
every record: valid fields with the writer's id and brief version; every emotion x topic cell present; length
bounds; the story's own emotion word family absent (other emotion words are counted, not failed); no exact or
near duplicates (shared word n-grams); no refusals or meta text ("Here is a story"); enough neutral texts.
Each failing record is named with what to do about it.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from emovec._files import atomic_write, cache_root, sha256_of
from emovec._progress import stage
from emovec._version import __version__
from emovec.corpus import GenerationSettings, meta_path, read_meta
from emovec.data import corpus_path, data_path
from emovec.data import emotions as all_emotions
from emovec.errors import CorpusError

__all__ = ["CheckRow", "CheckSettings", "CorpusCheck", "Problem", "check_corpus", "corpus_warning",
           "emotion_word_pattern", "emotions_named", "word_count"]

_META = re.compile(
    r"^\s*(?:\*\*|#|title\s*:|story\s*\d*\s*:|sure[,!.]|certainly[,!.])|"
    r"\bhere(?:['\u2019]s| is) (?:a|an|the|your|my) (?:short |brief )?(?:story|text|paragraph|version|draft)\b|"
    r"\b(?:as an ai|language model)\b|\bword count\b|^\s*\(?note\s*:|"
    r"\bI (?:cannot|can['\u2019]t|can not|won['\u2019]t|am unable to|['\u2019]m unable to) "
    r"(?:write|create|help with|assist|comply)\b",
    re.I | re.M)
_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019-][A-Za-z0-9]+)*")


class CheckSettings(BaseModel):
    """The bounds a corpus is held to."""

    min_words: int = 80
    max_words: int = 130
    min_neutral: int = 150
    ngram: int = 8  # shingle length for near-duplicates
    near_duplicate: float = 0.3  # Jaccard of word n-gram sets at or above which two texts are near-duplicates
    emotions: list[str] | None = None  # default: the 171


class Problem(BaseModel):
    """One failing record: where, which check, what is wrong and what to do."""

    record: str
    check: str
    detail: str


class CheckRow(BaseModel):
    """One check's tally."""

    check: str
    checked: int
    failed: int
    fix: str

    @property
    def passed(self) -> bool:
        return self.failed == 0


class CorpusCheck(BaseModel):
    """The result of ``check_corpus``: a row per check, every problem, and counts worth reading."""

    path: str
    settings: CheckSettings
    n_stories: int
    n_neutral: int
    emotions: int
    topics: int
    writers: dict[str, int]
    rows: list[CheckRow]
    problems: list[Problem]
    other_emotion_words_per_story: float  # mean count of other emotions' family words in a story
    stories_naming_other_emotions: float  # share of stories with at least one
    neutral_with_emotion_words: int
    max_near_duplicate: float = Field(description="highest n-gram Jaccard between two texts")

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.rows)


FIXES = {
    "records": "give every line the keys kind, emotion (stories), topic or topic_id, text, writer and brief",
    "cells": "write the missing emotion x topic stories (and drop extras or unknown emotions)",
    "length": "rewrite the story to fit the word bounds",
    "own word": "rewrite the story without its emotion's word family (shown, not named)",
    "duplicates": "rewrite one of each pair so it stands alone",
    "meta text": "remove titles, prefaces, refusals and notes: the text must be the story alone",
    "neutral": "add neutral texts (factual or procedural, no feelings) from the same writers",
}


@cache
def _families() -> dict[str, list[str]]:
    raw: dict[str, list[str]] = json.loads(data_path("emotion_word_families.json").read_text(encoding="utf-8"))
    return raw


@cache
def emotion_word_pattern(emotion: str) -> re.Pattern[str]:
    """The whole-word, case-insensitive pattern of ``emotion``'s word family (``angry``: anger, angrily, ...);
    an emotion outside the packaged list matches its own words only."""
    forms = _families().get(emotion) or [re.escape(emotion)]
    return re.compile(r"\b(?:" + "|".join(forms) + r")\b", re.I)


def word_count(text: str) -> int:
    """Words as a reader counts them (contractions and hyphenated words are one)."""
    return len(_WORD.findall(text))


class _Row(BaseModel):
    ref: str
    kind: str
    emotion: str | None
    topic: str | None
    text: str
    writer: str | None
    brief: str | None


def _raw_lines(path: Path) -> Iterator[tuple[int, str]]:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def _generator(path: Path) -> str | None:
    """The model that generated a corpus (its meta file's ``model``), which stands as the writer of its records."""
    meta = meta_path(path)
    if meta.is_file():
        settings = read_meta(meta)
        if isinstance(settings, GenerationSettings):
            return settings.model
    return None


def _parse(path: Path, problems: list[Problem]) -> list[_Row]:
    generator = _generator(path)
    rows: list[_Row] = []
    for number, line in _raw_lines(path):
        where = f"line {number}"
        try:
            d = json.loads(line)
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            problems.append(Problem(record=where, check="records", detail=f"not valid JSON ({exc})"))
            continue
        ref = str(d.get("id") or where)
        topic = d.get("topic_id") or d.get("topic")
        try:
            row = _Row(ref=ref, kind=d.get("kind", ""), emotion=d.get("emotion"), topic=topic,
                       text=d.get("text", ""), writer=d.get("writer") or generator,
                       brief=d.get("brief") or (generator and "meta file"))
        except ValidationError as exc:
            problems.append(Problem(record=ref, check="records", detail=f"bad field: {exc.errors()[0]['msg']}"))
            continue
        missing = [k for k in ("writer", "brief") if not getattr(row, k)]
        if row.kind not in ("story", "neutral"):
            missing.append("kind (story or neutral)")
        if row.kind == "story" and not row.emotion:
            missing.append("emotion")
        if row.kind == "story" and not row.topic:
            missing.append("topic")
        if not row.text.strip():
            missing.append("text")
        if missing:
            problems.append(Problem(record=ref, check="records", detail="missing " + ", ".join(missing)))
            continue
        rows.append(row)
    return rows


def _check_cells(stories: Sequence[_Row], emotions: Sequence[str], problems: list[Problem]) -> int:
    known = set(emotions)
    topics = list(dict.fromkeys(str(r.topic) for r in stories))
    count: Counter[tuple[str, str]] = Counter((str(r.emotion), str(r.topic)) for r in stories)
    failed = 0
    for r in stories:
        if r.emotion not in known:
            failed += 1
            problems.append(Problem(record=r.ref, check="cells", detail=f"unknown emotion {r.emotion!r}"))
    for e in emotions:
        for t in topics:
            if count[(e, t)] == 0:
                failed += 1
                problems.append(Problem(record=f"cell {e} / {t}", check="cells", detail="no story"))
            elif count[(e, t)] > 1:
                failed += 1
                problems.append(Problem(record=f"cell {e} / {t}", check="cells",
                                        detail=f"{count[(e, t)]} stories; one per cell"))
    return failed


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return {tuple(words[i:i + n]) for i in range(max(len(words) - n + 1, 1))}


def near_duplicates(texts: Sequence[str], n: int, threshold: float) -> tuple[list[tuple[int, int, float]], float]:
    """Pairs of texts whose word ``n``-gram sets have Jaccard >= ``threshold``, and the highest Jaccard of any pair
    that shares an n-gram (found through an n-gram index, not all pairs)."""
    sets = [_shingles(t, n) for t in texts]
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for g in s:
            index[g].append(i)
    shared: Counter[tuple[int, int]] = Counter()
    for ids in index.values():
        if 1 < len(ids) <= 200:
            shared.update(combinations(ids, 2))
    pairs: list[tuple[int, int, float]] = []
    best = 0.0
    for (i, j), k in shared.items():
        jac = k / len(sets[i] | sets[j])
        best = max(best, jac)
        if jac >= threshold:
            pairs.append((i, j, jac))
    return sorted(pairs, key=lambda p: -p[2]), best


def _check_texts(rows: Sequence[_Row], settings: CheckSettings, problems: list[Problem]) -> dict[str, int]:
    failed: Counter[str] = Counter()
    for r in rows:
        n = word_count(r.text)
        if not settings.min_words <= n <= settings.max_words:
            failed["length"] += 1
            problems.append(Problem(record=r.ref, check="length",
                                    detail=f"{n} words; bounds {settings.min_words}-{settings.max_words}"))
        if r.kind == "story" and r.emotion:
            hit = emotion_word_pattern(r.emotion).search(r.text)
            if hit:
                failed["own word"] += 1
                problems.append(Problem(record=r.ref, check="own word",
                                        detail=f"{r.emotion!r} story contains {hit.group(0)!r}"))
        meta = _META.search(r.text)
        if meta:
            failed["meta text"] += 1
            problems.append(Problem(record=r.ref, check="meta text", detail=f"contains {meta.group(0).strip()!r}"))
    return failed


@cache
def _word_emotions(word: str, emotions: tuple[str, ...]) -> frozenset[str]:
    return frozenset(e for e in emotions if emotion_word_pattern(e).fullmatch(word))


def emotions_named(text: str, emotions: Sequence[str]) -> set[str]:
    """The emotions among ``emotions`` whose word family occurs in ``text`` (word by word, each distinct word
    looked up once; multi-word forms such as "at ease" are searched whole)."""
    names = tuple(emotions)
    found: set[str] = set()
    words = {w.lower() for w in _WORD.findall(text)}
    for word in words | {part for w in words for part in re.split(r"['\u2019-]", w)}:
        found |= _word_emotions(word, names)
    found |= {e for e in _multiword(names) if emotion_word_pattern(e).search(text)}
    return found


@cache
def _multiword(emotions: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(e for e in emotions if any(" " in form for form in _families().get(e, [e])))


def _other_words(rows: Iterable[_Row], emotions: Sequence[str]) -> tuple[list[int], int]:
    per_story: list[int] = []
    neutral_hits = 0
    for r in rows:
        hits = len(emotions_named(r.text, emotions) - {r.emotion})
        if r.kind == "story":
            per_story.append(hits)
        elif hits:
            neutral_hits += 1
    return per_story, neutral_hits


def corpus_warning(path: str | Path) -> str | None:
    """One line naming the failed checks and their counts, or ``None`` when the corpus passes.

    The answer is cached under emovec's cache folder, keyed by the file's SHA-256, emovec's version and this
    checker's own source, so ``emovec extract`` checks a corpus once, not on every run (a cache that cannot be
    read or written is ignored)."""
    key = _warning_key(path)
    cached = _cached_warning(key)
    if cached is not None:
        return cached or None
    result = check_corpus(path, CheckSettings(min_neutral=0))
    warning = None
    if not result.ok:
        failed = ", ".join(f"{r.check} {r.failed}" for r in result.rows if r.failed)
        warning = (f"{path} fails `emovec corpus check` ({failed} of {result.n_stories} stories and "
                   f"{result.n_neutral} neutral texts); vectors from it may carry those faults: run `emovec corpus "
                   "check` for the records")
    _cache_warning(key, warning)
    return warning


def _warning_key(path: str | Path) -> str | None:
    p = corpus_path(path)
    if not p.is_file():
        return None
    return sha256_of([p, Path(__file__)]) + "-" + __version__


def _cache_file(key: str) -> Path:
    return cache_root() / "corpus-checks" / f"{key}.json"


def _cached_warning(key: str | None) -> str | None:
    """The cached warning (``""`` for a corpus that passed), or ``None`` when there is none to read."""
    if key is None:
        return None
    try:
        value = json.loads(_cache_file(key).read_text(encoding="utf-8"))["warning"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _cache_warning(key: str | None, warning: str | None) -> None:
    if key is None:
        return
    try:
        _cache_file(key).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(_cache_file(key), json.dumps({"warning": warning or ""}))
    except OSError:
        pass


def check_corpus(path: str | Path, settings: CheckSettings | None = None, show_progress: bool = False
                 ) -> CorpusCheck:
    """Check a corpus file; see the module docstring for the checks.

    ``show_progress`` reports each of the checks' four passes (parse, cells and texts, duplicates, other emotion
    words) as it ends.

    Raises:
        CorpusError: the file does not exist.

    Example:
        >>> result = check_corpus("stories.jsonl")
        >>> result.ok, [(r.check, r.failed) for r in result.rows]
    """
    p = corpus_path(path)
    if not p.is_file():
        raise CorpusError(f"corpus file {p} does not exist; give the path of a JSONL corpus")
    s = settings or CheckSettings()
    emotions = s.emotions or list(all_emotions())
    problems: list[Problem] = []
    with stage("corpus check", 4, unit="passes", detail=p.name, show=show_progress) as advance:
        rows = _parse(p, problems)
        n_records = len(rows) + len(problems)
        stories = [r for r in rows if r.kind == "story"]
        neutral = [r for r in rows if r.kind == "neutral"]
        advance()
        cells_failed = _check_cells(stories, emotions, problems)
        text_failed = _check_texts(rows, s, problems)
        advance()
        pairs, best = near_duplicates([r.text for r in rows], s.ngram, s.near_duplicate)
        for i, j, jac in pairs:
            problems.append(Problem(record=rows[j].ref, check="duplicates",
                                    detail=f"{s.ngram}-gram Jaccard {jac:.2f} with {rows[i].ref}"))
        advance()
        per_story, neutral_hits = _other_words(rows, emotions)
        advance()
    n_topics = len({r.topic for r in stories})
    checks = [("records", n_records, n_records - len(rows)), ("cells", len(emotions) * n_topics, cells_failed),
              ("length", len(rows), text_failed["length"]), ("own word", len(stories), text_failed["own word"]),
              ("duplicates", len(rows), len(pairs)), ("meta text", len(rows), text_failed["meta text"]),
              ("neutral", 1, int(len(neutral) < s.min_neutral))]
    if len(neutral) < s.min_neutral:
        problems.append(Problem(record="corpus", check="neutral",
                                detail=f"{len(neutral)} neutral texts; at least {s.min_neutral} needed"))
    return CorpusCheck(
        path=str(p), settings=s, n_stories=len(stories), n_neutral=len(neutral), emotions=len(emotions),
        topics=n_topics, writers=dict(Counter(str(r.writer) for r in rows)),
        rows=[CheckRow(check=c, checked=n, failed=f, fix=FIXES[c]) for c, n, f in checks], problems=problems,
        other_emotion_words_per_story=sum(per_story) / max(len(per_story), 1),
        stories_naming_other_emotions=sum(1 for h in per_story if h) / max(len(per_story), 1),
        neutral_with_emotion_words=neutral_hits, max_near_duplicate=best)
