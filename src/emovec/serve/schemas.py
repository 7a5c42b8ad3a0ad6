"""Request and response bodies of the server: the OpenAI chat and text completion shapes (what the official
``openai`` client sends and reads), and the ``emovec`` block a request adds in its extra body and a reply carries
back.

Top-level OpenAI fields emovec does not use are accepted and ignored (as vLLM does), so harnesses that send
sampling extras keep working; the reply names them in the ``x-emovec-ignored-fields`` header. Fields that would
change the reply in a way emovec cannot honour (tools, ``n`` > 1, log-probs, penalties) are refused by
``emovec.serve.intake``. The ``emovec`` block itself forbids unknown fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A steering strength or clamp value: a fraction of the layer's mean residual-stream norm. Past a few units the
# model only emits noise; the bound keeps a typo (5000 for 0.05) from reaching the model.
MAX_STRENGTH = 10.0
Strength = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_STRENGTH, le=MAX_STRENGTH)]
Mode = Literal["add", "clamp", "ablate"]
Scope = Literal["all", "prompt", "generated"]


class EmovecOptions(BaseModel):
    """The ``emovec`` block of a request's extra body: per-request steering and readout.

    Attributes:
        steer: ``{name: strength}``; strengths are fractions of the layer's mean residual norm (``clamp``: the
            target projection; ``ablate``: ignored). Left out, the server's own ``--steer`` applies; ``{}`` turns
            steering off for this request.
        layer: the steered layer or layers (default: the server's ``--layer``, else the vector set's layer).
        mode: ``add``, ``clamp`` or ``ablate``.
        scope: steer ``all`` tokens, only the ``prompt`` or only the ``generated`` ones.
        monitor: vector names to read at every reply token, or ``true`` for every vector of the set.
        monitor_layer: the layer read (default: the vector set's layer).

    Example:
        >>> EmovecOptions(steer={"calm": 0.05}, layer=14, monitor=["desperate", "calm"])
    """

    model_config = ConfigDict(extra="forbid")

    steer: dict[str, Strength] | None = None
    layer: int | list[int] | None = None
    mode: Mode = "add"
    scope: Scope = "all"
    monitor: list[str] | bool = False
    monitor_layer: int | None = None


class _Loose(BaseModel):
    """OpenAI request parts: unknown fields are kept (and reported as ignored), not refused."""

    model_config = ConfigDict(extra="allow")


class TextPart(_Loose):
    type: Literal["text"]
    text: str


class ChatMessage(_Loose):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None


class StreamOptions(_Loose):
    include_usage: bool = False


class BaseRequest(_Loose):
    """The fields chat and text completions share."""

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(default=None, allow_inf_nan=False)
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    emovec: EmovecOptions | None = None


class ChatRequest(BaseRequest):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, object]] | None = None
    tool_choice: object = None
    response_format: dict[str, object] | None = None


class CompletionRequest(BaseRequest):
    """``POST /v1/completions``: one prompt, or a list of prompts (one choice each)."""

    prompt: str | list[str]
    logprobs: int | None = None
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None


# -- replies ------------------------------------------------------------------------------------------------------

class TokenScores(BaseModel):
    """One reply token and its readout: ``(h - centre) . unit(v) / mean_norm`` at the monitored layer, with ``h``
    the residual stream at this token (the unit steering strengths use)."""

    id: int
    token: str
    scores: dict[str, float]


class ReadoutSummary(BaseModel):
    """Mean and peak score of each monitored vector over the reply's tokens, and the top vectors by mean."""

    mean: dict[str, float]
    max: dict[str, float]
    top: list[tuple[str, float]]


class ChoiceReadout(BaseModel):
    index: int
    tokens: list[TokenScores]
    summary: ReadoutSummary | None = None


class MonitorBlock(BaseModel):
    names: list[str]
    layer: int
    unit: str = "fraction of the layer's mean residual-stream norm, from the vector set's centre"
    choices: list[ChoiceReadout]


class SteerBlock(BaseModel):
    terms: dict[str, float]
    layers: list[int]
    mode: Mode
    scope: Scope


class EmovecReply(BaseModel):
    """The ``emovec`` field of a reply (and of stream chunks, partially): the steering applied and the readout."""

    steer: SteerBlock | None = None
    monitor: MonitorBlock | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    emovec: EmovecReply


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    emovec: EmovecReply | None = None


class TextChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage | None = None
    emovec: EmovecReply | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "emovec"
    emovec: dict[str, Any]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
