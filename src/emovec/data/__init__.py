"""Packaged data: the 171 emotion words, neutral topics and subjects, implicit-emotion scenarios, the
default story corpus."""

from __future__ import annotations

import json
import os
from functools import cache
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel


def data_path(name: str) -> Path:
    """Filesystem path of a packaged data file."""
    return Path(str(files("emovec.data").joinpath(name)))


def _lines(name: str) -> tuple[str, ...]:
    text = data_path(name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def emotions() -> tuple[str, ...]:
    """The 171 emotion words of Sofroniew et al. (2026), in the paper's order."""
    return _lines("emotions171.txt")


@cache
def topics() -> tuple[str, ...]:
    """Neutral everyday story topics (100) over which emotions are varied."""
    return _lines("topics.txt")


@cache
def neutral_subjects() -> tuple[str, ...]:
    """Subjects for neutral expository texts with no emotional content (used for denoising)."""
    return _lines("neutral_subjects.txt")


class Scenario(BaseModel):
    """A short text that implies ``emotion`` without naming it."""

    emotion: str
    text: str


@cache
def implicit_scenarios() -> tuple[Scenario, ...]:
    """Twelve scenarios in which an emotion is implied but never named."""
    rows = data_path("implicit_scenarios.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(Scenario(**json.loads(r)) for r in rows if r.strip())


CORPORA: dict[str, str] = {
    "writers": "corpus/writers.jsonl.gz",  # 171 emotions x 26 topics by independent frontier-model writers
    "smollm2": "corpus/smollm2.jsonl.gz",  # 171 emotions x 20 topics written by SmolLM2-135M-Instruct
}
DEFAULT_CORPUS = "writers"


def corpus_path(name_or_path: str | Path | None = None) -> Path:
    """The file of a shipped corpus named in ``CORPORA`` (default: ``$EMOVEC_CORPUS`` if set, else
    ``DEFAULT_CORPUS``), or ``name_or_path`` itself when it is not such a name; see ``corpus/README.md``."""
    if name_or_path is None:
        name_or_path = os.environ.get("EMOVEC_CORPUS") or DEFAULT_CORPUS
    name = str(name_or_path)
    if name in CORPORA and not Path(name).exists():
        return data_path(CORPORA[name])
    return Path(name_or_path)


def default_corpus_path() -> Path:
    """The default shipped story corpus (gzipped JSONL, crossed design); see ``corpus/README.md``."""
    return corpus_path(DEFAULT_CORPUS)
