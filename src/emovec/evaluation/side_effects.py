"""A sweep row's side effects from what generation already computed: next-token KL against the unsteered
model on the same prompt, and the reply's perplexity under the unsteered model (reusing an unsteered partner
row's prompt cache where one exists)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from emovec.evaluation.judges.model_scores import encode_prompts, last_logprobs, perplexity_of_ids
from emovec.metrics import kl_logprobs
from emovec.models.kvcache import cache_argument
from emovec.models.loading import LoadedModel


def kl_and_perplexity(lm: LoadedModel, prompts: Sequence[str], steered: Sequence[bool],
                      systems: Sequence[str | None], gen: Any, reference: dict[str, torch.Tensor], *,
                      kl: bool = True, perplexity: bool = True) -> tuple[list[float], list[float]]:
    """Side effects and fluency from what generation already computed. KL compares each row's first-token
    distribution with the plain model's on the same prompt without a system prompt (cached from the
    ``none`` rows; computed for prompts not seen yet). Perplexity of the reply under the unsteered model:
    read from generation's own log-probs for unsteered rows, one teacher-forced pass for the others.
    ``reference`` (prompt -> unsteered first-token log-probs) is read and filled."""
    n = len(prompts)
    plain = [not steered[i] and systems[i] is None for i in range(n)]
    first = gen.first_logprobs
    for i in range(n):
        if plain[i]:
            reference.setdefault(prompts[i], first[i])
    kls = [0.0 if plain[i] else float("nan") for i in range(n)]
    if kl:
        missing = sorted({prompts[i] for i in range(n) if not plain[i]} - set(reference))
        if missing:
            for prompt, lp in zip(missing, last_logprobs(lm, encode_prompts(lm, missing, None, True)), strict=True):
                reference[prompt] = lp
        for i in range(n):
            if not plain[i]:
                kls[i] = float(kl_logprobs(reference[prompts[i]], first[i]))
    ppl = [float("nan")] * n
    if perplexity:
        mask = gen.attention_mask[:, gen.prompt_length:].bool()
        eos = lm.tokenizer.eos_token_id
        new = gen.token_ids[:, gen.prompt_length:]
        keep = mask & (new != eos) if eos is not None else mask
        unsteered = [i for i in range(n) if not steered[i]]
        for i in unsteered:
            lp = gen.token_logprobs[i][keep[i]]
            ppl[i] = float(torch.exp(-lp.mean())) if len(lp) else float("nan")
        moved = [i for i in range(n) if i not in set(unsteered)]
        partner = {i: next((j for j in range(n) if plain[j] and prompts[j] == prompts[i]), None)
                   for i in moved if systems[i] is None}
        fast = [i for i in moved if partner.get(i) is not None]
        if fast and gen.cache is not None:
            try:
                values = reply_perplexity_from_cache(lm, gen, fast, [partner[i] for i in fast], keep)  # type: ignore[misc]
                for i, v in zip(fast, values, strict=True):
                    ppl[i] = v
            except (AttributeError, ValueError, NotImplementedError, TypeError, RuntimeError):
                fast = []  # a cache that cannot be cropped or re-batched: fall back to full passes
        slow = [i for i in moved if i not in set(fast)]
        if slow:
            pm = gen.attention_mask[:, : gen.prompt_length].bool()
            heads = [gen.token_ids[i, : gen.prompt_length][pm[i]].tolist() for i in slow]
            tails = [new[i][keep[i]].tolist() for i in slow]
            for i, v in zip(slow, perplexity_of_ids(lm, heads, tails).tolist(), strict=True):
                ppl[i] = v
    return kls, ppl


def reply_perplexity_from_cache(lm: LoadedModel, gen: Any, rows: list[int], partners: list[int],
                                 keep: torch.Tensor) -> list[float]:
    """Perplexity of steered rows' replies under the unsteered model, reusing the prompt cache of an unsteered
    row of the same batch with the same prompt (strength 0 leaves its cache exactly unsteered): only the reply
    tokens are run, and the first reply token's log-prob is the partner's first-token distribution."""
    cache, p = gen.cache, gen.prompt_length
    extra = int(cache.get_seq_length()) - p
    if extra > 0:
        cache.crop(-extra)
    cache.batch_select_indices(torch.tensor(partners, device=lm.device))
    new = gen.token_ids[rows, p:]
    attn = torch.cat([gen.attention_mask[partners, :p], keep[rows].long()], dim=1)
    position = (attn.cumsum(1) - 1).clamp(min=0)[:, p:]
    with torch.inference_mode():
        logits = lm.model(input_ids=new.to(lm.device), attention_mask=attn.to(lm.device),
                          position_ids=position.to(lm.device), **cache_argument(lm.model, cache), use_cache=True).logits
    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1).cpu().gather(-1, new[:, 1:, None].cpu())[..., 0]
    first = torch.stack([gen.first_logprobs[j][new[k, 0]] for k, j in enumerate(partners)])
    all_lp = torch.cat([first[:, None], lp], dim=1)
    out = []
    for k, i in enumerate(rows):
        chosen = all_lp[k][keep[i].cpu()]
        out.append(float(torch.exp(-chosen.mean())) if len(chosen) else float("nan"))
    return out
