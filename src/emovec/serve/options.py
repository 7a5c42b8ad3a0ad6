"""The server's settings: what ``emovec serve``'s flags set, in one typed object."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeOptions(BaseModel):
    """How ``create_app`` serves a model.

    Attributes:
        name: the model name clients send (``model``); default: the loaded model's name.
        api_key: when set, every route but ``/health`` wants ``Authorization: Bearer <key>``.
        steer: the default steering, ``{name: strength}`` (added), for requests that give none.
        layer: the default steered layer (default: the vector set's layer).
        max_batch: requests decoded together at most.
        max_queue: requests waiting at most; one more gets 429.
        batch_wait_s: how long the worker waits for more requests to join a batch once one is waiting.
        timeout_s: a request's limit, queue and generation together; past it the reply is 504.
        max_tokens_limit: the largest ``max_tokens`` accepted.
        default_max_tokens: ``max_tokens`` when a request gives none.
        max_prompt_tokens: the longest prompt accepted, in tokens.
        max_messages: the most messages in one chat request.
        max_prompts: the most prompts in one text completion request.
        max_body_bytes: the largest request body accepted (413 past it).

    Example:
        >>> options = ServeOptions(api_key="secret", steer={"calm": 0.05}, max_batch=8)
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    api_key: str | None = None
    steer: dict[str, float] = Field(default_factory=dict)
    layer: int | None = None
    max_batch: int = Field(default=16, ge=1)
    max_queue: int = Field(default=256, ge=1)
    batch_wait_s: float = Field(default=0.02, ge=0)
    timeout_s: float = Field(default=600.0, gt=0)
    max_tokens_limit: int = Field(default=1024, ge=1)
    default_max_tokens: int = Field(default=256, ge=1)
    max_prompt_tokens: int = Field(default=4096, ge=1)
    max_messages: int = Field(default=256, ge=1)
    max_prompts: int = Field(default=64, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
