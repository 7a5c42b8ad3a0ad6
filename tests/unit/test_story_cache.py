from __future__ import annotations

import torch

from emovec.corpus import load_corpus
from emovec.validation import validate
from emovec.vectors import extract_emotion_vectors
from emovec.vectors.story_cache import STORIES_FILE, load_stories, save_stories, tensors_hash


def test_cached_stories_round_trip_and_serve_validation(tiny_llama, write_corpus, tmp_path, monkeypatch):
    ext = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, show_progress=False)
    ext.vectors.save(tmp_path)
    save_stories(tmp_path, ext.stories, ext.bases, tensors_hash(tmp_path))
    loaded = load_stories(tmp_path, tensors_hash(tmp_path))
    assert loaded is not None
    stories, bases = loaded
    assert stories.labels == ext.stories.labels and stories.topics == ext.stories.topics
    torch.testing.assert_close(stories.acts, ext.stories.acts, rtol=2e-3, atol=2e-3)  # stored as float16
    assert all(b is not None and a is not None and torch.equal(a, b) for a, b in zip(bases, ext.bases, strict=True))
    # validation uses the cache instead of reading the corpus again
    import emovec.validation.validator as v

    def no_reread(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(v, "stories_from_corpus", no_reread)
    report = validate(tiny_llama, ext.vectors, cache_dir=tmp_path, n_permutations=2, external=False, n_resamples=20)
    assert report.n_stories == 16


def test_a_cache_from_other_vectors_or_a_corrupt_one_is_ignored(tiny_llama, write_corpus, tmp_path):
    ext = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, show_progress=False)
    save_stories(tmp_path, ext.stories, ext.bases, "0" * 64)
    assert load_stories(tmp_path, "1" * 64) is None
    (tmp_path / STORIES_FILE).write_bytes(b"garbage")
    assert load_stories(tmp_path, "0" * 64) is None
