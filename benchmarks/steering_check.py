"""Does steering with a vector set change what the model writes, as an outside judge sees it?

    python benchmarks/steering_check.py --vectors runs/demo --out runs/steering-check

A measurement, not a speed benchmark. Prompts are people's own chat messages (the BYU Chit-Chat Challenge, read
from the installed ``chitchat-dataset`` package: nobody here wrote them); replies are greedy generations of the
vector set's model, unsteered, steered with six emotions that have a Plutchik counterpart (happy, angry, afraid,
sad, disgusted, surprised) and steered with random directions of the same norm, at the set's recommended layer
and two strengths fixed in advance (the paper's 0.05 and 0.1 of the mean residual norm). The judge is ``nade``
(an emoji-trained fastText + LightGBM model sharing no weights with the steered model), scoring Plutchik's eight
emotions per reply.

For each emotion E and strength: the shift of nade's score for E's counterpart over the unsteered reply to the
same prompt (mean over prompts, bootstrap 95% interval over prompts), against the same score's shift under each
random direction (the random range, and how many random shifts E's exceeds). Also the share of replies whose
top nade emotion is E's counterpart, and the perplexity of steered replies under the unsteered model (side
effects). Writes ``steering_check.json`` and prints a markdown table and one example reply per condition.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emovec import VectorSet, load_model
from emovec.evaluation import SweepConfig
from emovec.evaluation.judges.emotion import plutchik_of
from emovec.evaluation.store import read_results
from emovec.evaluation.sweep import run_sweep
from emovec.metrics import bootstrap
from emovec.validation.external import chitchat_messages

EMOTIONS = ("happy", "angry", "afraid", "sad", "disgusted", "surprised")
STRENGTHS = (0.05, 0.1)


def chat_prompts(n: int, seed: int) -> list[str]:
    """``n`` people's chat messages that ask something (end in ``?``), 6-30 words, drawn with ``seed``."""
    texts = {s.text for s in chitchat_messages(min_words=6)}
    pool = sorted(t for t in texts if t.endswith("?") and len(t.split()) <= 30)
    return random.Random(seed).sample(pool, n)


def write_suite(prompts: list[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["goal"])
        writer.writerows([p] for p in prompts)
    return path


def shifts(rows: pd.DataFrame, strength: float, condition: str, score: str) -> np.ndarray:
    """Per prompt: ``score`` under ``condition`` at ``strength`` minus the unsteered reply's."""
    base = rows[rows.condition == "none"].set_index("item_id")[score]
    steered = rows[(rows.condition == condition) & np.isclose(rows.strength, strength)].set_index("item_id")[score]
    common = base.index.intersection(steered.index)
    return (steered[common] - base[common]).to_numpy(dtype=float)


def summarise(rows: pd.DataFrame, n_random: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for strength in STRENGTHS:
        for emotion in EMOTIONS:
            basic = plutchik_of(emotion)
            score = f"nade_{basic}"
            own = shifts(rows, strength, f"emotion:{emotion}", score)
            rand = [float(shifts(rows, strength, f"random:{s}", score).mean()) for s in range(n_random)]
            est = bootstrap(own, seed=0)
            mine = rows[(rows.condition == f"emotion:{emotion}") & np.isclose(rows.strength, strength)]
            top = mine[[f"nade_{b}" for b in ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise",
                                              "trust")]].idxmax(axis=1)
            out.append({"strength": strength, "emotion": emotion, "judge_score": score, "n": int(own.size),
                        "shift": est.model_dump(), "random_shifts": rand,
                        "beats_random": int(sum(est.value > r for r in rand)),
                        "top_is_counterpart": float((top == score).mean()),
                        "perplexity": float(mine.perplexity.median())})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", default="runs/demo")
    ap.add_argument("--out", default="runs/steering-check")
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--random", type=int, default=6, help="random directions per strength")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--layer", type=int, default=None, help="default: the set's recommended layer")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    start = time.perf_counter()
    out = Path(args.out)
    vs = VectorSet.load(args.vectors)
    layer = args.layer if args.layer is not None else vs.default_layer
    suite = write_suite(chat_prompts(args.prompts, args.seed), out / "chat_prompts.csv")
    conditions = ["none", *(f"emotion:{e}" for e in EMOTIONS), *(f"random:{s}" for s in range(args.random))]
    config = SweepConfig.model_validate({
        "vectors": args.vectors, "out": str(out / "sweep"), "conditions": conditions, "strengths": list(STRENGTHS),
        "layers": [[layer]], "suites": [str(suite)], "limit": args.prompts, "max_new_tokens": args.max_new_tokens, "perplexity": True,
        "kl": False, "logodds": False})
    source = vs.provenance.model
    lm = load_model(source.name if source.kind == "builtin" else source.location)
    run_sweep(config, lm, vs, show_progress=True)
    rows = read_results(config.out)
    table = summarise(rows, args.random)
    result = {"vectors": args.vectors, "model": lm.name, "layer": layer, "strengths": list(STRENGTHS),
              "prompts": args.prompts, "random_directions": args.random, "max_new_tokens": args.max_new_tokens,
              "seed": args.seed, "prompt_source": "chitchat-dataset (BYU Chit-Chat Challenge, MIT), questions",
              "judge": "nade", "base_perplexity": float(rows[rows.condition == "none"].perplexity.median()),
              "seconds": round(time.perf_counter() - start, 1), "rows": table}
    (out / "steering_check.json").write_text(json.dumps(result, indent=1))
    print(f"layer {layer}; {args.prompts} chat questions; {args.random} random directions per strength; "
          f"unsteered median perplexity {result['base_perplexity']:.1f}")
    print("| strength | emotion | nade score | shift [95% CI] | random shifts (min..max) | beats random | "
          "top is counterpart | median perplexity |")
    print("|---|---|---|---|---|---|---|---|")
    for r in table:
        s = r["shift"]
        rs = r["random_shifts"]
        print(f"| {r['strength']} | {r['emotion']} | {r['judge_score']} | {s['value']:+.3f} [{s['low']:+.3f}, "
              f"{s['high']:+.3f}] | {min(rs):+.3f}..{max(rs):+.3f} | {r['beats_random']}/{len(rs)} | "
              f"{r['top_is_counterpart']:.2f} | {r['perplexity']:.1f} |")
    first = rows.item_id.min()
    for cond, group in rows[rows.item_id == first].groupby(["condition", "strength"]):
        print(f"\n[{cond[0]} @ {cond[1]}] {group.reply.iloc[0][:200]!r}")


if __name__ == "__main__":
    main()
