"""A trained probe on the model's activations against the words alone: which tells 171 emotions apart better on
unseen topics?

    python benchmarks/identity_probe.py runs/corpora/writers --out runs/identity-probe

A measurement, not a speed benchmark. It reads the story activations ``emovec extract`` cached beside a vector set
(``stories.safetensors``; no forward pass) and the corpus's texts, and scores, on the same topic folds as
``emovec inspect`` (topics dealt round-robin in first-seen order):

- the vectors' own readout as ``emovec inspect`` reports it is not recomputed here (see its report);
- **words alone**: ``emovec.validation.text_baseline`` (TF-IDF + linear SVM), the must-beat;
- **a trained probe**: a ridge classifier (one-vs-rest, standardised activations) with its layer and penalty
  chosen inside each outer fold by an inner topic-held-out cross-validation on the training topics only (nested,
  so the figure never saw its own test topics);
- **probe + words**: the two classifiers' standardised scores summed (no weight tuned).

Top-1 / top-5 / mean rank of the true emotion with 95% bootstrap intervals over topics; chance is 1/171 and 5/171.
Writes ``identity_probe.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import RidgeClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from emovec.corpus import load_corpus
from emovec.metrics import cluster_bootstrap
from emovec.validation.crossval import topic_folds
from emovec.vectors.story_cache import load_stories, tensors_hash

ALPHAS = (100.0, 1000.0, 10000.0, 30000.0, 100000.0)


def ranks(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    own = scores[np.arange(len(truth)), truth]
    return (scores >= own[:, None]).sum(1)


def ridge_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    scaler = StandardScaler().fit(x_train)
    clf = RidgeClassifier(alpha=alpha).fit(scaler.transform(x_train), y_train)
    return np.asarray(clf.decision_function(scaler.transform(x_test)))


def choose(acts: np.ndarray, y: np.ndarray, topics: list[str], train: np.ndarray, layers: list[int],
           inner_folds: int) -> tuple[int, float]:
    """The layer index and penalty with the best inner topic-held-out top-5 (then mean rank) on ``train``."""
    inner = topic_folds([topics[i] for i in train], inner_folds)
    best: tuple[float, float, int, float] | None = None
    for j in range(len(layers)):
        for alpha in ALPHAS:
            r = np.zeros(len(train))
            for test in inner:
                fit = np.setdiff1d(np.arange(len(train)), test)
                r[test] = ranks(ridge_scores(acts[train[fit], j], y[train[fit]], acts[train[test], j], alpha),
                                y[train[test]])
            key = (float((r <= 5).mean()), -float(r.mean()), j, alpha)
            if best is None or key[:2] > best[:2]:
                best = key
    assert best is not None
    return best[2], best[3]


def word_scores(texts: list[str], y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    clf = LinearSVC(C=0.5).fit(vectorizer.fit_transform([texts[i] for i in train]), y[train])
    return np.asarray(clf.decision_function(vectorizer.transform([texts[i] for i in test])))


def zscore(s: np.ndarray) -> np.ndarray:
    return (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-9)


def summary(r: np.ndarray, topics: list[str]) -> dict[str, Any]:
    return {name: cluster_bootstrap(v, topics, seed=0).model_dump()
            for name, v in (("top1", (r == 1).astype(float)), ("top5", (r <= 5).astype(float)),
                            ("mean_rank", r.astype(float)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("vectors", help="a vector set folder with stories.safetensors (emovec extract writes it)")
    ap.add_argument("--folds", type=int, default=6)
    ap.add_argument("--inner-folds", type=int, default=4)
    ap.add_argument("--layers", default=None, help="comma-separated layers to choose from (default: all cached)")
    ap.add_argument("--out", default="runs/identity-probe")
    args = ap.parse_args()
    start = time.perf_counter()
    folder = Path(args.vectors)
    cached = load_stories(folder, tensors_hash(folder))
    if cached is None:
        raise SystemExit(f"{folder} has no usable stories.safetensors: run `emovec extract` into it first")
    stories, _ = cached
    meta = json.loads((folder / "vectors.json").read_text(encoding="utf-8"))
    corpus_file = meta["provenance"]["corpus"]["path"]
    if stories.topics is None:
        raise SystemExit(f"{folder}'s cached stories carry no topics; re-extract with a crossed corpus")
    topics = list(stories.topics)
    records = [r for r in load_corpus(corpus_file).stories]
    by_cell = {(str(r.emotion), r.topic): r.text for r in records}
    texts = [by_cell[(lab, top)] for lab, top in zip(stories.labels, topics, strict=True)]
    names = sorted(set(stories.labels))
    y = np.array([names.index(lab) for lab in stories.labels])
    keep = [stories.layers.index(int(x)) for x in args.layers.split(",")] if args.layers else list(
        range(len(stories.layers)))
    layers = [stories.layers[j] for j in keep]
    acts = stories.acts[:, keep].numpy().astype(np.float32)
    r_probe, r_words, r_both = (np.zeros(len(y)) for _ in range(3))
    chosen = []
    for k, test in enumerate(topic_folds(topics, args.folds)):
        train = np.setdiff1d(np.arange(len(y)), test)
        j, alpha = choose(acts, y, topics, train, layers, args.inner_folds)
        chosen.append({"fold": k, "layer": layers[j], "alpha": alpha})
        probe = ridge_scores(acts[train, j], y[train], acts[test, j], alpha)
        words = word_scores(texts, y, train, test)
        r_probe[test], r_words[test] = ranks(probe, y[test]), ranks(words, y[test])
        r_both[test] = ranks(zscore(probe) + zscore(words), y[test])
        print(f"fold {k}: layer {layers[j]}, alpha {alpha}: probe top-1 {(r_probe[test] == 1).mean():.3f}, "
              f"words {(r_words[test] == 1).mean():.3f}", flush=True)
    result = {"vectors": str(folder), "corpus": corpus_file, "stories": len(y), "emotions": len(names),
              "topics": len(set(topics)), "folds": args.folds, "inner_folds": args.inner_folds, "layers": layers,
              "alphas": list(ALPHAS), "chosen": chosen, "probe": summary(r_probe, topics),
              "words": summary(r_words, topics), "probe_plus_words": summary(r_both, topics),
              "seconds": round(time.perf_counter() - start, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "identity_probe.json").write_text(json.dumps(result, indent=1))

    def fmt(e: dict[str, Any], d: int = 3) -> str:
        return f"{e['value']:.{d}f} [{e['low']:.{d}f}, {e['high']:.{d}f}]"

    print(f"\n{len(y)} stories, {len(names)} emotions, {len(set(topics))} topics, {args.folds} topic folds; "
          f"chance top-1 {1 / len(names):.3f}, top-5 {5 / len(names):.3f}")
    print("| classifier | top-1 | top-5 | mean rank |\n|---|---|---|---|")
    for label, key in (("words alone (TF-IDF + linear SVM)", "words"), ("trained probe (ridge, nested)", "probe"),
                       ("probe + words", "probe_plus_words")):
        s = result[key]
        print(f"| {label} | {fmt(s['top1'])} | {fmt(s['top5'])} | {fmt(s['mean_rank'], 1)} |")


if __name__ == "__main__":
    main()
