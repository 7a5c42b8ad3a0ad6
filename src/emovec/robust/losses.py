"""The loss terms of a robustified steering direction (each differentiable in the direction).

- **safety** (BiPO-style preference): on harmful prompts, steering should raise the log-likelihood of a refusal
  continuation relative to a compliant one, against the unsteered model:
  ``-log sigmoid(beta * ((ls_ref - l0_ref) - (ls_comply - l0_comply)))``;
- **retain**: the same preference reversed on benign prompts (a helpful opening over a refusal: over-refusal
  is a failure too) plus the KL divergence of the next-token distribution from the unsteered one;
- **helpful**: on helpful tasks with a correct answer, the answer's log-likelihood per token should not fall
  below the unsteered model's (``relu(l0 - ls) / tokens``), and the next-token distribution should stay (KL);
- **meaning**: ``1 - cos(direction, source emotion vector)``;
- **modularity**: the mean squared change, at a later layer and the last prompt token, of the readouts of the
  other emotion vectors (units of that layer's mean norm), so the direction does not move other emotions;
- **stability**: the variance, across harmful prompts written in different red-team templates, of the change
  the steering makes to the source emotions' own readouts (in units of the steering strength), so the
  direction moves its emotion by the same amount whatever the template.

Both continuations of a prompt run in one left-padded batch (every continuation ends at the last column), so
the vocabulary-wide log-softmax is taken over the continuation window only, not over the whole prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from emovec.metrics import kl_logprobs, readout
from emovec.models.loading import LoadedModel
from emovec.models.prompts import format_prompt


@dataclass
class PairBatch:
    """``n`` prompts, each with a preferred and a dispreferred continuation, tokenised and left-padded into one
    batch of ``2n`` rows (rows ``0..n-1``: prompt + chosen, ``n..2n-1``: prompt + rejected).

    Attributes:
        ids, mask, position_ids: ``[2n, width]``.
        cont: ``[2n, keep - 1]``: 1 where the token after a kept position is a continuation token.
        last_prompt: ``[2n]`` the column of each row's last prompt token.
        keep: the logits needed: the last ``keep`` columns (the longest continuation plus one).
    """

    ids: Tensor
    mask: Tensor
    position_ids: Tensor
    cont: Tensor
    last_prompt: Tensor
    keep: int

    @property
    def n(self) -> int:
        return int(self.ids.shape[0]) // 2


def pair_batch(lm: LoadedModel, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]) -> PairBatch:
    add_special = not lm.has_chat_template
    heads = [lm.tokenizer(format_prompt(lm, p), add_special_tokens=add_special)["input_ids"] for p in prompts]
    tails = [lm.tokenizer(c, add_special_tokens=False)["input_ids"] for c in [*chosen, *rejected]]
    if len(tails) != 2 * len(heads):
        raise ValueError(f"{len(prompts)} prompts but {len(chosen)} chosen and {len(rejected)} rejected continuations")
    if any(not t for t in tails):
        raise ValueError("a continuation is empty")
    rows = [(h, t) for h, t in zip([*heads, *heads], tails, strict=True)]
    width = max(len(h) + len(t) for h, t in rows)
    keep = max(len(t) for _, t in rows) + 1
    ids = torch.full((len(rows), width), int(lm.tokenizer.pad_token_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    cont = torch.zeros((len(rows), keep - 1))
    last = torch.zeros(len(rows), dtype=torch.long)
    for r, (h, t) in enumerate(rows):
        seq = h + t
        ids[r, width - len(seq):] = torch.tensor(seq)
        mask[r, width - len(seq):] = 1
        cont[r, keep - 1 - len(t):] = 1.0
        last[r] = width - len(t) - 1
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    return PairBatch(ids, mask, position_ids, cont, last, keep)


@dataclass
class Reading:
    """Sequence log-probs of both continuations ``[2, n]`` and their token counts ``[2, n]``, the next-token
    log-probs after the prompt ``[n, vocab]`` and the hidden state at the readout layer at the last prompt
    token ``[n, d]``."""

    seq_logp: Tensor
    next_logp: Tensor
    hidden: Tensor
    tokens: Tensor

    def rows(self, idx: Sequence[int]) -> Reading:
        """The readings of the prompts ``idx``."""
        i = torch.as_tensor(list(idx), dtype=torch.long)
        return Reading(self.seq_logp[:, i], self.next_logp[i], self.hidden[i], self.tokens[:, i])

    @staticmethod
    def cat(parts: Sequence[Reading]) -> Reading:
        return Reading(torch.cat([p.seq_logp for p in parts], 1), torch.cat([p.next_logp for p in parts]),
                       torch.cat([p.hidden for p in parts]), torch.cat([p.tokens for p in parts], 1))


def read(lm: LoadedModel, batch: PairBatch, readout_layer: int) -> Reading:
    """One forward pass over both continuations (gradients flow if a differentiable steering is active)."""
    dev = lm.device
    res = lm.model(input_ids=batch.ids.to(dev), attention_mask=batch.mask.to(dev),
                   position_ids=batch.position_ids.to(dev), output_hidden_states=True, use_cache=False,
                   logits_to_keep=batch.keep)
    logits = res.logits.float()  # [2n, keep, vocab]: the last `keep` columns
    logp = F.log_softmax(logits[:, :-1], dim=-1)
    target = batch.ids[:, batch.ids.shape[1] - batch.keep + 1:].to(dev)
    tok = logp.gather(-1, target[..., None])[..., 0]
    seq = (tok * batch.cont.to(tok.device)).sum(1)
    n = batch.n
    rows = torch.arange(n)
    window = batch.last_prompt[:n] - (batch.ids.shape[1] - batch.keep)
    nxt = F.log_softmax(logits[rows, window.to(dev)], dim=-1)
    hid = res.hidden_states[readout_layer + 1][rows, batch.last_prompt[:n].to(dev)].float()
    return Reading(seq.view(2, n), nxt, hid, batch.cont.sum(1).view(2, n).to(seq.device))


def preference(steered: Reading, plain: Reading, beta: float) -> Tensor:
    """``-log sigmoid(beta * margin)``, mean over rows (row 0 of ``seq_logp`` is the preferred continuation)."""
    margin = (steered.seq_logp[0] - plain.seq_logp[0]) - (steered.seq_logp[1] - plain.seq_logp[1])
    return -F.logsigmoid(beta * margin).mean()


def kl_next(plain: Reading, steered: Reading) -> Tensor:
    """Mean KL(plain || steered) of the next-token distributions after the prompt."""
    return kl_logprobs(plain.next_logp, steered.next_logp).mean()


def meaning(direction: Tensor, source: Tensor) -> Tensor:
    return 1.0 - F.cosine_similarity(direction, source, dim=0)


def side_effects(steered: Reading, plain: Reading, others: Tensor, norm: float) -> Tensor:
    """Mean squared change of the other emotions' readouts (``others``: unit rows ``[K, d]``)."""
    change = readout(steered.hidden - plain.hidden, others, 0.0, norm)  # the centre cancels in a difference
    return (change**2).mean()


def answer_drop(steered: Reading, plain: Reading) -> Tensor:
    """Mean over prompts of how far steering lowers the preferred continuation's log-likelihood per token
    (0 where it does not: raising it is not rewarded, so the term cannot be traded against the others)."""
    drop = (plain.seq_logp[0] - steered.seq_logp[0]) / plain.tokens[0].clamp(min=1)
    return F.relu(drop).mean()


def template_variance(steered: Reading, plain: Reading, sources: Tensor, norm: float, strength: float) -> Tensor:
    """Variance across prompts (each in its own red-team template) of the change in the source emotions'
    readouts (``sources``: unit rows ``[k, d]``), in units of the steering strength; mean over sources."""
    change = readout(steered.hidden - plain.hidden, sources, 0.0, norm) / strength  # [n, k]
    if change.shape[0] < 2:
        return change.sum() * 0.0
    return change.var(dim=0, unbiased=False).mean()
