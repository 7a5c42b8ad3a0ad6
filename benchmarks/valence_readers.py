"""Does a larger reader model make the corpus-trained valence probe agree with people better than VADER does?

    python benchmarks/valence_readers.py --models smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct \\
        --out runs/valence-readers

A measurement, not a speed benchmark. For each reader model: the stories of the first ``--topics`` topics of the
``writers`` corpus are read (tokens 10 to 96) at every ``--layers`` layer; a logistic probe per layer
(``emovec.validation.valence_probe``, its ``C``) is fitted on them, labelled by the NRC EmoLex polarity of each
story's emotion. The layer is chosen on the probe's development sample of VADER snippets (``DEV_PER_SUBSET`` per
subset, seed ``DEV_SEED``: mean r over the four subsets); the figure is read on ``--per-subset`` other snippets
per subset (seed ``--seed``), never on the development sample. Against it on the same snippets: VADER's own
compound score, and the same probe fitted on shuffled polarity labels (the must-beat for the probe itself).

Prints a markdown table and writes ``valence_readers.json`` (per model: chosen layer, dev curve, held-out r per
subset with a Fisher-z interval, VADER's r, the shuffled-label probe's r).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emovec import load_model
from emovec.capture import TokenSelection, capture, readable
from emovec.corpus import load_corpus
from emovec.metrics import pearson_estimate
from emovec.parsing import parse_layers
from emovec.validation.external import SUBSETS, Snippet, nrc_polarity, sample_snippets, vader_compound, vader_snippets
from emovec.validation.valence_probe import DEV_PER_SUBSET, DEV_SEED, held_out, valence_probe
from emovec.validation.validator import SNIPPET_TOKEN_START


def subset_r(snippets: list[Snippet], scores: np.ndarray) -> dict[str, Any]:
    out = {}
    for subset in SUBSETS:
        rows = np.array([i for i, s in enumerate(snippets) if s.subset == subset])
        human = np.array([snippets[i].valence for i in rows])
        out[subset] = pearson_estimate(scores[rows], human).model_dump()
    return out


def read_snippets(lm: Any, snippets: list[Snippet], layers: list[int]) -> tuple[list[Snippet], torch.Tensor]:
    keep = [s for s, ok in zip(snippets, readable(lm, [s.text for s in snippets], SNIPPET_TOKEN_START), strict=True)
            if ok]
    res = capture(lm, [s.text for s in keep], layers, selection=TokenSelection.from_index(SNIPPET_TOKEN_START),
                  show_progress=True, description="snippets")
    return keep, res.means


def one_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    lm = load_model(name)
    layers = lm.check_layers(parse_layers(args.layers)) if args.layers else list(range(2, lm.n_layers, 2))
    corpus = load_corpus("writers").subset(None, None, args.topics)
    stories = corpus.stories
    acts = capture(lm, [r.text for r in stories], layers, selection=TokenSelection.from_index(10),
                   max_length=96, show_progress=True, description="stories").means
    labels = [str(r.emotion) for r in stories]
    polarity = nrc_polarity()
    shuffled = list(np.random.default_rng(args.seed).permutation(labels))
    pool = vader_snippets()
    dev, dev_acts = read_snippets(lm, sample_snippets(pool, DEV_PER_SUBSET, DEV_SEED), layers)
    test, test_acts = read_snippets(lm, sample_snippets(held_out(pool), args.per_subset, args.seed), layers)
    curve = {}
    weights = {}
    for j, layer in enumerate(layers):
        _, w = valence_probe(acts[:, j], labels, polarity, layer)
        weights[layer] = w
        dev_r = subset_r(dev, dev_acts[:, j].double().numpy() @ w)
        curve[layer] = float(np.mean([dev_r[s]["value"] for s in SUBSETS]))
    best = max(curve, key=lambda k: curve[k])
    j = layers.index(best)
    _, w_shuffled = valence_probe(acts[:, j], shuffled, polarity, best)
    vader = vader_compound([s.text for s in test])
    return {"model": lm.name, "layers": layers, "stories": len(stories), "dev_curve": curve, "layer": best,
            "n_test": len(test), "probe": subset_r(test, test_acts[:, j].double().numpy() @ weights[best]),
            "shuffled_probe": subset_r(test, test_acts[:, j].double().numpy() @ w_shuffled),
            "vader": None if vader is None else subset_r(test, vader),
            "seconds": round(time.perf_counter() - start, 1)}


def fmt(e: dict[str, Any]) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--topics", type=int, default=8)
    ap.add_argument("--layers", default=None, help="default: every second layer")
    ap.add_argument("--per-subset", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/valence-readers")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [one_model(m.strip(), args) for m in args.models.split(",")]
    (out / "valence_readers.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print("| reader (layer) | subset | probe r [95% CI] | shuffled-label probe r | VADER r |")
    print("|---|---|---|---|---|")
    for r in results:
        for s in SUBSETS:
            vader = fmt(r["vader"][s]) if r["vader"] else "n/a"
            print(f"| {r['model']} ({r['layer']}) | {s} | {fmt(r['probe'][s])} | {fmt(r['shuffled_probe'][s])} | "
                  f"{vader} |")


if __name__ == "__main__":
    main()
