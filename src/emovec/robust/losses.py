"""The loss terms of a robustified steering direction (each differentiable in the direction).

- **safety** (BiPO-style preference): on harmful prompts, steering should raise the log-likelihood of a refusal
  continuation relative to a compliant one, against the unsteered model:
  ``-log sigmoid(beta * ((ls_ref - l0_ref) - (ls_comply - l0_comply)))``;
- **retain**: the same preference reversed on benign prompts (a helpful opening over a refusal: over-refusal
  is a failure too) plus the KL divergence of the next-token distribution from the unsteered one;
- **meaning**: ``1 - cos(direction, source emotion vector)``;
- **modularity**: the mean squared change, at a later layer and the last prompt token, of the readouts of the
  other emotion vectors (units of that layer's mean norm), so the direction does not move other emotions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from emovec.generation import format_prompt
from emovec.metrics import kl_logprobs, readout
from emovec.models.loading import LoadedModel


@dataclass
class PairBatch:
    """Prompts with a preferred and a dispreferred continuation, tokenised and right-padded: both
    continuations of a prompt share its rows (``ids[0]``: chosen, ``ids[1]``: rejected)."""

    ids: tuple[Tensor, Tensor]
    mask: tuple[Tensor, Tensor]
    cont: tuple[Tensor, Tensor]  # 1 on continuation tokens (the positions whose log-prob counts)
    last_prompt: Tensor  # index of the last prompt token of each row


def pair_batch(lm: LoadedModel, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]) -> PairBatch:
    add_special = not lm.has_chat_template
    heads = [lm.tokenizer(format_prompt(lm, p), add_special_tokens=add_special)["input_ids"] for p in prompts]
    out_ids, out_mask, out_cont = [], [], []
    for conts in (chosen, rejected):
        seqs = [h + lm.tokenizer(c, add_special_tokens=False)["input_ids"] for h, c in zip(heads, conts, strict=True)]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), int(lm.tokenizer.pad_token_id), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        cont = torch.zeros((len(seqs), width))
        for r, (s, h) in enumerate(zip(seqs, heads, strict=True)):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
            cont[r, len(h): len(s)] = 1.0
        out_ids.append(ids)
        out_mask.append(mask)
        out_cont.append(cont)
    last = torch.tensor([len(h) - 1 for h in heads])
    return PairBatch((out_ids[0], out_ids[1]), (out_mask[0], out_mask[1]), (out_cont[0], out_cont[1]), last)


@dataclass
class Reading:
    """Sequence log-probs of both continuations ``[2, n]``, the next-token log-probs after the prompt
    ``[n, vocab]`` and the hidden state at the readout layer at the last prompt token ``[n, d]``."""

    seq_logp: Tensor
    next_logp: Tensor
    hidden: Tensor


def read(lm: LoadedModel, batch: PairBatch, readout_layer: int) -> Reading:
    """One forward pass per continuation (gradients flow if a differentiable steering is active)."""
    seq, nxt, hid = [], None, None
    rows = torch.arange(len(batch.last_prompt))
    for k in range(2):
        ids, mask = batch.ids[k].to(lm.device), batch.mask[k].to(lm.device)
        res = lm.model(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
        logp = F.log_softmax(res.logits[:, :-1].float(), dim=-1)
        tok = logp.gather(-1, ids[:, 1:, None])[..., 0]
        seq.append((tok * batch.cont[k][:, 1:].to(tok.device)).sum(1))
        if k == 0:
            nxt = F.log_softmax(res.logits[rows, batch.last_prompt].float(), dim=-1)
            hid = res.hidden_states[readout_layer + 1][rows, batch.last_prompt].float()
    assert nxt is not None and hid is not None
    return Reading(torch.stack(seq), nxt, hid)


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
