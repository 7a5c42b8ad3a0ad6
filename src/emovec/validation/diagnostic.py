"""How much emotion a story corpus carries: centred cosine of story pairs that share an emotion, a topic, or
nothing, per layer. If same-topic pairs sit far above same-emotion pairs, topic dominates the corpus and
vectors fitted without topic removal will carry it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import BaseModel
from torch import Tensor


class PairCosines(BaseModel):
    """Mean centred cosine of story pairs at one layer."""

    layer: int
    same_emotion: float
    same_topic: float
    unrelated: float

    @property
    def emotion_margin(self) -> float:
        """Same-emotion minus unrelated: the emotion signal a single story carries."""
        return self.same_emotion - self.unrelated


def _pair_sums(units: Tensor, labels: Sequence[object]) -> tuple[float, float]:
    """Sum of cosines and number of ordered pairs (i != j) within groups of equal label."""
    index: dict[object, list[int]] = {}
    for i, lab in enumerate(labels):
        index.setdefault(lab, []).append(i)
    total, pairs = 0.0, 0.0
    for rows in index.values():
        s = units[rows].sum(0)
        total += float(s @ s) - len(rows)
        pairs += len(rows) * (len(rows) - 1)
    return total, pairs


def pair_cosines(acts: Tensor, emotions: Sequence[str], topics: Sequence[str], layers: Sequence[int]) -> list[
        PairCosines]:
    """Mean centred cosine of same-emotion (other topic), same-topic (other emotion) and unrelated story pairs.

    Args:
        acts: ``[n, L, d]`` per-story activations.
        emotions: the emotion label of each story.
        topics: the topic label of each story.
        layers: the layer of each position on the layer axis.

    Example:
        >>> [p.emotion_margin for p in pair_cosines(acts, emotions, topics, [4, 8])]
    """
    out = []
    cells = list(zip(emotions, topics, strict=True))
    for j, layer in enumerate(layers):
        x = acts[:, j].double()
        units = torch.nn.functional.normalize(x - x.mean(0), dim=-1)
        all_sum, all_pairs = _pair_sums(units, [0] * len(units))
        e_sum, e_pairs = _pair_sums(units, emotions)
        t_sum, t_pairs = _pair_sums(units, topics)
        c_sum, c_pairs = _pair_sums(units, cells)
        same_e = (e_sum - c_sum) / max(e_pairs - c_pairs, 1)
        same_t = (t_sum - c_sum) / max(t_pairs - c_pairs, 1)
        rest_pairs = all_pairs - e_pairs - t_pairs + c_pairs
        unrelated = (all_sum - e_sum - t_sum + c_sum) / max(rest_pairs, 1)
        out.append(PairCosines(layer=layer, same_emotion=same_e, same_topic=same_t, unrelated=unrelated))
    return out
