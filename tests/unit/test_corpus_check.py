"""The corpus checker and the writers' assembler on small corpora built here (random words, so any failure comes
from what a test plants)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emovec.cli import app
from emovec.corpus import WrittenCorpusMeta, load_corpus, meta_path
from emovec.corpus_build import assemble_corpus
from emovec.corpus_check import CheckSettings, check_corpus, emotion_word_pattern, near_duplicates, word_count
from emovec.errors import ArtifactExistsError, CorpusError

EMOTIONS = ["angry", "calm", "hope"]
TOPICS = {"t1": "A bus is late on a rainy morning.", "t2": "Someone repaints a kitchen."}
VOCAB = ("river window paper bread engine garden ladder market pocket candle station orange blanket hammer "
         "bottle pencil tunnel carpet button saddle wallet lantern mirror kettle basket ribbon meadow harbor "
         "shovel violin cabinet pillow").split()
SETTINGS = CheckSettings(emotions=EMOTIONS, min_neutral=2)


def _text(rng: random.Random, n: int = 100) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n)) + "."


def _rows(seed: int = 0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = [
        {"kind": "story", "emotion": e, "topic_id": t, "writer": f"w{t}", "brief": "b1", "text": _text(rng)}
        for t in TOPICS for e in EMOTIONS]
    rows += [{"kind": "neutral", "subject": f"s{i}", "topic_id": None, "writer": "wt1", "brief": "b1",
              "text": _text(rng)} for i in range(2)]
    return rows


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _failed(result) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {r.check: r.failed for r in result.rows if r.failed}


def test_a_clean_corpus_passes(tmp_path):
    result = check_corpus(_write(tmp_path / "c.jsonl", _rows()), SETTINGS)
    assert result.ok and result.n_stories == 6 and result.n_neutral == 2 and result.topics == 2
    assert result.max_near_duplicate < 0.3


def test_each_planted_problem_is_named(tmp_path):
    rows = _rows()
    rows[0]["text"] = "She slammed the door in anger. " + str(rows[0]["text"])  # angry story, own word family
    rows[1]["text"] = "Here is a story about it. " + str(rows[1]["text"])  # meta text
    rows[2]["text"] = "Too short to count."  # length
    rows[4]["text"] = rows[3]["text"]  # duplicate
    del rows[5]  # a missing cell (hope / t2)
    rows[-1].pop("writer")  # a record without its writer
    result = check_corpus(_write(tmp_path / "bad.jsonl", rows), SETTINGS)
    assert not result.ok
    assert _failed(result) == {"own word": 1, "meta text": 1, "length": 1, "duplicates": 1, "cells": 1,
                               "records": 1, "neutral": 1}
    details = {p.check: p.detail for p in result.problems}
    assert "'anger'" in details["own word"] and "no story" in details["cells"]
    assert "writer" in details["records"]


def test_word_families_match_forms_not_lookalikes():
    assert emotion_word_pattern("angry").search("He angrily left")
    assert emotion_word_pattern("hope").search("hoping for rain") and emotion_word_pattern("hopeful").search("hope")
    assert not emotion_word_pattern("mad").search("She made tea in Madrid")
    assert not emotion_word_pattern("tired").search("a flat tire")
    assert emotion_word_pattern("at ease").search("He was at ease")
    assert word_count("It's a well-known fact, isn't it?") == 6


def test_near_duplicates_found_through_the_index():
    rng = random.Random(1)
    a, b = _text(rng), _text(rng)
    edited = a.replace(a.split()[50], "zebra", 1)
    pairs, best = near_duplicates([a, b, edited], n=8, threshold=0.3)
    assert [(i, j) for i, j, _ in pairs] == [(0, 2)] and best > 0.5


def test_cli_check_exits_nonzero_and_names_records(tmp_path):
    rows = _rows()
    rows[2]["text"] = "Short."
    path = _write(tmp_path / "bad.jsonl", rows)
    runner = CliRunner()
    res = runner.invoke(app, ["corpus", "check", str(path), "--emotions", ",".join(EMOTIONS), "--min-neutral", "2"])
    assert res.exit_code == 1 and "line 3" in res.output and "length" in res.output
    good = _write(tmp_path / "good.jsonl", _rows())
    res = runner.invoke(app, ["corpus", "check", str(good), "--emotions", ",".join(EMOTIONS), "--min-neutral", "2"])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["corpus", "check", str(tmp_path / "none.jsonl")]).exit_code == 2


def _assemble(tmp_path: Path, rows: list[dict[str, object]], out: Path, **kw: object) -> WrittenCorpusMeta:
    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(f"{k}\tdomain\t{v}\n" for k, v in TOPICS.items()))
    files = [_write(tmp_path / "w2.jsonl", [r for r in rows if r.get("topic_id") == "t2"]),
             _write(tmp_path / "w1.jsonl", [r for r in rows if r.get("topic_id") != "t2"])]
    return assemble_corpus(files, topics, {"b1": "the brief {topic}"}, out, description="test", **kw)  # type: ignore[arg-type]


def test_assemble_orders_topic_major_and_records_writers(tmp_path):
    out = tmp_path / "corpus.jsonl.gz"
    meta = _assemble(tmp_path, _rows(), out)
    assert meta.counts == {"stories": 6, "neutral": 2, "topics": 2, "writers": 2}
    assert meta.briefs == {"b1": "the brief {topic}"} and [w.id for w in meta.writers] == ["wt1", "wt2"]
    corpus = load_corpus(out)
    assert isinstance(corpus.settings, WrittenCorpusMeta) and corpus.design == "crossed"
    assert corpus.topics() == list(TOPICS.values())  # the topics file's order, whatever the files' order
    assert corpus.stories[0].id == "story/t1/angry/0" and corpus.stories[0].writer == "wt1"
    assert check_corpus(out, SETTINGS).ok
    with pytest.raises(ArtifactExistsError):
        _assemble(tmp_path, _rows(), out)


def test_writer_ids_are_required(tmp_path):
    rows = _rows()
    rows[0].pop("writer")
    with pytest.raises(CorpusError, match="writer id"):
        _assemble(tmp_path, rows, tmp_path / "x.jsonl")
    out = tmp_path / "ok.jsonl.gz"
    _assemble(tmp_path, _rows(), out)
    lines = gzip.decompress(out.read_bytes()).decode().splitlines()
    first = json.loads(lines[0])
    first.pop("writer")
    out.write_bytes(gzip.compress(("\n".join([json.dumps(first), *lines[1:]]) + "\n").encode()))
    assert meta_path(out).is_file()
    with pytest.raises(CorpusError, match="writer id"):
        load_corpus(out)


def test_extract_warning_names_the_counts(tmp_path):
    from emovec.corpus_check import corpus_warning

    rows = _rows()
    rows[0]["text"] = "She shouted in anger. " + str(rows[0]["text"])
    rows[1]["text"] = "Short."
    warning = corpus_warning(_write(tmp_path / "bad.jsonl", rows))
    assert warning is not None and "own word 1" in warning and "length 1" in warning


def test_extract_warning_is_cached_per_file_content(tmp_path, monkeypatch):
    import emovec.corpus_check as cc

    monkeypatch.setenv("EMOVEC_CACHE", str(tmp_path / "cache"))
    calls: list[object] = []
    real = cc.check_corpus

    def counting(path, settings=None, show_progress=False):  # type: ignore[no-untyped-def]
        calls.append(path)
        return real(path, settings, show_progress)

    monkeypatch.setattr(cc, "check_corpus", counting)
    rows = _rows()
    path = _write(tmp_path / "c.jsonl", rows)
    first = cc.corpus_warning(path)
    assert cc.corpus_warning(path) == first and len(calls) == 1        # read once, then from the cache
    rows[1]["text"] = "Short."
    _write(path, rows)
    changed = cc.corpus_warning(path)
    assert len(calls) == 2 and changed is not None and "length 1" in changed   # new content, checked again
    assert cc.corpus_warning(path) == changed and len(calls) == 2
    for cached in (tmp_path / "cache" / "corpus-checks").iterdir():
        cached.write_text("not json")                                    # a broken cache is checked afresh
    assert cc.corpus_warning(path) == changed and len(calls) == 3


def test_shipped_corpora_by_name():
    from emovec.data import CORPORA, corpus_path

    assert {"writers", "smollm2"} <= set(CORPORA)
    assert corpus_path("smollm2").name == "smollm2.jsonl.gz" and corpus_path("smollm2").is_file()
    assert corpus_path("elsewhere/my.jsonl") == Path("elsewhere/my.jsonl")


def test_the_default_corpus_follows_the_environment(monkeypatch):
    from emovec.data import DEFAULT_CORPUS, corpus_path

    monkeypatch.delenv("EMOVEC_CORPUS", raising=False)
    assert corpus_path() == corpus_path(DEFAULT_CORPUS)
    monkeypatch.setenv("EMOVEC_CORPUS", "smollm2")
    assert corpus_path().name == "smollm2.jsonl.gz"
