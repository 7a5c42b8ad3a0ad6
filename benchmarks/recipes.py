"""Measure the emotion recipe's choices on a story corpus: token start, neutral denoising, topic removal, readout.

One pass through the model keeps every token's activations (float16) at the chosen layers; each story's mean
from every token start is taken from them, so all recipes are compared on the same stories and layers. Each
recipe is scored by topic-held-out cross-validation with the layer chosen inside it (nested: the unbiased
figure), plus the best single layer of the curve.

    python benchmarks/recipes.py --model smollm2-135m-instruct --topics 12 --max-length 128 --out runs/recipes

Prints a markdown table and writes ``recipes.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from emovec import load_model
from emovec.capture import TokenSelection, capture
from emovec.corpus import load_corpus
from emovec.metrics import cluster_bootstrap
from emovec.validation.crossval import Recipe, cross_validated_ranks, nested_layer_choice
from emovec.vectors.extract import neutral_subspace


def story_means(lm, texts: list[str], layers: list[int], starts: list[int], max_length: int,
                chunk: int = 128) -> torch.Tensor:
    """``[len(starts), n_texts, n_layers, d]`` mean activation from each token start to the text's end."""
    out = torch.zeros(len(starts), len(texts), len(layers), lm.d_model)
    for a in range(0, len(texts), chunk):
        res = capture(lm, texts[a:a + chunk], layers, selection=TokenSelection.from_index(0), keep_tokens=True,
                      max_length=max_length)
        assert res.tokens is not None
        for i, tok in enumerate(res.tokens):  # [L, n_tokens, d]
            csum = tok.flip(1).cumsum(1).flip(1)  # sum over positions >= s
            n = tok.shape[1]
            for k, s in enumerate(starts):
                s_eff = min(s, n - 1)
                out[k, a + i] = csum[:, s_eff] / (n - s_eff)
        print(f"  read {min(a + chunk, len(texts))}/{len(texts)} texts", flush=True)
    return out


def score(acts: torch.Tensor, emotions: list[str], topics: list[str], bases: list, recipe: Recipe, layers: list[int],
          folds: int) -> dict:
    """Nested topic-held-out CV (layer chosen inside) with intervals over topics, and the best layer's figures."""
    ranks = cross_validated_ranks(acts, emotions, topics, bases, recipe, n_folds=folds)
    top5 = (ranks <= 5).float().mean(1)
    best = int(top5.argmax())
    nested, chosen = nested_layer_choice(acts, emotions, topics, bases, recipe, list(range(len(layers))),
                                         n_folds=folds)
    est = {name: cluster_bootstrap(v.numpy().astype(float), topics, n_resamples=500).model_dump()
           for name, v in (("top1", (nested == 1).float()), ("top5", (nested <= 5).float()),
                           ("mean_rank", nested.float()))}
    return {"nested": est, "chosen_layers": [layers[c] for c in chosen], "best_layer": layers[best],
            "best_layer_top1": float((ranks[best] == 1).float().mean()), "best_layer_top5": float(top5[best]),
            "curve_top5": {layers[j]: float(top5[j]) for j in range(len(layers))},
            "curve_top1": {layers[j]: float((ranks[j] == 1).float().mean()) for j in range(len(layers))}}


def fmt(e: dict, d: int = 3) -> str:
    return f"{e['value']:.{d}f} [{e['low']:.{d}f}, {e['high']:.{d}f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--topics", type=int, default=20)
    ap.add_argument("--select-topics", type=int, default=10, help="recipes are compared on the first N topics")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--layers", default="2-28:2")
    ap.add_argument("--starts", default="0,10,25,50")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--permutations", type=int, default=50)
    ap.add_argument("--only", default=None, help="start,denoise,removal,readout: score just this recipe")
    ap.add_argument("--out", default="runs/recipes")
    args = ap.parse_args()
    from emovec.parsing import parse_layers
    from emovec.validation.crossval import permutation_baseline

    lm = load_model(args.model)
    layers = lm.check_layers(parse_layers(args.layers))
    starts = [int(s) for s in args.starts.split(",")]
    corpus = load_corpus(args.corpus).subset(None, None, args.topics)
    lengths = [len(x) for x in lm.tokenizer([r.text for r in corpus.stories])["input_ids"]]
    stories = [r for r, n in zip(corpus.stories, lengths, strict=True) if min(n, args.max_length) > max(starts) + 5]
    neutral = corpus.neutral
    t0 = time.time()
    acts = story_means(lm, [r.text for r in stories] + [r.text for r in neutral], layers, starts, args.max_length)
    read_s = time.time() - t0
    emotions = [str(r.emotion) for r in stories]
    topics = [r.topic for r in stories]
    order = list(dict.fromkeys(topics))
    sel_topics = set(order[: args.select_topics])
    sel = torch.tensor([t in sel_topics for t in topics])
    rep = ~sel
    n_st = len(stories)

    def subset(mask: torch.Tensor, k: int) -> tuple[torch.Tensor, list[str], list[str]]:
        idx = mask.nonzero().flatten()
        return acts[k, idx], [emotions[i] for i in idx], [topics[i] for i in idx]

    bases_by_start = {k: [neutral_subspace(acts[k, n_st:, j], 0.5)[0] for j in range(len(layers))]
                      for k in range(len(starts))}
    configs = list(itertools.product(range(len(starts)), (True, False), (True, False), ("projection", "lda")))
    if args.only:
        st, dn, rm, ro = args.only.split(",")
        configs = [(starts.index(int(st)), dn == "on", rm == "on", ro)]
    rows = []
    for k, denoise, removal, readout in configs:
        recipe = Recipe(topic_removal=removal, readout=readout)  # type: ignore[arg-type]
        bases = bases_by_start[k] if denoise else [None] * len(layers)
        a, e, t = subset(sel, k) if not args.only else subset(torch.ones(n_st, dtype=torch.bool), k)
        row = {"token_start": starts[k], "denoise": denoise, "topic_removal": removal, "readout": readout,
               **score(a, e, t, bases, recipe, layers, args.folds)}
        rows.append(row)
        print(json.dumps({k2: v for k2, v in row.items() if not k2.startswith("curve")}), flush=True)
    best = max(rows, key=lambda r: (r["nested"]["top5"]["value"], -r["nested"]["mean_rank"]["value"]))
    k = starts.index(best["token_start"])
    recipe = Recipe(topic_removal=best["topic_removal"], readout=best["readout"])
    bases = bases_by_start[k] if best["denoise"] else [None] * len(layers)
    report = {}
    if args.only or rep.any():
        a, e, t = subset(torch.ones(n_st, dtype=torch.bool) if args.only else rep, k)
        report = best if args.only else score(a, e, t, bases, recipe, layers, args.folds)
        j = layers.index(max(set(report["chosen_layers"]), key=report["chosen_layers"].count))
        perm = permutation_baseline(a[:, j], e, t, bases[j], recipe, n_permutations=args.permutations,
                                    n_folds=args.folds)
        report["permutation"] = {"layer": layers[j], "top1_p99": float(np.percentile(perm[:, 0], 99)),
                                 "top5_p99": float(np.percentile(perm[:, 1], 99)),
                                 "mean_rank_p01": float(np.percentile(perm[:, 2], 1)),
                                 "top1_mean": float(perm[:, 0].mean()), "top5_mean": float(perm[:, 1].mean())}
    curve = {}
    for n_topics in range(4, len(order) + 1, 4):
        keep = torch.tensor([t in set(order[:n_topics]) for t in topics])
        a, e, t = subset(keep, k)
        ranks = cross_validated_ranks(a, e, t, bases, recipe, n_folds=min(args.folds, n_topics))
        curve[n_topics] = {"top1": float((ranks == 1).float().mean(1).max()),
                           "top5": float((ranks <= 5).float().mean(1).max())}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "topics": len(order), "select_topics": args.select_topics, "stories": n_st,
            "neutral": len(neutral), "layers": layers, "max_length": args.max_length, "folds": args.folds,
            "read_seconds": read_s}
    result = {"meta": meta, "rows": rows, "best": {k2: best[k2] for k2 in ("token_start", "denoise", "topic_removal",
                                                                          "readout")},
              "report_topics": report, "learning_curve": curve}
    (out / "recipes.json").write_text(json.dumps(result, indent=1))
    print(f"\n{meta}\n")
    print("| token start | denoise | topic removal | readout | top-1 (nested) | top-5 (nested) | mean rank | layers |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["nested"]
        print(f"| {r['token_start']} | {'on' if r['denoise'] else 'off'} | {'on' if r['topic_removal'] else 'off'} | "
              f"{r['readout']} | {fmt(n['top1'])} | {fmt(n['top5'])} | {fmt(n['mean_rank'], 1)} | "
              f"{sorted(set(r['chosen_layers']))} |")
    if report:
        n = report["nested"]
        where = "all topics" if args.only else f"the other {len(order) - args.select_topics} topics"
        print(f"\nbest recipe {result['best']} on {where}: top-1 "
              f"{fmt(n['top1'])}, top-5 {fmt(n['top5'])}, mean rank {fmt(n['mean_rank'], 1)}, layers "
              f"{report['chosen_layers']}; permutation {report['permutation']}")
    print(f"learning curve (best layer, all topics up to n): {curve}")


if __name__ == "__main__":
    main()
