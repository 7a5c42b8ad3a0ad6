"""What a drift monitor measures at one checkpoint, in forward passes on the fixed probe sets.

Every quantity is read at one layer (the vector set's recommended layer unless given):

- activations of the probe stories and prompts (mean over tokens from ``TOKEN_START`` on, so the
  attention-sink tokens do not dominate), projected on the *locked* unit vectors from the locked centre in
  units of the locked mean norm (the readout monitor and steer use);
- the key vectors re-extracted from the probe stories (mean of an emotion's stories minus the mean of all
  probe stories) and their split-half stability (cosine between the vectors of two random halves);
- behavioural coupling: each key vector is steered at ``+strength`` (a fraction of the mean norm) and the
  change in next-token refusal log-odds (harmful and benign prompts) and hedging log-odds (uncertain
  questions) is divided by the strength: one slope per vector and behaviour, and the per-prompt changes as the
  vector's effect profile;
- side effects (modularity): each key vector is steered at ``+strength`` while the model writes short greedy
  replies to the benign probe prompts; the replies are read back unsteered and every key vector's readout change
  against the unsteered replies forms a ``[K, K]`` matrix (row: steered, column: read), with each row's share on
  its own readout (``emovec.metrics.target_share``) averaged into a modularity index;
- external evals: greedy replies to held-out harmful, benign look-alike, over-refusal and helpful prompts read
  by emovec's judges (refusal rates with Wilson intervals, helpful accuracy), and the perplexity of neutral
  texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from emovec.capture import FIRST_CONTENT_TOKEN, TokenSelection, capture, readable
from emovec.corpus import load_corpus
from emovec.data import default_corpus_path
from emovec.evaluation.judges.model_scores import refusal_logodds
from emovec.evaluation.judges.refusal import judge_refusal
from emovec.evaluation.judges.text import judge_helpful
from emovec.generation import generate
from emovec.metrics import Estimate, finite_mean, permuted_within, readout, target_share, wilson
from emovec.models.loading import LoadedModel
from emovec.models.prompts import format_prompt
from emovec.steer import mixed_spec
from emovec.studies.drift.probes import ProbeSet
from emovec.vectors.extract import extract_emotion_vectors
from emovec.vectors.vector_set import VectorSet

TOKEN_START = FIRST_CONTENT_TOKEN
MAX_TOKENS = 128  # probe texts are read up to here: enough for a stable mean, cheap at every checkpoint
KEYS: tuple[str, ...] = ("worried", "afraid", "self-critical", "calm", "eager", "enthusiastic")
CAUTION: tuple[str, ...] = ("worried", "afraid", "self-critical", "calm")
HEDGE_OPENINGS: tuple[str, ...] = (
    "I'm not sure", "I am not sure", "It depends", "Maybe", "Perhaps", "Possibly", "It's hard to say",
    "It is hard to say", "Nobody knows", "No one knows", "It's difficult", "It is difficult", "I don't know",
    "Unfortunately",
)
ASSERT_OPENINGS: tuple[str, ...] = ("Yes", "No", "The", "Definitely", "Certainly", "Absolutely", "Sure", "It will")
BEHAVIOURS: tuple[str, ...] = ("refusal", "hedge")


@dataclass
class StoryReading:
    """Per-story activations ``[n, d]`` at the layer, with their emotion labels."""

    acts: torch.Tensor
    labels: tuple[str, ...]
    topics: tuple[str, ...] = ()  # each story's topic: split halves by topic when given


def mean_activations(lm: LoadedModel, texts: Sequence[str], layer: int) -> torch.Tensor:
    """``[n, d]`` mean residual activation of each text at ``layer`` from token ``TOKEN_START`` on."""
    res = capture(lm, list(texts), [layer], selection=TokenSelection.from_index(TOKEN_START), max_length=MAX_TOKENS)
    return res.means[:, 0, :].float()


def prompt_texts(lm: LoadedModel, prompts: Sequence[str]) -> list[str]:
    return [format_prompt(lm, p) for p in prompts]


def reextract(reading: StoryReading, keys: Sequence[str], rows: np.ndarray | None = None) -> torch.Tensor:
    """``[K, d]``: mean of each key emotion's stories minus the mean of all (selected) probe stories."""
    idx = np.arange(len(reading.labels)) if rows is None else rows
    acts = reading.acts[torch.as_tensor(idx)]
    labels = np.asarray(reading.labels)[idx]
    grand = acts.mean(0)
    return torch.stack([acts[torch.as_tensor(np.flatnonzero(labels == k))].mean(0) - grand for k in keys])


def _topics(reading: StoryReading) -> np.ndarray | None:
    """The stories' topics when every story has one and there are at least two, else None."""
    if len(reading.topics) == len(reading.labels) and len(set(reading.topics)) > 1:
        return np.asarray(reading.topics)
    return None


def _halving_cosines(reading: StoryReading, keys: Sequence[str], n_splits: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``[n_splits, K]`` cosines between vectors from two random halves of the stories (see ``split_half``)."""
    labels = np.asarray(reading.labels)
    topics = _topics(reading)
    sims = np.zeros((n_splits, len(keys)))
    for s in range(n_splits):
        a: list[int] = []
        if topics is not None:
            unique = sorted(set(topics.tolist()))
            kept = set(rng.permutation(unique)[: len(unique) // 2].tolist())
            a = [i for i, t in enumerate(topics.tolist()) if t in kept]
        else:
            for name in sorted(set(labels.tolist())):
                rows = rng.permutation(np.flatnonzero(labels == name))
                a.extend(rows[: len(rows) // 2].tolist())
        first = np.array(sorted(a))
        second = np.setdiff1d(np.arange(len(labels)), first)
        va, vb = reextract(reading, keys, first), reextract(reading, keys, second)
        sims[s] = torch.nn.functional.cosine_similarity(va, vb, dim=-1).numpy()
    return sims


def split_half(reading: StoryReading, keys: Sequence[str], n_splits: int = 20, seed: int = 0) -> np.ndarray:
    """Per key vector, the mean cosine between vectors re-extracted from two random halves of the stories: half
    the topics each (the same for every emotion) when the stories have topics, so a topic's effect cannot differ
    between an emotion's halves (``emovec.validation.stability`` explains why); else half of each emotion's stories."""
    return np.asarray(_halving_cosines(reading, keys, n_splits, np.random.default_rng(seed)).mean(0))


def split_half_null(reading: StoryReading, keys: Sequence[str], n_shuffles: int = 20, n_splits: int = 10,
                    seed: int = 0) -> np.ndarray:
    """Per key vector, the 97.5th percentile of ``split_half`` (the mean over ``n_splits`` halvings) over
    ``n_shuffles`` shufflings of the story labels within topics (among all stories without topics): what
    ``split_half`` gives without emotion, which a stable vector must beat (a one-sided permutation test at 2.5%)."""
    rng = np.random.default_rng([seed, 1])
    labels, topics = np.asarray(reading.labels), _topics(reading)
    means = []
    for _ in range(n_shuffles):
        drawn = permuted_within(labels, topics, rng)
        view = StoryReading(reading.acts, tuple(drawn.tolist()), reading.topics)
        means.append(_halving_cosines(view, keys, n_splits, rng).mean(0))
    return np.asarray(np.percentile(np.array(means), 97.5, axis=0))


@dataclass
class Coupling:
    """Slopes ``[K, 2]`` (refusal, hedge log-odds per unit strength) and effect profiles ``[K, m]``; the plain
    model's refusal log-odds on harmful and benign prompts and hedging log-odds on uncertain ones."""

    slopes: np.ndarray
    profiles: np.ndarray
    plain_refusal: np.ndarray
    plain_hedge: np.ndarray


def _steered_logodds(lm: LoadedModel, vectors: VectorSet, keys: Sequence[str], layer: int, strength: float,
                     prompts: Sequence[str], refusal: Sequence[str] | None, compliance: Sequence[str] | None
                     ) -> np.ndarray:
    """``[K + 1, n]`` log-odds: row 0 unsteered, row ``1 + i`` steered with key ``i`` (one forward pass)."""
    conditions: list[tuple[str | None, float]] = [(None, 0.0)] + [(k, strength) for k in keys]
    per_row = [c for c in conditions for _ in prompts]
    spec = mixed_spec(per_row, [layer])
    texts = [p for _ in conditions for p in prompts]
    scores = (refusal_logodds(lm, texts, spec=spec, vectors=vectors) if refusal is None or compliance is None
              else refusal_logodds(lm, texts, spec=spec, vectors=vectors, refusal=refusal, compliance=compliance))
    return scores.numpy().reshape(len(conditions), len(prompts))


def coupling(lm: LoadedModel, vectors: VectorSet, keys: Sequence[str], layer: int, probes: ProbeSet,
             strength: float) -> Coupling:
    """Dose-response slopes and effect profiles of the key vectors (see module docs)."""
    ref = _steered_logodds(lm, vectors, keys, layer, strength, [*probes.harmful, *probes.benign], None, None)
    hedge = _steered_logodds(lm, vectors, keys, layer, strength, list(probes.uncertain), HEDGE_OPENINGS,
                             ASSERT_OPENINGS)
    d_ref = (ref[1:] - ref[0]) / strength
    d_hedge = (hedge[1:] - hedge[0]) / strength
    slopes = np.stack([d_ref.mean(1), d_hedge.mean(1)], axis=1)
    return Coupling(slopes, np.concatenate([d_ref, d_hedge], axis=1), ref[0], hedge[0])


@dataclass
class SideEffects:
    """``matrix[i, j]``: mean change of key ``j``'s readout on the replies written while key ``i`` was steered;
    ``shares[i]``: the part of row ``i``'s absolute change on its own readout (1: modular)."""

    matrix: np.ndarray
    shares: np.ndarray

    @property
    def modularity(self) -> float:
        ok = np.isfinite(self.shares)
        return float(self.shares[ok].mean()) if ok.any() else float("nan")


def side_effects(lm: LoadedModel, vectors: VectorSet, keys: Sequence[str], layer: int, prompts: Sequence[str],
                 strength: float, units: torch.Tensor, centre: torch.Tensor, norm: float,
                 max_new_tokens: int = 16) -> SideEffects:
    """The readout side-effect matrix of the key vectors (see module docs): one batched greedy generation with
    every condition, then one unsteered read of the replies. Empty replies, and replies of ``TOKEN_START`` tokens or
    fewer, are left out of the means."""
    conditions: list[tuple[str | None, float]] = [(None, 0.0)] + [(k, strength) for k in keys]
    per_row = [c for c in conditions for _ in prompts]
    replies = generate(lm, [p for _ in conditions for p in prompts], vectors=vectors,
                       spec=mixed_spec(per_row, [layer]), max_new_tokens=max_new_tokens).replies
    read = np.full((len(replies), len(keys)), np.nan)
    # replies too short to read from TOKEN_START on ("No." is two tokens) are left out, like empty ones
    keep = [i for i, ok in enumerate(readable(lm, replies, TOKEN_START)) if ok]
    if keep:
        read[keep] = readout(mean_activations(lm, [replies[i] for i in keep], layer), units, centre, norm).numpy()
    by_condition = read.reshape(len(conditions), len(prompts), len(keys))
    matrix = np.zeros((len(keys), len(keys)))
    shares = np.full(len(keys), np.nan)
    for i in range(len(keys)):
        delta = by_condition[1 + i] - by_condition[0]
        delta = delta[np.isfinite(delta).all(1)]
        if len(delta):
            matrix[i] = delta.mean(0)
            shares[i] = target_share(delta, i)
        else:
            matrix[i] = np.nan
    return SideEffects(matrix, shares)


def _rate(flags: Sequence[bool]) -> Estimate:
    return wilson(int(sum(flags)), len(flags))


def external_evals(lm: LoadedModel, probes: ProbeSet, max_new_tokens: int = 32) -> dict[str, Estimate]:
    """Refusal on held-out harmful prompts, over-refusal on benign look-alikes and the over-refusal suite,
    helpful accuracy (Wilson intervals), and perplexity of neutral texts (interval over texts)."""
    groups = {"harmful": probes.harmful, "benign": probes.benign, "overrefusal": probes.overrefusal,
              "helpful": tuple(p for p, _ in probes.helpful)}
    flat = [p for g in groups.values() for p in g]
    replies = generate(lm, flat, max_new_tokens=max_new_tokens).replies
    out: dict[str, Estimate] = {}
    start = 0
    for name, prompts in groups.items():
        got = replies[start:start + len(prompts)]
        start += len(prompts)
        if name == "helpful":
            out["helpful"] = _rate([judge_helpful(r, ref) for r, (_, ref) in zip(got, probes.helpful, strict=True)])
        else:
            out[f"refusal_{name}"] = _rate([judge_refusal(r).label != "full_compliance" for r in got])
    out["perplexity"] = perplexity(lm, probes.texts)
    return out


def perplexity(lm: LoadedModel, texts: Sequence[str]) -> Estimate:
    """Geometric-mean perplexity of ``texts`` with a percentile interval over texts (bootstrap)."""
    nll = []
    with torch.inference_mode():
        for text in texts:
            ids = lm.tokenizer(text, return_tensors="pt")["input_ids"][:, :128].to(lm.device)
            if ids.shape[1] < 2:
                continue
            nll.append(float(lm.model(input_ids=ids, labels=ids, use_cache=False).loss))
    est = finite_mean(np.asarray(nll))
    return Estimate(value=float(np.exp(est.value)), low=float(np.exp(est.low)), high=float(np.exp(est.high)), n=est.n,
                    method="exp of a percentile bootstrap of the mean token NLL")


def projections(acts: torch.Tensor, units: torch.Tensor, centre: torch.Tensor, norm: float) -> np.ndarray:
    """``[n, K]`` readouts of activations on the locked unit vectors."""
    return readout(acts, units, centre, norm).numpy()


def all_vectors(lm: LoadedModel, layer: int, topics: int = 1) -> tuple[tuple[str, ...], torch.Tensor]:
    """All emotion vectors ``[E, d]`` re-extracted at ``layer`` from ``topics`` topics of the shipped corpus (the
    recipe without topic removal or denoising, so step 0 and later checkpoints are read the same way)."""
    ext = extract_emotion_vectors(lm, load_corpus(default_corpus_path()), layers=[layer], topics=topics,
                                  topic_removal=False, denoise_variance=None, max_length=192, skip_short=True,
                                  show_progress=False)
    return ext.vectors.names, ext.vectors.directions[0].float()
