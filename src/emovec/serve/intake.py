"""Turn a parsed request into jobs, refusing what the server cannot honour with a message that names the field and
what it accepts.

Everything that depends on the served model and vector set is checked here: the model name, vector names,
layers, token limits. Structural checks (types, finite strengths within ``MAX_STRENGTH``, unknown fields in the
``emovec`` block) are done by the schemas before a request gets here. A request takes no paths and names no model
but the served one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from emovec.errors import EmovecError
from emovec.generation import format_conversation
from emovec.models.loading import LoadedModel
from emovec.serve.jobs import Job, RowMonitor, RowSteer, Sink
from emovec.serve.options import ServeOptions
from emovec.serve.schemas import BaseRequest, ChatMessage, ChatRequest, CompletionRequest, EmovecOptions
from emovec.vectors.vector_set import VectorSet

MAX_STOPS = 4


class RequestError(EmovecError, ValueError):
    """A request the server refuses: ``status`` (4xx), the field at fault (``param``) and what to send instead."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.status, self.code = message, param, status, code


def _listing(values: Sequence[object]) -> str:
    return ", ".join(str(v) for v in values)


def _unsupported(param: str, what: str) -> RequestError:
    return RequestError(f"{param}: {what} is not supported by emovec serve", param, code="unsupported")


def check_sampling(body: BaseRequest) -> None:
    """Refuse sampling settings emovec's ``generate`` does not have (``n`` > 1, ``top_p`` < 1, penalties, biases)."""
    if body.n not in (None, 1):
        raise _unsupported("n", f"n={body.n} (one choice per prompt; allowed: 1)")
    if body.top_p not in (None, 1.0):
        raise _unsupported("top_p", f"top_p={body.top_p} (allowed: 1)")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(body, name) not in (None, 0.0):
            raise _unsupported(name, f"a non-zero {name} (allowed: 0)")
    if body.logit_bias:
        raise _unsupported("logit_bias", "a logit bias (allowed: {})")


def stops(body: BaseRequest) -> tuple[str, ...]:
    """The request's stop strings: at most four, none empty."""
    found = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(found) > MAX_STOPS or any(not s for s in found):
        raise RequestError(f"stop: give at most {MAX_STOPS} non-empty strings, got {found!r}", "stop")
    return tuple(found)


@dataclass
class Intake:
    """Checks requests against the served model and vector set and makes their jobs.

    Attributes:
        lm: the served model, with a tokenizer of its own (a copy): only the worker thread uses the model's.
        vectors: the served vector set, or ``None`` (no steering or readout).
        options: the server's settings.
        name: the model name clients send.
        context: the model's context length in tokens, when known.
    """

    lm: LoadedModel
    vectors: VectorSet | None
    options: ServeOptions
    name: str
    context: int | None = None

    # -- the request as a whole ------------------------------------------------------------------------------

    def check_model(self, model: str) -> None:
        if model != self.name:
            raise RequestError(f"model {model!r} is not served here; this server serves {self.name!r} "
                               "(GET /v1/models)", "model", 404, "model_not_found")

    def max_tokens(self, asked: int | None) -> int:
        limit = self.options.max_tokens_limit
        value = self.options.default_max_tokens if asked is None else asked
        if value > limit:
            raise RequestError(f"max_tokens: {value} is more than this server allows; allowed: 1..{limit}",
                               "max_tokens")
        return min(value, limit)

    def count(self, prompt: str | list[dict[str, str]], chat: bool) -> int:
        """The prompt's length in tokens as ``generate`` encodes it; refused past the limits."""
        lm = self.lm
        text = format_conversation(lm, prompt) if isinstance(prompt, list) else prompt
        n = len(lm.tokenizer(text, add_special_tokens=not (chat and lm.has_chat_template))["input_ids"])
        limit = self.options.max_prompt_tokens
        if n > limit:
            raise RequestError(f"the prompt is {n} tokens; allowed: at most {limit}", "messages" if chat else "prompt")
        return n

    def check_context(self, prompt_tokens: int, max_tokens: int) -> None:
        if self.context is not None and prompt_tokens + max_tokens > self.context:
            raise RequestError(f"max_tokens: the prompt ({prompt_tokens} tokens) and max_tokens ({max_tokens}) "
                               f"exceed the model's context of {self.context} tokens", "max_tokens")

    # -- the emovec block ----------------------------------------------------------------------------------------

    def _vectors(self, param: str) -> VectorSet:
        if self.vectors is None:
            raise RequestError(f"{param}: this server has no vector set; start it with --vectors DIR", param)
        return self.vectors

    def _name(self, vs: VectorSet, name: str, param: str) -> str:
        if name not in vs.names:
            raise RequestError(f"{param}: no vector named {name!r}; allowed: {_listing(vs.names)}", param)
        return name

    def _layer(self, vs: VectorSet, layer: int, param: str) -> int:
        if layer not in vs.layers:
            raise RequestError(f"{param}: layer {layer} is not available; allowed: {_listing(vs.layers)} "
                               "(the vector set's layers)", param)
        return layer

    def default_layer(self) -> int:
        vs = self._vectors("emovec.layer")
        return self.options.layer if self.options.layer is not None else vs.default_layer

    def steer(self, block: EmovecOptions | None, default: RowSteer | None) -> RowSteer | None:
        """The request's steering: its own ``steer``, else the server's default; ``{}`` turns it off."""
        if block is None or block.steer is None:
            stray = sorted({"layer", "mode", "scope"} & (block.model_fields_set if block is not None else set()))
            if stray:
                raise RequestError(f"emovec.{stray[0]} applies to emovec.steer, which the request does not give; "
                                   'add it, e.g. {"steer": {"calm": 0.05}}', f"emovec.{stray[0]}")
            return default
        if not block.steer:
            return None
        vs = self._vectors("emovec.steer")
        for name in block.steer:
            self._name(vs, name, f"emovec.steer.{name}")
        asked = block.layer if block.layer is not None else self.default_layer()
        layers = [asked] if isinstance(asked, int) else list(asked)
        if not layers or len(set(layers)) != len(layers):
            raise RequestError(f"emovec.layer: give one layer or distinct layers; allowed: {_listing(vs.layers)}",
                               "emovec.layer")
        checked = tuple(sorted(self._layer(vs, layer, "emovec.layer") for layer in layers))
        return RowSteer(tuple(sorted(block.steer.items())), checked, block.mode, block.scope)

    def monitor(self, block: EmovecOptions | None) -> RowMonitor | None:
        """The request's readout: the vectors named in ``monitor`` (``true``: all) at ``monitor_layer``."""
        if block is None or block.monitor is False or block.monitor == []:
            if block is not None and block.monitor_layer is not None:
                raise RequestError("emovec.monitor_layer applies to emovec.monitor, which the request does not give",
                                   "emovec.monitor_layer")
            return None
        vs = self._vectors("emovec.monitor")
        names = list(vs.names) if block.monitor is True else list(dict.fromkeys(block.monitor))
        for name in names:
            self._name(vs, name, "emovec.monitor")
        layer = block.monitor_layer if block.monitor_layer is not None else vs.default_layer
        return RowMonitor(tuple(names), self._layer(vs, layer, "emovec.monitor_layer"))

    # -- jobs --------------------------------------------------------------------------------------------------

    def jobs(self, body: BaseRequest, prompts: Sequence[str | list[dict[str, str]]], chat: bool, asked: int | None,
             sink: Sink, default: RowSteer | None) -> list[Job]:
        """One job per prompt, every check passed."""
        self.check_model(body.model)
        check_sampling(body)
        max_tokens = self.max_tokens(asked)
        stop = stops(body)
        steer, monitor = self.steer(body.emovec, default), self.monitor(body.emovec)
        deadline = time.monotonic() + self.options.timeout_s
        out = []
        for index, prompt in enumerate(prompts):
            n = self.count(prompt, chat)
            self.check_context(n, max_tokens)
            out.append(Job(index=index, prompt=prompt, chat=chat, max_tokens=max_tokens, stop=stop,
                           temperature=body.temperature or 0.0, seed=body.seed or 0, steer=steer, monitor=monitor,
                           prompt_tokens=n, sink=sink, stream=body.stream, deadline=deadline))
        return out


def conversation(messages: Sequence[ChatMessage], limit: int) -> list[dict[str, str]]:
    """Chat messages as ``generate`` takes a conversation: roles (``developer`` read as ``system``) and text."""
    if len(messages) > limit:
        raise RequestError(f"messages: {len(messages)} messages; allowed: at most {limit}", "messages")
    out = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else "".join(p.text for p in m.content or [])
        out.append({"role": "system" if m.role == "developer" else m.role, "content": content})
    return out


def check_chat(body: ChatRequest) -> None:
    """Refuse chat features emovec serve does not have: tools, log-probs, structured output."""
    if body.tools:
        raise _unsupported("tools", "tool calling")
    if body.logprobs:
        raise _unsupported("logprobs", "log-probs (allowed: false)")
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise _unsupported("response_format", f"response_format {kind!r} (allowed: text)")


def completion_prompts(body: CompletionRequest, limit: int) -> list[str]:
    """The text completion's prompts: one or a list, none blank; no echo, log-probs, suffix or best_of."""
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not prompts or len(prompts) > limit:
        raise RequestError(f"prompt: give 1..{limit} prompts, got {len(prompts)}", "prompt")
    if any(not p.strip() for p in prompts):
        raise RequestError("prompt: a prompt is empty; give the model something to continue", "prompt")
    if body.echo:
        raise _unsupported("echo", "echo (allowed: false)")
    if body.logprobs:
        raise _unsupported("logprobs", "log-probs (allowed: null or 0)")
    if body.suffix is not None or body.best_of not in (None, 1):
        raise _unsupported("suffix" if body.suffix is not None else "best_of", "suffix and best_of")
    return prompts
