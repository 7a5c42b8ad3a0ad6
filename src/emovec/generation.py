"""Batched generation with optional steering and monitoring, in one set of forward passes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from emovec.models.kvcache import cache_argument, cache_of
from emovec.models.loading import LoadedModel
from emovec.models.prompts import Conversation, PromptError, encode_left_padded, format_conversation, format_prompt
from emovec.monitor import MonitorTrace, monitoring
from emovec.steer import SteeringSpec, steering
from emovec.vectors.vector_set import VectorSet

# the prompt formatting lives with the model (emovec.models.prompts); named here too, where generation is
__all__ = ["Conversation", "Generation", "PromptError", "format_conversation", "format_prompt", "generate", "timing"]


@dataclass
class Generation:
    """Replies to a batch of prompts.

    Attributes:
        replies: the generated text of each prompt.
        token_ids: ``[rows, positions]`` prompt (left-padded) plus generated ids.
        attention_mask: ``[rows, positions]`` 1 for real tokens (padding and tokens after EOS are 0).
        prompt_length: padded prompt length; generated tokens start there.
        trace: monitoring scores, when monitoring was asked for.
        step_ms: wall time of each forward pass in milliseconds; the first is the prompt (prefill), each later
            one produced one token per row.
        first_logprobs: ``[rows, vocab]`` log-probs of the first reply token, as the (steered) model ran.
        token_logprobs: ``[rows, new]`` log-prob of each generated token, as the model ran.
        after_prompt: ``{token: [rows, vocab]}`` next-token log-probs after prompt + token.
    """

    replies: list[str]
    token_ids: Tensor
    attention_mask: Tensor
    prompt_length: int
    trace: MonitorTrace | None = None
    step_ms: list[float] = field(default_factory=list)
    first_logprobs: Tensor | None = None
    token_logprobs: Tensor | None = None
    after_prompt: dict[int, Tensor] = field(default_factory=dict)
    cache: Any = None

    @property
    def token_ms(self) -> list[float]:
        """Per-token decode latencies (ms): every forward pass after the prompt's."""
        return self.step_ms[1:]


@dataclass(frozen=True)
class DecodeStep:
    """One decoding step of ``generate``, as its ``on_step`` callback sees it.

    Attributes:
        index: the index of the token each row just got (0 for the first reply token).
        tokens: ``[rows]`` the ids this step appended (a row that has stopped gets the pad id).
        scores: when monitoring, the scores of the forward pass that chose these tokens,
            ``[rows, positions, n_layers, n_vectors]``: the whole prompt at index 0, then one position, the token
            appended the step before (so a token's own score arrives one step after it); else ``None``.
    """

    index: int
    tokens: Tensor
    scores: Tensor | None


# on_step(step) -> bool [rows] (rows to stop now) or None (stop none): streaming, per-row limits, cancellation
StepHook = Callable[[DecodeStep], Tensor | None]


class _OnStep:
    """A stopping criterion for Hugging Face ``generate``: calls ``on_step`` after every decoding step; the rows
    it returns stop there."""

    def __init__(self, hook: StepHook, n_prompt: int, trace: MonitorTrace | None) -> None:
        self.hook, self.n_prompt, self.trace = hook, n_prompt, trace

    def __call__(self, input_ids: Tensor, scores: Any, **kwargs: Any) -> Tensor:
        steps = self.trace.steps if self.trace is not None else []
        stop = self.hook(DecodeStep(int(input_ids.shape[1]) - self.n_prompt - 1, input_ids[:, -1],
                                    steps[-1] if steps else None))
        if stop is None:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return stop.to(device=input_ids.device, dtype=torch.bool)


@contextmanager
def timing(lm: LoadedModel) -> Iterator[list[float]]:
    """Record the wall time (ms) of every forward pass of ``lm.model`` inside the block."""
    times: list[float] = []
    start: list[float] = []

    def pre(_module: Any, _args: Any) -> None:
        if lm.device.type == "cuda":
            torch.cuda.synchronize(lm.device)
        start.append(time.perf_counter())

    def post(_module: Any, _args: Any, _output: Any) -> None:
        if lm.device.type == "cuda":
            torch.cuda.synchronize(lm.device)
        if start:
            times.append(1000.0 * (time.perf_counter() - start.pop()))

    handles = [lm.model.register_forward_pre_hook(pre), lm.model.register_forward_hook(post)]
    try:
        yield times
    finally:
        for handle in handles:
            handle.remove()


def generate(
    lm: LoadedModel,
    prompts: Sequence[str | Conversation],
    *,
    vectors: VectorSet | None = None,
    spec: SteeringSpec | None = None,
    monitor: Sequence[str] | bool = False,
    monitor_layers: Sequence[int] | None = None,
    max_new_tokens: int = 64,
    min_new_tokens: int = 0,
    temperature: float = 0.0,
    seed: int = 0,
    system: str | Sequence[str | None] | None = None,
    chat: bool = True,
    time_steps: bool = False,
    score_tokens: bool = False,
    after_tokens: Sequence[int] = (),
    keep_cache: bool = False,
    on_step: StepHook | None = None,
) -> Generation:
    """Generate replies, steered by ``spec`` and monitored on ``vectors`` if asked, in the same passes.

    Args:
        lm: the model.
        prompts: user messages, or whole conversations (lists of role/content dicts), one batch; rows are
            left-padded.
        vectors: the vector set for steering by name and for monitoring.
        spec: a steering specification, or ``None`` for plain generation.
        monitor: ``True`` for every vector, or a list of names; ``False`` for none.
        monitor_layers: layers to monitor (default: the set's default layer).
        max_new_tokens: tokens to generate at most.
        min_new_tokens: tokens to generate before an end-of-sequence token may stop a row.
        temperature: 0 for greedy decoding, else sampling with ``seed``.
        system: an optional system message, or one per prompt.
        chat: use the model's chat template when it has one.
        time_steps: record each forward pass's wall time in ``step_ms`` (synchronises a GPU each step).
        score_tokens: keep the log-probs of the first reply token's distribution (``first_logprobs``) and of
            each generated token (``token_logprobs``), from the logits generation computed anyway.
        after_tokens: for each token id, the next-token log-probs after the prompt plus that token, under the
            same steering (``after_prompt``); a single decode step on the prompt's cache.
        keep_cache: return the KV cache (``cache``) for further passes on the same prompts.
        on_step: called after every decoding step with a ``DecodeStep``; it may return a bool ``[rows]`` tensor
            of rows to stop there (the server streams, applies per-row limits and cancels rows with it).

    Example:
        >>> spec = SteeringSpec([SteerTerm("calm", 0.05)], layers=[vs.default_layer])
        >>> out = generate(lm, ["How are you?"], vectors=vs, spec=spec, monitor=True)
    """
    enc = _encode(lm, prompts, system, chat)
    if monitor is not False and vectors is None:
        raise PromptError("monitoring needs a vector set")
    n_prompt = enc["input_ids"].shape[1]
    first_lp: Tensor | None = None
    token_lp: Tensor | None = None
    after: dict[int, Tensor] = {}
    with ExitStack() as stack:
        if spec is not None:
            stack.enter_context(steering(lm, spec, vectors))
        with ExitStack() as inner:  # monitoring and timing cover generation only
            trace = None
            if monitor is not False and vectors is not None:
                names = None if monitor is True else list(monitor)
                trace = inner.enter_context(monitoring(lm, vectors, names=names, layers=monitor_layers))
            steps = inner.enter_context(timing(lm)) if time_steps else []
            torch.manual_seed(seed)
            with torch.inference_mode():
                result = lm.model.generate(
                    **enc, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens or None,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None, top_p=None, top_k=None,
                    pad_token_id=lm.tokenizer.pad_token_id, return_dict_in_generate=True,
                    output_logits=score_tokens, use_cache=True,
                    stopping_criteria=_criteria(on_step, n_prompt, trace),
                )
        out = result.sequences
        if score_tokens:
            first_lp, token_lp = _scores(result.logits, out[:, n_prompt:])
        if after_tokens:
            after = _after_prompt(lm, enc, cache_of(result), n_prompt, after_tokens)
    new = out[:, n_prompt:]
    mask = torch.cat([enc["attention_mask"], _alive(new, lm.tokenizer.eos_token_id)], dim=1)
    replies = [t.strip() for t in lm.tokenizer.batch_decode(new, skip_special_tokens=True)]
    return Generation(replies=replies, token_ids=out, attention_mask=mask, prompt_length=n_prompt, trace=trace,
                      step_ms=list(steps), first_logprobs=first_lp, token_logprobs=token_lp, after_prompt=after,
                      cache=cache_of(result) if keep_cache else None)


def _encode(lm: LoadedModel, prompts: Sequence[str | Conversation], system: str | Sequence[str | None] | None,
            chat: bool) -> Any:
    """The prompts (checked: none empty, one system message each when given per prompt) as the model sees them,
    left-padded on its device."""
    if not prompts:
        raise PromptError("no prompts given")
    empty = [i for i, p in enumerate(prompts)
             if (isinstance(p, str) and not p.strip()) or (not isinstance(p, str) and not p)]
    if empty:
        raise PromptError(f"prompt {empty[0]} is empty; give the model something to reply to")
    systems = [system] * len(prompts) if system is None or isinstance(system, str) else list(system)
    if len(systems) != len(prompts):
        raise PromptError(f"{len(systems)} system messages for {len(prompts)} prompts")
    texts = [format_prompt(lm, p, s, chat) if isinstance(p, str) else format_conversation(lm, p, chat)
             for p, s in zip(prompts, systems, strict=True)]
    return encode_left_padded(lm, texts, add_special_tokens=not (chat and lm.has_chat_template))


def _scores(logits: Sequence[Tensor], chosen: Tensor) -> tuple[Tensor, Tensor]:
    """The first reply token's log-probs ``[rows, vocab]`` and each generated token's log-prob ``[rows, new]``,
    from the logits generation computed."""
    first = torch.log_softmax(logits[0].float(), dim=-1).cpu()
    tokens = torch.stack([x.float().gather(-1, chosen[:, k, None])[:, 0] - torch.logsumexp(x.float(), -1)
                          for k, x in enumerate(logits)], dim=1).cpu()
    return first, tokens


def _alive(new: Tensor, eos: int | None) -> Tensor:
    """``[rows, new]`` 1 for generated tokens up to and with each row's first end-of-sequence token, else 0."""
    if eos is None:
        return torch.ones_like(new)
    ended = (new == eos).long().cumsum(1)
    return ((ended == 0) | ((ended == 1) & (new == eos))).long()


def _criteria(on_step: StepHook | None, n_prompt: int, trace: MonitorTrace | None) -> Any:
    if on_step is None:
        return None
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([_OnStep(on_step, n_prompt, trace)])


def _after_prompt(lm: LoadedModel, enc: Any, cache: Any, n_prompt: int, tokens: Sequence[int]) -> dict[int, Tensor]:
    """Next-token log-probs after the prompt plus one more token, for each token, under whatever hooks are
    active: one decode step on the prompt's KV cache when the cache can be cropped, else a full pass."""
    mask = enc["attention_mask"]
    rows = mask.shape[0]
    ones = torch.ones(rows, 1, dtype=mask.dtype, device=mask.device)
    position = mask.sum(1, keepdim=True)  # the next position of each (left-padded) row
    out: dict[int, Tensor] = {}
    with torch.inference_mode():
        for t in tokens:
            step = torch.full((rows, 1), int(t), dtype=torch.long, device=mask.device)
            try:
                extra = int(cache.get_seq_length()) - n_prompt
                if extra > 0:
                    cache.crop(-extra)  # negative: remove that many tokens (accepted by old and new caches)
                logits = lm.model(input_ids=step, attention_mask=torch.cat([mask, ones], 1), position_ids=position,
                                  **cache_argument(lm.model, cache), use_cache=True).logits[:, -1]
            except (AttributeError, ValueError, NotImplementedError, TypeError):
                ids = torch.cat([enc["input_ids"], step], 1)
                full = torch.cat([mask, ones], 1)
                logits = lm.model(input_ids=ids, attention_mask=full, position_ids=(full.cumsum(1) - 1).clamp(min=0),
                                  use_cache=False, logits_to_keep=1).logits[:, -1]
            out[int(t)] = torch.log_softmax(logits.float(), dim=-1).cpu()
    return out
