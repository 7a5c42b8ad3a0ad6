"""How much emotion the *words* of a corpus carry, with no model at all: a bag-of-words classifier (TF-IDF of
word uni- and bigrams, a linear SVM) cross-validated by held-out topic on the same folds as the vectors.

It answers a question the vectors' own figures cannot: when topic-held-out accuracy is low, is the model's
representation to blame, or do the stories themselves say little about which emotion they were written for?
A model's vectors are not bounded by this figure (a model can represent what a word count misses), but when
both sit near chance the corpus is the limit, and a better writer, not a better readout, is the next step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from emovec.errors import CorpusError
from emovec.metrics import Estimate, cluster_bootstrap
from emovec.validation.crossval import topic_folds

__all__ = ["TEXT_BASELINE_METHOD", "TextBaseline", "names_own_emotion", "text_baseline"]

TEXT_BASELINE_METHOD = "TF-IDF word 1-2-grams (sublinear tf, min df 2) + linear SVM (C 0.5), one-vs-rest"


class TextBaseline(BaseModel):
    """Topic-held-out classification of the stories from their words alone (intervals: bootstrap over topics)."""

    method: str
    n_stories: int
    n_folds: int
    top1: Estimate
    top5: Estimate
    mean_rank: Estimate
    names_own_emotion: float  # share of stories whose text contains their own emotion word


def names_own_emotion(texts: Sequence[str], emotions: Sequence[str]) -> float:
    """Share of texts that contain their emotion word as a whole word (case-insensitive)."""
    if not texts:
        return float("nan")
    hits = [bool(re.search(rf"\b{re.escape(e)}\b", t, re.IGNORECASE)) for t, e in zip(texts, emotions, strict=True)]
    return float(np.mean(hits))


def text_baseline(
    texts: Sequence[str],
    emotions: Sequence[str],
    topics: Sequence[str],
    *,
    n_folds: int = 6,
    n_resamples: int = 1000,
    seed: int = 0,
) -> TextBaseline:
    """Rank of the true emotion for every story by a word classifier fitted on the other folds' topics.

    Args:
        texts, emotions, topics: one entry per story.
        n_folds: topics are dealt to this many folds, as ``cross_validated_ranks`` deals them.

    Example:
        >>> tb = text_baseline([r.text for r in stories], [r.emotion for r in stories], [r.topic for r in stories])
        >>> tb.top5.fmt()
    """
    if not (len(texts) == len(emotions) == len(topics)):
        raise ValueError("texts, emotions and topics must have one entry per story")
    if len(set(topics)) < 2 or len(set(emotions)) < 2:
        raise CorpusError("the text baseline needs stories of at least 2 topics and 2 emotions")
    names = sorted(set(emotions))
    code = {n: i for i, n in enumerate(names)}
    y = np.array([code[e] for e in emotions])
    ranks = np.zeros(len(texts), dtype=np.float64)
    folds = topic_folds(topics, n_folds)
    for test in folds:
        train = np.setdiff1d(np.arange(len(texts)), test)
        if len(set(y[train])) < len(names):
            raise CorpusError("a fold leaves some emotion with no training story; use fewer folds")
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        x_train = vectorizer.fit_transform([texts[i] for i in train])
        x_test = vectorizer.transform([texts[i] for i in test])
        clf = LinearSVC(C=0.5).fit(x_train, y[train])
        scores = clf.decision_function(x_test)
        if scores.ndim == 1:  # two emotions: one margin for the second class
            scores = np.stack([-scores, scores], axis=1)
        own = scores[np.arange(len(test)), y[test]]
        ranks[test] = (scores >= own[:, None]).sum(1)  # ties count against the truth, as for the vectors
    estimates = [cluster_bootstrap(v, list(topics), n_resamples=n_resamples, seed=seed)
                 for v in ((ranks == 1).astype(float), (ranks <= 5).astype(float), ranks)]
    return TextBaseline(method=TEXT_BASELINE_METHOD, n_stories=len(texts), n_folds=len(folds), top1=estimates[0],
                        top5=estimates[1], mean_rank=estimates[2],
                        names_own_emotion=names_own_emotion(texts, emotions))
