"""Compare story writers on a pilot before a long corpus run: the same emotions, topics and prompt, each writer's
stories read by one reader model and scored three ways.

    python benchmarks/writers.py --writer qwen2.5-coder-1.5b-instruct --emotions 24 --topics 5 --out runs/writers

For each corpus (the writer's new pilot, and the same cells of the shipped corpus for comparison):
- the word classifier (``emovec.validation.text_baseline``): how much emotion the words alone carry;
- the vectors' own topic-held-out classification among the pilot's emotions (reader model, projection readout,
  topic removal, best layer and the layer chosen inside the cross-validation);
- the corpus diagnostic (same-emotion minus unrelated pair cosine, and same-topic minus unrelated).
Stories are generated resumably into ``<out>/<writer>.jsonl``; prints a markdown table and writes ``writers.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from emovec import load_model
from emovec.corpus import Corpus, load_corpus
from emovec.corpus_writer import generate_corpus, plan_crossed
from emovec.data import emotions as all_emotions
from emovec.data import topics
from emovec.metrics import cluster_bootstrap
from emovec.validation import pair_cosines
from emovec.validation.crossval import Recipe, cross_validated_ranks, nested_layer_choice
from emovec.validation.text_baseline import text_baseline
from emovec.vectors import extract_emotion_vectors


def pilot_emotions(n: int) -> list[str]:
    """``n`` emotions spread evenly over the paper's list (which runs roughly through families of feeling)."""
    names = list(all_emotions())
    return [names[round(i * (len(names) - 1) / max(n - 1, 1))] for i in range(n)]


def score(lm, corpus: Corpus, layers: list[int], folds: int, token_start: int) -> dict[str, object]:
    stories = corpus.stories
    words = text_baseline([r.text for r in stories], [str(r.emotion) for r in stories], [r.topic for r in stories],
                          n_folds=folds, n_resamples=500)
    ext = extract_emotion_vectors(lm, corpus, layers=layers, token_start=token_start, show_progress=False,
                                  max_length=160, skip_short=True)
    st = ext.stories
    assert st.topics is not None
    recipe = Recipe(topic_removal=True, readout="projection")
    ranks = cross_validated_ranks(st.acts, st.labels, st.topics, ext.bases, recipe, n_folds=folds)
    top5 = (ranks <= 5).float().mean(1)
    best = int(top5.argmax())
    nested, chosen = nested_layer_choice(st.acts, st.labels, st.topics, ext.bases, recipe,
                                         list(range(len(layers))), n_folds=folds)
    r = nested.numpy().astype(float)
    diag = pair_cosines(st.acts, st.labels, st.topics, st.layers)
    return {
        "stories": len(stories), "names_own_emotion": words.names_own_emotion,
        "words_top1": words.top1.fmt(), "words_top5": words.top5.fmt(),
        "vectors_best_layer": layers[best], "vectors_best_top5": float(top5[best]),
        "vectors_nested_top1": cluster_bootstrap((r == 1).astype(float), st.topics, n_resamples=500).fmt(),
        "vectors_nested_top5": cluster_bootstrap((r <= 5).astype(float), st.topics, n_resamples=500).fmt(),
        "chosen_layers": [layers[c] for c in chosen],
        "emotion_margin": [round(d.emotion_margin, 4) for d in diag],
        "topic_margin": [round(d.same_topic - d.unrelated, 4) for d in diag],
        "mean_words": float(np.mean([len(r.text.split()) for r in stories])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writer", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--reader", default="smollm2-135m-instruct")
    ap.add_argument("--emotions", type=int, default=24)
    ap.add_argument("--topics", type=int, default=5)
    ap.add_argument("--layers", default="6,10,14,18,22")
    ap.add_argument("--token-start", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--out", type=Path, default=Path("runs/writers"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    emos = pilot_emotions(args.emotions)
    cells = {(e, t) for e in emos for t in topics()[: args.topics]}
    shipped = load_corpus()
    old = [r for r in shipped.stories if (r.emotion, r.topic) in cells]
    neutral = tuple(shipped.neutral[:40])
    # both corpora are denoised with the same neutral texts (the shipped ones), so only the stories differ
    corpora = {"smollm2-135m-instruct (shipped corpus)": Corpus(tuple(old) + neutral, shipped.source,
                                                                shipped.settings)}
    path = args.out / f"{args.writer}.jsonl"
    start = time.perf_counter()
    writer = load_model(args.writer)
    jobs = plan_crossed(emos, topics(), args.topics)
    generate_corpus(writer, path, jobs, max_new_tokens=170, temperature=0.8, top_p=0.95, seed=0,
                    batch_size=args.batch_size, design="crossed")
    minutes = (time.perf_counter() - start) / 60
    del writer
    pilot = load_corpus(path)
    corpora[f"{args.writer} (pilot)"] = Corpus(tuple(pilot.stories) + neutral, pilot.source, pilot.settings)
    reader = load_model(args.reader)
    layers = [int(x) for x in args.layers.split(",")]
    rows = {name: score(reader, c, layers, args.topics, args.token_start) for name, c in corpora.items()}
    out = {"emotions": emos, "topics": topics()[: args.topics], "reader": args.reader, "layers": layers,
           "token_start": args.token_start, "writer_minutes": minutes, "chance_top1": 1 / len(emos),
           "chance_top5": min(5, len(emos)) / len(emos), "rows": rows}
    (args.out / "writers.json").write_text(json.dumps(out, indent=1))
    print(f"{len(emos)} emotions x {args.topics} topics, read by {args.reader} at layers {layers}; chance top-1 "
          f"{1 / len(emos):.3f}, top-5 {min(5, len(emos)) / len(emos):.3f}; pilot written in {minutes:.1f} min")
    print("| writer | words: top-1 | words: top-5 | vectors (layer chosen in CV): top-1 | top-5 | names its emotion |"
          " same-emotion margin by layer | same-topic margin by layer |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['words_top1']} | {r['words_top5']} | {r['vectors_nested_top1']} | "
              f"{r['vectors_nested_top5']} | {r['names_own_emotion']:.0%} | {r['emotion_margin']} | "
              f"{r['topic_margin']} |")


if __name__ == "__main__":
    main()
