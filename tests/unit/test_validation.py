from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from emovec.capture import TokenSelection
from emovec.corpus import load_corpus
from emovec.errors import CorpusError
from emovec.reports import write_validation_report
from emovec.validation import (
    Recipe,
    cross_validated_ranks,
    pair_cosines,
    pca_geometry,
    permutation_baseline,
    validate,
)
from emovec.validation.crossval import nested_layer_choice, permuted_labels, topic_folds
from emovec.validation.text_baseline import names_own_emotion, text_baseline
from emovec.vectors import Provenance, VectorSet, extract_emotion_vectors


def planted_set(lm, n: int = 6) -> VectorSet:
    eye = torch.eye(lm.d_model)[:n]
    dirs = torch.stack([eye, torch.randn(n, lm.d_model, generator=torch.Generator().manual_seed(0))])
    prov = Provenance(model=lm.source, method="test", token_selection=TokenSelection.from_index(0))
    return VectorSet(names=tuple(f"e{i}" for i in range(n)), layers=(0, 1), directions=dirs,
                     mean_norm=torch.ones(2), provenance=prov, center=torch.full((2, lm.d_model), 5.0))


def planted_stories(n_emotions: int = 8, n_topics: int = 6, d: int = 24, topic_scale: float = 4.0,
                    signal: float = 1.5, seed: int = 0) -> tuple[torch.Tensor, list[str], list[str]]:
    """Layer 0 carries each emotion along its own axis under large topic offsets (which vary in a 3-dimensional
    subspace, as topic content shares directions); layer 1 carries noise only."""
    g = torch.Generator().manual_seed(seed)
    topic_space = torch.linalg.qr(torch.randn(d, 3, generator=g))[0].T
    topic_offsets = topic_scale * torch.randn(n_topics, 3, generator=g) @ topic_space
    emotions, topics, rows = [], [], []
    for t in range(n_topics):
        for e in range(n_emotions):
            x0 = topic_offsets[t] + signal * torch.eye(d)[e] + 0.5 * torch.randn(d, generator=g)
            x1 = topic_offsets[t] + 0.5 * torch.randn(d, generator=g)
            rows.append(torch.stack([x0, x1]))
            emotions.append(f"e{e}")
            topics.append(f"t{t}")
    return torch.stack(rows), emotions, topics


@pytest.mark.parametrize("readout", ["projection", "lda"])
def test_cross_validation_finds_planted_emotions_and_not_noise(readout):
    acts, emotions, topics = planted_stories(topic_scale=0.3, signal=3.0)
    ranks = cross_validated_ranks(acts, emotions, topics, [None, None], Recipe(True, readout), n_folds=3)
    top1 = (ranks == 1).float().mean(1)
    assert top1[0] > 0.8 and top1[1] < 0.35
    perm = permutation_baseline(acts[:, 0], emotions, topics, None, Recipe(True, readout), n_permutations=10)
    assert perm[:, 0].mean() < 0.35 and perm[:, 2].mean() > 3.0  # chance mean rank is 4.5 of 8


def test_lda_readout_discounts_the_offset_of_an_unseen_topic():
    # An unseen topic shifts every story by a large offset; its projection on the unit vectors swamps the
    # emotion signal, while the whitened readout, which learned how topics vary, still reads the emotion.
    acts, emotions, topics = planted_stories(topic_scale=4.0, n_topics=12)
    proj = cross_validated_ranks(acts, emotions, topics, [None, None], Recipe(True, "projection"), n_folds=4)
    lda = cross_validated_ranks(acts, emotions, topics, [None, None], Recipe(True, "lda"), n_folds=4)
    lda_top1, proj_top1 = float((lda[0] == 1).float().mean()), float((proj[0] == 1).float().mean())
    assert lda_top1 > 0.6 and lda_top1 > proj_top1 + 0.25


def test_nested_layer_choice_picks_the_signal_layer():
    acts, emotions, topics = planted_stories(topic_scale=0.3, signal=3.0)
    ranks, chosen = nested_layer_choice(acts, emotions, topics, [None, None], Recipe(), [0, 1], n_folds=3)
    assert chosen == [0, 0, 0] and float((ranks == 1).float().mean()) > 0.8


def test_folds_hold_out_whole_topics_and_permutation_keeps_design():
    topics = ["a", "b", "c", "a", "b", "c", "d", "d"]
    folds = topic_folds(topics, 3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(8))
    for f in folds:
        held = {topics[i] for i in f}
        rest = {topics[i] for i in set(range(8)) - set(f.tolist())}
        assert not held & rest
    emotions = ["x", "y", "x", "y", "x", "y", "x", "y"]
    shuffled = permuted_labels(emotions, topics, np.random.default_rng(0))
    for t in set(topics):
        assert sorted(e for e, tt in zip(shuffled, topics, strict=True) if tt == t) == sorted(
            e for e, tt in zip(emotions, topics, strict=True) if tt == t)


def test_pair_cosines_tell_topic_from_emotion():
    acts, emotions, topics = planted_stories(topic_scale=2.0, signal=1.5)
    diag = pair_cosines(acts, emotions, topics, [0, 1])
    assert diag[0].same_topic > diag[0].same_emotion > diag[0].unrelated
    assert diag[0].emotion_margin > 0.05 and abs(diag[1].same_emotion - diag[1].unrelated) < 0.05


def test_pca_geometry_signs_are_deterministic(tiny_llama):
    vs = planted_set(tiny_llama)
    ratio, coords = pca_geometry(vs, 1)
    _, coords2 = pca_geometry(-1.0 * vs, 1)
    assert all(a >= b for a, b in itertools.pairwise(ratio)) and sum(ratio) <= 1 + 1e-6
    torch.testing.assert_close(coords, coords2, rtol=1e-4, atol=1e-5)


def test_validate_end_to_end_writes_report(tiny_llama, write_corpus, tmp_path):
    corpus = load_corpus(write_corpus(emotions=("happy", "sad", "angry", "calm", "afraid", "proud")))
    ext = extract_emotion_vectors(tiny_llama, corpus, token_start=2, show_progress=False)
    report = validate(tiny_llama, ext.vectors, ext.stories, ext.bases, n_permutations=5, external=False,
                      n_resamples=50)
    assert report.recommended_layer in (1, 2) and [c.layer for c in report.cv] == [0, 1, 2]
    assert report.n_topics == 4 and report.n_folds == 4 and report.n_stories == 24
    assert report.nested is not None and len(report.nested.chosen_layers) == 4
    assert report.permutation is not None and report.permutation.n_permutations == 5
    for c in report.cv:
        assert c.top1.low <= c.top1.value <= c.top1.high and c.top1.value <= c.top5.value
    assert set(report.pca_coords) == set(ext.vectors.names) and len(report.pca_explained) <= 10
    assert report.implicit is not None and sorted(report.implicit.emotions) == sorted(
        ["happy", "sad", "angry", "calm", "afraid", "proud"])
    assert all(len(toks) == 8 for toks in report.logit_lens.values())
    assert report.external.skipped == ["external checks not requested"]
    # the stories repeat their emotion word, so even the input embeddings alone (no forward pass) find them
    assert report.identity is not None and report.identity.layer == report.recommended_layer
    assert report.identity.embedding_top1 is not None and report.identity.embedding_top1.value > 0.5
    # re-reading the stories from the recorded corpus gives the same figures
    ext.vectors.save(tmp_path / "v")
    again = validate(tiny_llama, VectorSet.load(tmp_path / "v"), n_permutations=5, external=False, n_resamples=50)
    assert [c.top5.value for c in again.cv] == [c.top5.value for c in report.cv]
    page = write_validation_report(ext.vectors, report, tmp_path / "v")
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html and "src=\"http" not in html
    assert "Stories of unseen topics" in html and "Corpus diagnostic" in html
    # the synthetic stories repeat their emotion word, so the word classifier finds every one
    assert report.text_baseline is not None and report.text_baseline.n_stories == 24
    assert report.text_baseline.top1.value == 1.0 and report.text_baseline.names_own_emotion == 1.0
    assert "What the words alone carry" in html and "input embeddings alone" in html
    assert "What the words alone carry" in html and "contain\ntheir own emotion word" in html
    data = json.loads((tmp_path / "v" / "report.json").read_text())
    for key in ("model", "layers", "recommended_layer", "cv", "nested", "permutation", "diagnostic", "external"):
        assert key in data


def test_validate_needs_three_topics(tiny_llama, write_corpus):
    ext = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus(per=2)), token_start=2, show_progress=False)
    with pytest.raises(CorpusError, match="needs at least 3"):
        validate(tiny_llama, ext.vectors, ext.stories, ext.bases, external=False)


def test_text_baseline_reads_words_that_carry_emotion_and_not_noise():
    rng = np.random.default_rng(0)
    emotions = ["happy", "sad", "angry", "calm", "afraid", "proud"]
    topics = ["train", "house", "sea", "city", "rain"]
    filler = [f"w{i}" for i in range(200)]
    cue = {e: [f"{e}cue{j}" for j in range(6)] for e in emotions}  # words each emotion's stories tend to use
    texts, labels, groups = [], [], []
    for t in topics:
        for e in emotions:
            for _ in range(2):
                words = list(rng.choice(filler, 30)) + list(rng.choice(cue[e], 3)) + [t] * 5
                texts.append(" ".join(words))
                labels.append(e)
                groups.append(t)
    found = text_baseline(texts, labels, groups, n_folds=5, n_resamples=100)
    assert found.top1.value > 0.6 and found.mean_rank.value < 2.0 and found.n_folds == 5
    assert found.names_own_emotion == 0.0
    shuffled = list(rng.permutation(labels))
    noise = text_baseline(texts, shuffled, groups, n_folds=5, n_resamples=100)
    assert noise.top1.value < 0.4 and noise.mean_rank.value > 2.5  # chance: top-1 1/6, mean rank 3.5
    assert names_own_emotion(["I was so happy", "unhappy days"], ["happy", "happy"]) == 0.5
    with pytest.raises(CorpusError, match="at least 2 topics"):
        text_baseline(texts[:3], labels[:3], ["one"] * 3)
