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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--topics", type=int, default=12)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--layers", default="2-28:2")
    ap.add_argument("--starts", default="0,10,25,50")
    ap.add_argument("--folds", type=int, default=6)
    ap.add_argument("--out", default="runs/recipes")
    args = ap.parse_args()
    from emovec.cli import parse_layers

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
    n_st = len(stories)
    rows = []
    for k, start in enumerate(starts):
        s_acts, n_acts = acts[k, :n_st], acts[k, n_st:]
        bases_on = [neutral_subspace(n_acts[:, j], 0.5)[0] for j in range(len(layers))]
        for denoise, removal, readout in itertools.product((True, False), (True, False), ("projection", "lda")):
            recipe = Recipe(topic_removal=removal, readout=readout)  # type: ignore[arg-type]
            bases = bases_on if denoise else [None] * len(layers)
            ranks = cross_validated_ranks(s_acts, emotions, topics, bases, recipe, n_folds=args.folds)
            top5 = (ranks <= 5).float().mean(1)
            best = int(top5.argmax())
            nested, chosen = nested_layer_choice(s_acts, emotions, topics, bases, recipe, list(range(len(layers))),
                                                 n_folds=args.folds)
            est = {name: cluster_bootstrap(v.numpy().astype(float), topics, n_resamples=500).model_dump()
                   for name, v in (("top1", (nested == 1).float()), ("top5", (nested <= 5).float()),
                                   ("mean_rank", nested.float()))}
            row = {"token_start": start, "denoise": denoise, "topic_removal": removal, "readout": readout,
                   "nested": est, "chosen_layers": [layers[c] for c in chosen], "best_layer": layers[best],
                   "best_layer_top1": float((ranks[best] == 1).float().mean()), "best_layer_top5": float(top5[best]),
                   "curve_top5": {layers[j]: float(top5[j]) for j in range(len(layers))}}
            rows.append(row)
            print(json.dumps({k2: v for k2, v in row.items() if k2 != "curve_top5"}), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "topics": args.topics, "stories": n_st, "neutral": len(neutral), "layers": layers,
            "max_length": args.max_length, "folds": args.folds, "read_seconds": read_s}
    (out / "recipes.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\n{meta}\n")
    print("| token start | denoise | topic removal | readout | top-1 (nested) | top-5 (nested) | mean rank | layers |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["nested"]
        fmt = lambda e, d=3: f"{e['value']:.{d}f} [{e['low']:.{d}f}, {e['high']:.{d}f}]"  # noqa: E731
        print(f"| {r['token_start']} | {'on' if r['denoise'] else 'off'} | {'on' if r['topic_removal'] else 'off'} | "
              f"{r['readout']} | {fmt(n['top1'])} | {fmt(n['top5'])} | {fmt(n['mean_rank'], 1)} | "
              f"{sorted(set(r['chosen_layers']))} |")


if __name__ == "__main__":
    main()
