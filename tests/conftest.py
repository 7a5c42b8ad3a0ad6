"""Shared fixtures: tiny random models built from configs and an in-memory tokenizer (no downloads), a synthetic
corpus writer and the real default model. The builders behind them live in ``tests/builders.py``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tests.builders import FAMILIES, WORDS, make_model, make_set, make_tokenizer, sentence

__all__ = ["FAMILIES", "WORDS", "make_model", "make_set", "make_tokenizer", "sentence"]


@pytest.fixture(params=FAMILIES)
def tiny(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A tiny random model of each family in turn (the test runs once per family)."""
    from emovec import wrap_model

    return wrap_model(make_model(request.param), make_tokenizer(), name=f"tiny-{request.param}")


@pytest.fixture
def tiny_llama():  # type: ignore[no-untyped-def]
    """A tiny random llama (seed 0): the same weights, and so the same fingerprint, every time."""
    from emovec import wrap_model

    return wrap_model(make_model("llama"), make_tokenizer(), name="tiny-llama")


@pytest.fixture
def write_corpus(tmp_path: Path) -> Callable[..., Path]:
    """Write a small synthetic crossed corpus: story ``k`` of each emotion is on topic ``k``, biased toward its
    emotion's word and its topic's word, plus neutral texts."""
    from emovec.corpus import CorpusRecord

    topic_words = ("train", "house", "sea", "city", "rain", "book", "tea", "dog")

    def write(emotions: tuple[str, ...] = ("happy", "sad", "angry", "calm"), per: int = 4, n_neutral: int = 6,
              length: int = 24, neutral_length: int | None = None) -> Path:
        rng = torch.Generator().manual_seed(1)
        rows = []
        for k in range(per):
            topic = topic_words[k % len(topic_words)]
            for e in emotions:
                rows.append(CorpusRecord(id=f"story/{e}/{k}", kind="story", emotion=e, topic=topic, index=k,
                                         text=sentence(rng, length, [e, e, e, topic])))
        for k in range(n_neutral):
            rows.append(CorpusRecord(id=f"neutral/0/{k}", kind="neutral", emotion=None, topic="t", index=k,
                                     text=sentence(rng, neutral_length or length)))
        path = tmp_path / "corpus.jsonl"
        path.write_text("".join(r.model_dump_json() + "\n" for r in rows))
        return path

    return write


@pytest.fixture(scope="session")
def real_model() -> Iterator[object]:
    """The real default model, loaded once per session (integration tests only)."""
    from emovec import load_model

    yield load_model("smollm2-135m-instruct")
