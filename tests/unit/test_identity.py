"""Confusions, group accuracy, the topic learning curve and the embedding-layer null on synthetic activations with
a planted structure: two families of three emotions, each emotion a family direction plus its own, topics strong."""

from __future__ import annotations

import torch

from emovec.capture import embedding_means
from emovec.validation.crossval import Recipe
from emovec.validation.identity import emotion_groups, identity_figures

EMOTIONS = ["a1", "a2", "a3", "b1", "b2", "b3"]


def _data(n_topics: int = 8, seed: int = 0, own: float = 1.0) -> tuple[torch.Tensor, list[str], list[str]]:
    g = torch.Generator().manual_seed(seed)
    d = 24
    family = {"a": torch.randn(d, generator=g) * 3, "b": torch.randn(d, generator=g) * 3}
    emo = {e: family[e[0]] + own * torch.randn(d, generator=g) for e in EMOTIONS}
    rows, labels, topics = [], [], []
    for t in range(n_topics):
        topic = torch.randn(d, generator=g) * 4
        for e in EMOTIONS:
            rows.append(emo[e] + topic + 0.6 * torch.randn(d, generator=g))
            labels.append(e)
            topics.append(f"t{t}")
    return torch.stack(rows), labels, topics


def test_planted_families_are_found():
    acts, labels, topics = _data()
    fig = identity_figures(acts, labels, topics, None, Recipe(), layer=3, group_sizes=(2,), curve=(3, 8),
                           n_folds=4, n_resamples=200)
    assert fig.top1.value > 0.5  # chance 1/6
    (groups,) = fig.groups
    assert sorted(map(sorted, groups.groups)) == [["a1", "a2", "a3"], ["b1", "b2", "b3"]]
    assert groups.accuracy.value > 0.95 and 0.4 < groups.chance < 0.6
    assert all(c.truth[0] == c.predicted[0] for c in fig.confusions)  # errors stay inside a family
    assert [p.topics for p in fig.learning_curve] == [3, 8]


def test_a_structureless_input_scores_chance():
    acts, labels, topics = _data()
    noise = torch.randn(acts.shape, generator=torch.Generator().manual_seed(1))
    fig = identity_figures(acts, labels, topics, None, Recipe(), layer=0, embedding_acts=noise, group_sizes=(),
                           curve=(), n_folds=4, n_resamples=200)
    assert fig.embedding_top1 is not None and fig.embedding_top5 is not None
    assert fig.embedding_top1.value < 0.4 < fig.top1.value


def test_groups_cover_every_emotion_once():
    acts, labels, _topics = _data()
    directions = torch.stack([acts[[i for i, e in enumerate(labels) if e == x]].mean(0) for x in EMOTIONS])
    groups = emotion_groups(directions, EMOTIONS, 3)
    assert sorted(e for g in groups for e in g) == sorted(EMOTIONS) and len(groups) == 3


def test_embedding_means_average_the_read_tokens(tiny_llama):
    texts = ["the cat sat on the mat today", "a dog ran far away"]
    means = embedding_means(tiny_llama, texts, token_start=2)
    table = tiny_llama.model.get_input_embeddings().weight.detach()
    ids = tiny_llama.tokenizer(texts[1])["input_ids"]
    assert torch.allclose(means[1], table[ids[2:]].mean(0), atol=1e-5)
    assert means.shape == (2, table.shape[1])
