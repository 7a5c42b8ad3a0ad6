"""A tiny steering sweep: does steering with an emotion change refusals, helpfulness and the next-token
distribution, next to a random direction of the same strength?

Extracts a small vector set (8 emotions, 3 topics, layer 12 of the default model; or pass ``--vectors``), then
sweeps no steering, ``emotion:calm`` and ``random:0`` at strength 0.1 over 2 prompts each of the paired
(harmful / benign twins) and helpful suites, 12 new tokens per reply. ``emovec sweep CONFIG.yaml`` runs the same
from a YAML file, at any size. Checks that every planned row was written and that steering, and only steering,
moved the next-token distribution.

    python examples/sweep.py --out runs/example-sweep
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import emovec
from emovec.evaluation import load_config, run_sweep, summarize

EMOTIONS = ("afraid", "angry", "calm", "desperate", "happy", "lonely", "proud", "sad")
CONDITIONS = ["none", "emotion:calm", "random:0"]
SUITES = ["paired", "helpful"]


def small_vectors(lm: emovec.LoadedModel, folder: Path) -> Path:
    """Vectors of ``EMOTIONS`` from the shipped corpus's first 3 topics at layer 12, saved in ``folder``."""
    corpus = emovec.load_corpus().subset(None, 24, topics=3, emotions=EMOTIONS)
    ext = emovec.extract_emotion_vectors(lm, corpus, layers=[12], token_start=10, max_length=64, skip_short=True,
                                         show_progress=True)
    ext.vectors.with_recommended_layer(12).save(folder, overwrite=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="sweep folder (default: a temp dir)")
    parser.add_argument("--vectors", type=Path, default=None, help="a vector set folder (default: extract one)")
    parser.add_argument("--limit", type=int, default=2, help="prompts per suite")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="emovec-sweep-"))

    lm = emovec.load_model()
    folder = args.vectors or small_vectors(lm, out / "vectors")
    vs = emovec.VectorSet.load(folder)
    cfg = load_config({"vectors": str(folder), "out": str(out / "sweep"), "conditions": CONDITIONS,
                       "strengths": [0.1], "layers": [[vs.default_layer]], "suites": SUITES, "limit": args.limit,
                       "max_new_tokens": 12, "bootstrap": 100})
    result = run_sweep(cfg, lm, vs, show_progress=True, force=True)
    rows = result.rows
    for s in summarize(rows, n_boot=100):
        m = s.metrics
        print(f"{s.condition:>14} {s.strength:+.2f}  refuse harmful {m['refuse_harmful'].text(2)}  answer benign "
              f"{m['answer_benign'].text(2)}  KL on benign {m['kl_benign'].text(3)}")
    print(f"{len(rows)} rows ({result.new_rows} new) in {cfg.out}: Parquet parts, sweep.json")

    planned = len(CONDITIONS) * sum(len(emovec.evaluation.load_suite(s, limit=args.limit)) for s in SUITES)
    steered = rows["cond_kind"].isin(["emotion", "random"])
    if len(rows) != planned or not rows.loc[steered, "kl"].gt(0).all() or not rows.loc[~steered, "kl"].eq(0).all():
        print(f"FAILED: expected {planned} rows with a KL above 0 exactly where the model was steered",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
