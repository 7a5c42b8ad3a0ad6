"""Extract emotion vectors from part of the shipped corpus and validate them on stories of unseen topics.

A small version of ``emovec demo`` (which reads all 171 emotions): 8 emotions, 4 topics, 4 layers of the default
model, 64 tokens of each story. Checks that held-out-topic top-1 accuracy beats the shuffled-label baseline,
saves the vector set and writes the validation report.

    python examples/extract_and_validate.py --out runs/example-vectors
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import emovec
from emovec.reports import write_validation_report

EMOTIONS = ("afraid", "angry", "calm", "desperate", "happy", "lonely", "proud", "sad")


def small_corpus(topics: int, neutral: int) -> emovec.Corpus:
    """The stories of ``EMOTIONS`` on the shipped corpus's first ``topics`` topics, and ``neutral`` neutral texts."""
    return emovec.load_corpus().subset(None, neutral, topics=topics, emotions=EMOTIONS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the vector set (default: a temp dir)")
    parser.add_argument("--topics", type=int, default=4, help="topics read (each has a story per emotion)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="emovec-extract-"))

    lm = emovec.load_model()  # the default model, SmolLM2-135M-Instruct
    corpus = small_corpus(args.topics, neutral=24)
    ext = emovec.extract_emotion_vectors(lm, corpus, layers=[4, 8, 12, 16], token_start=10, max_length=64,
                                         skip_short=True, show_progress=True)
    report = emovec.validate(lm, ext.vectors, ext.stories, ext.bases, n_permutations=20, snippets_per_subset=20,
                             n_resamples=200, show_progress=True)
    vectors = ext.vectors.with_recommended_layer(report.recommended_layer)
    vectors.save(out / "vectors", overwrite=True)
    page = write_validation_report(vectors, report, out / "vectors")

    layer = report.recommended_layer
    cv = report.cv_at(layer)
    print(f"{len(vectors.names)} emotion vectors at layers {list(vectors.layers)} from {report.n_stories} stories on "
          f"{report.n_topics} topics")
    print(f"recommended layer {layer}: held-out-topic top-1 {cv.top1.fmt()}, top-5 {cv.top5.fmt()} "
          f"(chance top-1 {report.chance_top1:.3f})")
    for name in ("calm", "desperate"):
        print(f"nearest to {name}: {', '.join(n for n, _ in vectors.nearest(name, layer, k=3))}")
    print(f"vector set: {out / 'vectors'}; report: {page}")
    baseline = report.permutation
    if baseline is None or cv.top1.value <= baseline.top1_p99:
        print(f"FAILED: top-1 {cv.top1.value:.3f} is not above the shuffled-label 99th percentile "
              f"{baseline.top1_p99 if baseline else float('nan'):.3f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
