"""How well a corpus's vectors tell emotions apart, beyond one 171-way figure: which emotions are confused with
which, accuracy on groups of similar emotions (clusters of the vectors), a learning curve over topics, and the
embedding-layer null (the same recipe on the input embeddings alone, with no forward pass), which shows what the
model's layers add beyond the words.

Every figure is topic-held-out (vectors refitted without the scored story's topic) and comes with its chance
level and a bootstrap interval over topics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from pydantic import BaseModel
from scipy.cluster.hierarchy import fcluster, linkage
from torch import Tensor

from emovec.metrics import Estimate, cluster_bootstrap
from emovec.validation.crossval import Recipe, fit_scorer, topic_folds

__all__ = ["Confusion", "GroupAccuracy", "IdentityFigures", "LearningPoint", "confusions", "cross_validated_scores",
           "emotion_groups", "group_accuracy", "identity_figures", "topic_learning_curve"]


class Confusion(BaseModel):
    """Stories of ``truth`` whose top emotion was ``predicted``, and the cosine of the two vectors."""

    truth: str
    predicted: str
    count: int
    share: float  # of ``truth``'s stories
    cosine: float


class GroupAccuracy(BaseModel):
    """Top-1 accuracy at the level of ``k`` groups of emotions (the top emotion in the true emotion's group)."""

    k: int
    accuracy: Estimate
    chance: float  # the same predictions paired with shuffled stories (keeps both marginals)
    groups: list[list[str]]


class LearningPoint(BaseModel):
    """Topic-held-out accuracy with the first ``topics`` topics (about ``train_topics`` fit each fold)."""

    topics: int
    train_topics: float
    top1: Estimate
    top5: Estimate


class IdentityFigures(BaseModel):
    """The figures of this module at one layer, with the embedding-layer null when computed."""

    layer: int
    top1: Estimate
    top5: Estimate
    confusions: list[Confusion]
    groups: list[GroupAccuracy]
    learning_curve: list[LearningPoint]
    embedding_top1: Estimate | None = None
    embedding_top5: Estimate | None = None


def cross_validated_scores(acts: Tensor, emotions: Sequence[str], topics: Sequence[str], basis: Tensor | None,
                           recipe: Recipe, *, n_folds: int = 6) -> tuple[Tensor, list[str]]:
    """Every story's scores ``[n, E]`` (one layer, ``acts`` ``[n, d]``) from vectors fitted without its topic, and the
    emotion names in column order."""
    names = sorted(set(emotions))
    index = {n: i for i, n in enumerate(names)}
    e_all = torch.tensor([index[e] for e in emotions])
    t_names = {t: i for i, t in enumerate(sorted(set(topics)))}
    t_all = torch.tensor([t_names[t] for t in topics])
    scores = torch.zeros(len(emotions), len(names))
    for test in topic_folds(topics, n_folds):
        train = torch.from_numpy(np.setdiff1d(np.arange(len(emotions)), test))
        scorer = fit_scorer(acts[train], e_all[train], t_all[train] if recipe.topic_removal else None, len(names),
                            basis, recipe.readout)
        scores[torch.from_numpy(test)] = scorer.scores(acts[torch.from_numpy(test)])
    return scores, names


def _rank_estimates(scores: Tensor, names: Sequence[str], emotions: Sequence[str], topics: Sequence[str],
                    n_resamples: int, seed: int) -> tuple[Estimate, Estimate]:
    truth = torch.tensor([names.index(e) for e in emotions])
    ranks = (scores >= scores.gather(1, truth[:, None])).sum(1).numpy()
    return (cluster_bootstrap((ranks == 1).astype(float), topics, n_resamples=n_resamples, seed=seed),
            cluster_bootstrap((ranks <= 5).astype(float), topics, n_resamples=n_resamples, seed=seed))


def confusions(predicted: Sequence[str], emotions: Sequence[str], directions: Tensor, names: Sequence[str],
               top: int = 20) -> list[Confusion]:
    """The ``top`` most frequent (true, predicted) pairs among misclassified stories, with the vectors' cosine."""
    index = {n: i for i, n in enumerate(names)}
    unit = torch.nn.functional.normalize(directions.float(), dim=-1)
    per_truth = Counter(emotions)
    pairs = Counter((t, p) for t, p in zip(emotions, predicted, strict=True) if t != p)
    return [Confusion(truth=t, predicted=p, count=c, share=c / per_truth[t],
                      cosine=float(unit[index[t]] @ unit[index[p]]))
            for (t, p), c in pairs.most_common(top)]


def emotion_groups(directions: Tensor, names: Sequence[str], k: int) -> list[list[str]]:
    """``k`` groups of emotions: average-linkage clusters of the vectors by cosine distance."""
    unit = torch.nn.functional.normalize(directions.double(), dim=-1).numpy()
    labels = fcluster(linkage(unit, method="average", metric="cosine"), t=k, criterion="maxclust")
    groups: dict[int, list[str]] = {}
    for name, g in zip(names, labels, strict=True):
        groups.setdefault(int(g), []).append(name)
    return sorted(groups.values(), key=len, reverse=True)


def group_accuracy(predicted: Sequence[str], emotions: Sequence[str], topics: Sequence[str],
                   groups: list[list[str]], *, n_resamples: int = 1000, seed: int = 0) -> GroupAccuracy:
    """Share of stories whose top emotion lies in the true emotion's group, with the chance level of the same
    predictions paired with shuffled stories (mean over 200 shuffles)."""
    group_of = {e: i for i, g in enumerate(groups) for e in g}
    pred = np.array([group_of[p] for p in predicted])
    true = np.array([group_of[e] for e in emotions])
    rng = np.random.default_rng(seed)
    chance = float(np.mean([(rng.permutation(pred) == true).mean() for _ in range(200)]))
    acc = cluster_bootstrap((pred == true).astype(float), topics, n_resamples=n_resamples, seed=seed)
    return GroupAccuracy(k=len(groups), accuracy=acc, chance=chance, groups=groups)


def topic_learning_curve(acts: Tensor, emotions: Sequence[str], topics: Sequence[str], basis: Tensor | None,
                         recipe: Recipe, counts: Sequence[int], *, n_folds: int = 6, n_resamples: int = 1000,
                         seed: int = 0) -> list[LearningPoint]:
    """Topic-held-out top-1 / top-5 using only the first ``k`` topics (first-seen order), for each ``k``."""
    order = list(dict.fromkeys(topics))
    points = []
    for k in counts:
        if k < 3 or k > len(order):
            continue
        keep = set(order[:k])
        idx = [i for i, t in enumerate(topics) if t in keep]
        sub_e, sub_t = [emotions[i] for i in idx], [topics[i] for i in idx]
        folds = min(n_folds, k)
        scores, names = cross_validated_scores(acts[idx], sub_e, sub_t, basis, recipe, n_folds=folds)
        top1, top5 = _rank_estimates(scores, names, sub_e, sub_t, n_resamples, seed)
        points.append(LearningPoint(topics=k, train_topics=k * (folds - 1) / folds, top1=top1, top5=top5))
    return points


def identity_figures(acts: Tensor, emotions: Sequence[str], topics: Sequence[str], basis: Tensor | None,
                     recipe: Recipe, layer: int, *, embedding_acts: Tensor | None = None,
                     embedding_basis: Tensor | None = None, group_sizes: Sequence[int] = (10, 20, 40),
                     curve: Sequence[int] = (4, 8, 12, 16, 20, 26), n_folds: int = 6, n_resamples: int = 1000,
                     seed: int = 0) -> IdentityFigures:
    """Confusions, group accuracy, the learning curve over topics and (given ``embedding_acts``, per-story means of
    the input embeddings) the embedding-layer null, all at one layer (``acts`` ``[n, d]``).

    Example:
        >>> fig = identity_figures(st.acts[:, j], st.labels, st.topics, ext.bases[j], Recipe(), layer=st.layers[j])
    """
    folds = min(n_folds, len(set(topics)))
    scores, names = cross_validated_scores(acts, emotions, topics, basis, recipe, n_folds=folds)
    top1, top5 = _rank_estimates(scores, names, emotions, topics, n_resamples, seed)
    predicted = [names[i] for i in scores.argmax(1).tolist()]
    directions = _directions(acts, emotions, topics, names, basis, recipe)
    groups = [group_accuracy(predicted, emotions, topics, emotion_groups(directions, names, k),
                             n_resamples=n_resamples, seed=seed) for k in group_sizes if k < len(names)]
    figures = IdentityFigures(
        layer=layer, top1=top1, top5=top5, confusions=confusions(predicted, emotions, directions, names),
        groups=groups, learning_curve=topic_learning_curve(acts, emotions, topics, basis, recipe, curve,
                                                           n_folds=n_folds, n_resamples=n_resamples, seed=seed))
    if embedding_acts is not None:
        emb_scores, emb_names = cross_validated_scores(embedding_acts, emotions, topics, embedding_basis, recipe,
                                                       n_folds=folds)
        figures.embedding_top1, figures.embedding_top5 = _rank_estimates(emb_scores, emb_names, emotions, topics,
                                                                         n_resamples, seed)
    return figures


def _directions(acts: Tensor, emotions: Sequence[str], topics: Sequence[str], names: Sequence[str],
                basis: Tensor | None, recipe: Recipe) -> Tensor:
    """The vectors fitted on all stories (rows in ``names`` order), as the readout's unit weights."""
    index = {n: i for i, n in enumerate(names)}
    t_index = {t: i for i, t in enumerate(sorted(set(topics)))}
    scorer = fit_scorer(acts, torch.tensor([index[e] for e in emotions]),
                        torch.tensor([t_index[t] for t in topics]) if recipe.topic_removal else None, len(names),
                        basis, "projection")
    return scorer.weight
