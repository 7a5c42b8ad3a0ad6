"""Activity preferences from pairwise choices read off next-token probabilities, Bradley-Terry scores, and
steering on one activity's tokens.

A choice prompt (chat-formatted) asks "Which would you rather do? A: ... B: ... Answer with A or B."; the
model's preference for A is ``P(A) / (P(A) + P(B))`` of the first reply token, no sampling. Each pair is asked
in both orders and the two readings averaged, so a bias for the first option cancels. Bradley-Terry scores
``s`` maximise the likelihood of those soft outcomes under ``P(i over j) = sigmoid(s_i - s_j)`` (a small ridge
fixes the scale and the mean at 0); intervals resample pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from emovec.metrics import vector_index_bootstrap
from emovec.models.loading import LoadedModel
from emovec.models.prompts import format_prompt
from emovec.steer import masked_steering

QUESTION = "Which would you rather do?\nA: {a}\nB: {b}\nAnswer with A or B."


@dataclass(frozen=True)
class Choice:
    """One prompt: activity ``first`` as option A, ``second`` as option B."""

    first: int
    second: int


def plan_pairs(n: int, partners: int, seed: int = 0) -> list[tuple[int, int]]:
    """Each activity against ``partners`` others drawn at random (each unordered pair once)."""
    rng = np.random.default_rng(seed)
    pairs: set[tuple[int, int]] = set()
    for i in range(n):
        for j in rng.choice([k for k in range(n) if k != i], size=min(partners, n - 1), replace=False):
            pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def _encode(lm: LoadedModel, activities: Sequence[str], choices: Sequence[Choice]
            ) -> tuple[list[list[int]], list[tuple[tuple[int, int], tuple[int, int]]]]:
    """Token ids of each prompt and the token spans of option A's and option B's text."""
    add_special = not lm.has_chat_template
    ids, spans = [], []
    for c in choices:
        a, b = activities[c.first], activities[c.second]
        text = format_prompt(lm, QUESTION.format(a=a, b=b))
        enc = lm.tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
        start_a = text.index("A: " + a) + 3
        start_b = text.index("B: " + b) + 3

        def span(lo: int, hi: int, offsets: list[tuple[int, int]] = enc["offset_mapping"]) -> tuple[int, int]:
            toks = [t for t, (s, e) in enumerate(offsets) if e > lo and s < hi and e > s]
            return (toks[0], toks[-1] + 1) if toks else (0, 0)

        ids.append(list(enc["input_ids"]))
        spans.append((span(start_a, start_a + len(a)), span(start_b, start_b + len(b))))
    return ids, spans


def _option_tokens(lm: LoadedModel) -> tuple[int, int]:
    a = lm.tokenizer("A", add_special_tokens=False)["input_ids"]
    b = lm.tokenizer("B", add_special_tokens=False)["input_ids"]
    return int(a[0]), int(b[0])


def prefer_first(lm: LoadedModel, activities: Sequence[str], choices: Sequence[Choice], *, layer: int | None = None,
                 direction: torch.Tensor | None = None, scale: float = 0.0, steer_option: str = "first",
                 batch: int = 32) -> np.ndarray:
    """``P(A) / (P(A) + P(B))`` per prompt; with ``direction``, steered at ``layer`` on the tokens of the first
    (``steer_option="first"``) or second option only."""
    ids, spans = _encode(lm, activities, choices)
    tok_a, tok_b = _option_tokens(lm)
    pad = int(lm.tokenizer.pad_token_id)
    out = np.zeros(len(ids))
    for start in range(0, len(ids), batch):
        rows = range(start, min(start + batch, len(ids)))
        width = max(len(ids[r]) for r in rows)
        x = torch.full((len(rows), width), pad, dtype=torch.long)
        attn = torch.zeros_like(x)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for k, r in enumerate(rows):
            off = width - len(ids[r])
            x[k, off:] = torch.tensor(ids[r])
            attn[k, off:] = 1
            lo, hi = spans[r][0 if steer_option == "first" else 1]
            mask[k, off + lo: off + hi] = True
        pos = (attn.cumsum(1) - 1).clamp(min=0)
        with torch.inference_mode():
            if direction is not None and layer is not None:
                with masked_steering(lm, layer, direction, scale, mask):
                    logits = lm.model(input_ids=x, attention_mask=attn, position_ids=pos, use_cache=False).logits
            else:
                logits = lm.model(input_ids=x, attention_mask=attn, position_ids=pos, use_cache=False).logits
        two = F.log_softmax(logits[:, -1].float(), dim=-1)[:, [tok_a, tok_b]]
        out[list(rows)] = torch.softmax(two, dim=-1)[:, 0].numpy()
    return out


def both_orders(pairs: Sequence[tuple[int, int]]) -> list[Choice]:
    """Each pair as (i, j) and (j, i), interleaved."""
    return [c for i, j in pairs for c in (Choice(i, j), Choice(j, i))]


def pair_outcomes(p_first: np.ndarray) -> np.ndarray:
    """``P(i over j)`` per pair from the interleaved two-order readings (averaged, cancelling position bias)."""
    return np.asarray(0.5 * (p_first[0::2] + (1.0 - p_first[1::2])))


def bradley_terry(n: int, pairs: Sequence[tuple[int, int]], outcome: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Scores (mean 0) maximising the soft Bradley-Terry likelihood of ``outcome`` (P(i over j) per pair)."""
    i = np.array([p[0] for p in pairs])
    j = np.array([p[1] for p in pairs])
    y = np.clip(outcome, 1e-6, 1 - 1e-6)

    def loss(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = s[i] - s[j]
        p = 1.0 / (1.0 + np.exp(-d))
        nll = -(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)).sum() + ridge * (s @ s)
        g_d = p - y
        grad = np.bincount(i, g_d, n) - np.bincount(j, g_d, n) + 2 * ridge * s
        return float(nll), grad

    res = minimize(loss, np.zeros(n), jac=True, method="L-BFGS-B")
    return np.asarray(res.x - res.x.mean())


def bt_intervals(n: int, pairs: Sequence[tuple[int, int]], outcome: np.ndarray, n_boot: int = 200,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile intervals of the scores from resampling the compared pairs."""
    return vector_index_bootstrap(len(pairs), lambda idx: bradley_terry(n, [pairs[k] for k in idx], outcome[idx]),
                                  n_resamples=n_boot, seed=seed)
