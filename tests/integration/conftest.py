from __future__ import annotations

from pathlib import Path

import pytest

from emovec import Corpus, load_corpus
from emovec.vectors import extract_emotion_vectors

EMOTIONS = ("afraid", "angry", "calm", "desperate", "happy", "sad", "proud", "nervous", "grateful", "lonely",
            "disgusted", "surprised", "guilty", "jealous", "bored", "hopeful")


def small_corpus(per: int = 3) -> Corpus:
    """The stories of ``EMOTIONS`` on the shipped corpus's first ``per`` topics (one story per emotion and topic),
    and 30 neutral texts."""
    full = load_corpus()
    topics = set(full.topics()[:per])
    keep = [r for r in full.records if (r.kind == "story" and r.emotion in EMOTIONS and r.topic in topics)]
    keep += full.neutral[:30]
    return Corpus(tuple(keep), full.source)


@pytest.fixture(scope="session")
def real_vectors_dir(real_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A small real emotion vector set (16 emotions, layers 8 and 16), saved once per session."""
    out = tmp_path_factory.mktemp("vecs") / "set"
    ext = extract_emotion_vectors(real_model, small_corpus(per=3), layers=[8, 16], token_start=50, max_length=128,
                                  skip_short=True, show_progress=False)
    ext.vectors.with_recommended_layer(16).save(out)
    return out
