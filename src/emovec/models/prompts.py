"""The text a model sees for a prompt (its chat template, when it has one) and a batch of prompts encoded for
generation (left-padded, so every row's reply starts at the same position)."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import BatchEncoding

from emovec.errors import EmovecError
from emovec.models.loading import LoadedModel

Conversation = Sequence[dict[str, str]]


class PromptError(EmovecError, ValueError):
    """An empty or unusable prompt."""


def format_prompt(lm: LoadedModel, prompt: str, system: str | None = None, chat: bool = True) -> str:
    """The text the model sees: the chat template when the model has one and ``chat`` is set.

    Example:
        >>> text = format_prompt(lm, "How are you?", system="Answer briefly.")
    """
    if chat and lm.has_chat_template:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return str(lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return f"{system}\n\n{prompt}" if system else prompt


def format_conversation(lm: LoadedModel, messages: Conversation, chat: bool = True) -> str:
    """A whole conversation (``[{"role": ..., "content": ...}]``) as the model sees it, ready for the reply."""
    if not messages:
        raise PromptError("a conversation has no messages")
    if chat and lm.has_chat_template:
        return str(lm.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
    return "\n\n".join(m["content"] for m in messages)


def encode_left_padded(lm: LoadedModel, texts: Sequence[str], add_special_tokens: bool) -> BatchEncoding:
    """``texts`` tokenized as one batch padded on the left (the tokenizer's own padding side is restored), on the
    model's device.

    Example:
        >>> enc = encode_left_padded(lm, [format_prompt(lm, "Hi")], add_special_tokens=not lm.has_chat_template)
    """
    tok = lm.tokenizer
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok(list(texts), return_tensors="pt", padding=True, add_special_tokens=add_special_tokens)
    finally:
        tok.padding_side = side
    return enc.to(lm.device)
