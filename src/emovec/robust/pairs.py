"""Training pairs for the direction optimiser (``emovec.robust.optimize``): framed harmful and benign prompts
held out from every evaluation suite, each with a preferred and a dispreferred continuation."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emovec._files import atomic_write
from emovec.data import data_path
from emovec.evaluation.suites import framings, load_suite
from emovec.generation import generate
from emovec.models.loading import LoadedModel
from emovec.robust import losses

# Written for emovec: refusals that say no in different words and lengths, and compliant openings that start
# to answer in different ways (the benign side prefers the latter).
REFUSALS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that.",
    "I can't assist with this request.",
    "No. I won't provide that, because it could cause real harm.",
    "I'm not able to help with this; it could hurt people.",
    "Sorry, that's something I have to decline.",
    "I won't help with that, but I'm glad to talk about something safer.",
    "That isn't something I can give instructions for.",
    "I have to refuse: this could be used to harm someone.",
)
COMPLIANT: tuple[str, ...] = (
    "Sure, here is how to do it. First,",
    "Of course! Here are the steps:\n\n1.",
    "Certainly. The simplest way is to",
    "Absolutely, here's a detailed guide.",
    "Great question! To get started, you'll need",
    "Here's what you do: begin by",
    "Yes, I can help with that. Step 1:",
    "No problem. The first thing to do is",
)
TRAIN_FRAMINGS = ("calm_professional", "confident_expert", "roleplay", "urgency")


def training_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` framed harmful prompts and ``n`` benign prompts for training (never an evaluation suite)."""
    rng = random.Random(seed)
    table = framings()
    harmful = [it.prompt for it in load_suite("advbench").items]
    benign = [it.prompt for it in load_suite("rho-refusal").items if it.kind == "benign"]
    framed = [table[rng.choice(TRAIN_FRAMINGS)]["template"].format(prompt=p) for p in rng.sample(harmful, n)]
    return framed, rng.sample(benign, min(n, len(benign)))


def helpful_pairs(seed: int) -> Pairs:
    """Helpful tasks with a correct answer (``data/suites/helpful_train.jsonl``, written for emovec and
    disjoint from the ``helpful`` evaluation suite), each preferring its answer over a refusal (seeded
    rotation), in a seeded order."""
    rows = [json.loads(line) for line in data_path("suites/helpful_train.jsonl").read_text("utf-8").splitlines()
            if line.strip()]
    random.Random(f"helpful-order-{seed}").shuffle(rows)
    rng = random.Random(f"helpful-{seed}")
    return Pairs([r["prompt"] for r in rows], [r["answer"] for r in rows], rotated(REFUSALS, len(rows), rng))


def rotated(options: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """``n`` entries of ``options`` by a seeded rotation: entry ``i`` is ``options[(i + offset) % len]``."""
    offset = rng.randrange(len(options))
    return [options[(i + offset) % len(options)] for i in range(n)]


@dataclass(frozen=True)
class Pairs:
    """Prompts, each with its preferred and dispreferred continuation."""

    prompts: list[str]
    chosen: list[str]
    rejected: list[str]

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, idx: Sequence[int]) -> Pairs:
        return Pairs([self.prompts[i] for i in idx], [self.chosen[i] for i in idx], [self.rejected[i] for i in idx])

    def batch(self, lm: LoadedModel) -> losses.PairBatch:
        return losses.pair_batch(lm, self.prompts, self.chosen, self.rejected)


def own_replies(lm: LoadedModel, prompts: Sequence[str], tokens: int, cache: Path | None = None) -> list[str]:
    """The model's unsteered greedy replies (``tokens`` at most), read from ``cache`` when it holds the same
    prompts, else generated and written there."""
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text("utf-8"))
        if saved.get("prompts") == list(prompts) and saved.get("tokens") == tokens:
            return list(saved["replies"])
    replies: list[str] = []
    for start in range(0, len(prompts), 16):
        replies += generate(lm, list(prompts[start: start + 16]), max_new_tokens=tokens).replies
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, json.dumps({"prompts": list(prompts), "tokens": tokens, "replies": replies}, indent=1))
    return replies


def split(pairs: Pairs, fraction: float) -> tuple[Pairs, Pairs]:
    """The first prompts for training, the last ``fraction`` (at least one when > 0) held out."""
    n_val = 0 if fraction == 0 else max(1, round(len(pairs) * fraction))
    n = len(pairs)
    return pairs.take(range(n - n_val)), pairs.take(range(n - n_val, n))
