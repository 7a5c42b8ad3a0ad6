"""A small run of the stability study: are the policy-dominance study's key emotion vectors stable, and how does
that grow with the number of stories per emotion?

The studies' quick presets take 13-20 minutes on 2 CPU cores, so this runs the stability-by-count study
(``emovec study stability``) small: the 6 key emotions plus 4 others, 4 and 8 stories per emotion, 64 tokens of
each story, 10 random topic halvings per count. Prints split-half cosine against its shuffled-label null and
the held-out readout AUC, and writes the curve as JSON. Checks that every figure is finite and in range.

    python examples/stability_study.py --out runs/example-stability
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import emovec
from emovec.studies import KEY_VECTORS, pool_emotions, study_layer
from emovec.studies.stability import stability_curve, write_curve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for stability.json (default: a temp dir)")
    parser.add_argument("--counts", default="4,8", help="stories per emotion, comma-separated (each at least 4)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="emovec-stability-"))

    lm = emovec.load_model()
    keys = list(KEY_VECTORS.values())
    pool = pool_emotions(emovec.load_corpus().emotions(), keys, background=4, seed=0)
    counts = [int(c) for c in args.counts.split(",")]
    curve = stability_curve(lm, keys, pool, study_layer(lm, None), counts=counts, max_length=64, n_splits=10,
                            show_progress=True)
    path = write_curve(curve, out / "stability.json", overwrite=True)
    print(f"{curve.model}, layer {curve.layer}, key vectors {', '.join(keys)} (pool of {len(pool)} emotions)")
    print(curve.table())
    print(f"written: {path}")
    figures = [v for r in curve.rows for v in (r.mean_split_half, r.mean_null_high, r.mean_readout_auc)]
    if [r.per_emotion for r in curve.rows] != sorted(counts) or not all(
            math.isfinite(v) and -1.0 <= v <= 1.0 for v in figures):
        print(f"FAILED: expected finite cosines and AUCs for counts {sorted(counts)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
