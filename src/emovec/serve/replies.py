"""Shape finished jobs and stream events into the OpenAI reply bodies (chat or text completion, whole or as
server-sent event chunks), each carrying the ``emovec`` field: the steering applied and the readout."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from emovec.serve.jobs import Finished, Progress, RowMonitor, RowSteer
from emovec.serve.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatChunk,
    ChatChunkChoice,
    ChatCompletion,
    ChoiceReadout,
    Completion,
    Delta,
    EmovecReply,
    ErrorBody,
    ErrorDetail,
    MonitorBlock,
    SteerBlock,
    TextChoice,
    Usage,
)

Kind = Literal["chat", "text"]


def sse(body: BaseModel | str) -> bytes:
    """One server-sent event: ``data: <json>`` (or ``data: [DONE]``) and a blank line."""
    return f"data: {body if isinstance(body, str) else body.model_dump_json()}\n\n".encode()


def error_body(message: str, status: int, param: str | None = None, code: str | None = None) -> ErrorBody:
    """OpenAI's error shape; ``type`` follows the status as OpenAI's does."""
    kinds = {401: "authentication_error", 404: "not_found_error", 413: "invalid_request_error",
             429: "rate_limit_error", 503: "service_unavailable", 504: "timeout"}
    kind = kinds.get(status, "invalid_request_error" if status < 500 else "server_error")
    return ErrorBody(error=ErrorDetail(message=message, type=kind, param=param, code=code))


@dataclass
class ReplyShape:
    """What every body of one request's reply shares.

    Attributes:
        kind: ``chat`` (``/v1/chat/completions``) or ``text`` (``/v1/completions``).
        model: the served model name.
        steer: the steering applied, or ``None``.
        monitor: the readout asked for, or ``None``.
        prompt_tokens: the prompts' tokens, all choices together.
    """

    kind: Kind
    model: str
    steer: RowSteer | None
    monitor: RowMonitor | None
    prompt_tokens: int
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.id = self.id or f"{'chatcmpl' if self.kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"

    def steer_block(self) -> SteerBlock | None:
        s = self.steer
        return None if s is None else SteerBlock(terms=dict(s.terms), layers=list(s.layers), mode=s.mode,
                                                 scope=s.scope)

    def emovec(self, choices: list[ChoiceReadout] | None, steer: bool = True) -> EmovecReply:
        monitor = None
        if self.monitor is not None and choices is not None:
            monitor = MonitorBlock(names=list(self.monitor.names), layer=self.monitor.layer, choices=choices)
        return EmovecReply(steer=self.steer_block() if steer else None, monitor=monitor)

    def usage(self, results: list[Finished]) -> Usage:
        done = sum(r.completion_tokens for r in results)
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=done, total_tokens=self.prompt_tokens + done)

    # -- whole replies ---------------------------------------------------------------------------------------

    def whole(self, results: list[Finished]) -> ChatCompletion | Completion:
        """The non-streamed reply, choices in index order."""
        results = sorted(results, key=lambda r: r.index)
        readouts = [ChoiceReadout(index=r.index, tokens=r.tokens, summary=r.summary) for r in results]
        usage, emovec = self.usage(results), self.emovec(readouts)
        if self.kind == "chat":
            return ChatCompletion(id=self.id, created=self.created, model=self.model, usage=usage, emovec=emovec,
                                  choices=[ChatChoice(index=r.index, message=AssistantMessage(content=r.text),
                                                      finish_reason=r.finish_reason) for r in results])
        return Completion(id=self.id, created=self.created, model=self.model, usage=usage, emovec=emovec,
                          choices=[TextChoice(index=r.index, text=r.text, finish_reason=r.finish_reason)
                                   for r in results])

    # -- stream chunks -----------------------------------------------------------------------------------------

    def _chunk(self, index: int, text: str | None, reason: str | None, role: bool = False,
               emovec: EmovecReply | None = None) -> ChatChunk | Completion:
        if self.kind == "chat":
            delta = Delta(role="assistant" if role else None, content=text)
            return ChatChunk(id=self.id, created=self.created, model=self.model, emovec=emovec,
                             choices=[ChatChunkChoice(index=index, delta=delta, finish_reason=reason)])
        return Completion(id=self.id, created=self.created, model=self.model, emovec=emovec,
                          choices=[TextChoice(index=index, text=text or "", finish_reason=reason)])

    def opening(self, index: int) -> ChatChunk | Completion:
        """The first chunk of a choice: the assistant role (chat) and the steering applied."""
        return self._chunk(index, "", None, role=True, emovec=self.emovec([]))

    def progress(self, event: Progress) -> ChatChunk | Completion:
        """New text, with the tokens scored since the last chunk when the request monitors."""
        readout = [ChoiceReadout(index=event.index, tokens=event.tokens)] if self.monitor is not None else None
        return self._chunk(event.index, event.text, None,
                           emovec=self.emovec(readout, steer=False) if readout else None)

    def closing(self, event: Finished) -> ChatChunk | Completion:
        """The choice's last chunk: its finish reason and, when monitored, its readout summary."""
        readout = [ChoiceReadout(index=event.index, tokens=[], summary=event.summary)]
        return self._chunk(event.index, "" if self.kind == "text" else None, event.finish_reason,
                           emovec=self.emovec(readout, steer=False) if self.monitor is not None else None)

    def usage_chunk(self, results: list[Finished]) -> ChatChunk | Completion:
        """The chunk ``stream_options.include_usage`` asks for: no choices, the usage."""
        if self.kind == "chat":
            return ChatChunk(id=self.id, created=self.created, model=self.model, choices=[], usage=self.usage(results))
        return Completion(id=self.id, created=self.created, model=self.model, choices=[], usage=self.usage(results))
