"""Monitor existing transcripts offline: OpenAI-style chat JSONL in, per-token emotion scores out.

Each line is either a conversation ``{"messages": [{"role": ..., "content": ...}, ...]}`` or one message
``{"role": ..., "content": ...}`` (then the whole file is one conversation). Every message's tokens are
scored in one forward pass per conversation, and summarised per role.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ValidationError

from emovec.errors import CorpusError
from emovec.models.loading import LoadedModel
from emovec.monitor import monitoring
from emovec.vectors.vector_set import VectorSet


class Message(BaseModel):
    role: str
    content: str


@dataclass
class ScoredConversation:
    """Per-token scores of one conversation at one layer.

    Attributes:
        tokens: token texts.
        roles: the role of the message each token belongs to (``""`` for template tokens between messages).
        message_index: the message each token belongs to (-1 for template tokens).
        scores: ``[tokens, vectors]`` scores (projection from the set's centre in units of mean norm).
        names: vector names.
        layer: the layer read.
    """

    messages: list[Message]
    tokens: list[str]
    roles: list[str]
    message_index: list[int]
    scores: torch.Tensor
    names: list[str]
    layer: int

    def message_summary(self, top: int = 5) -> list[dict[str, object]]:
        """Per message: its role, token count, mean and max score of every vector, and the top vectors by mean."""
        out: list[dict[str, object]] = []
        for i, message in enumerate(self.messages):
            rows = self.scores[[t for t, m in enumerate(self.message_index) if m == i]]
            if len(rows) == 0:
                continue
            mean, peak = rows.mean(0), rows.max(0).values
            order = mean.argsort(descending=True)[:top].tolist()
            out.append({"message": i, "role": message.role, "tokens": len(rows),
                        "top": [(self.names[k], float(mean[k])) for k in order],
                        "mean": dict(zip(self.names, mean.tolist(), strict=True)),
                        "max": dict(zip(self.names, peak.tolist(), strict=True))})
        return out

    def role_summary(self, top: int = 5) -> dict[str, dict[str, object]]:
        """Per role: number of tokens, mean score of every vector, and the top vectors by mean."""
        out: dict[str, dict[str, object]] = {}
        for role in dict.fromkeys(r for r in self.roles if r):
            rows = self.scores[[i for i, r in enumerate(self.roles) if r == role]]
            mean = rows.mean(0)
            order = mean.argsort(descending=True)[:top].tolist()
            out[role] = {"tokens": len(rows), "top": [(self.names[i], float(mean[i])) for i in order],
                         "mean": dict(zip(self.names, mean.tolist(), strict=True))}
        return out


def read_transcripts(path: str | Path) -> list[list[Message]]:
    """Parse a chat JSONL file; a malformed line raises with its line number (nothing is skipped)."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"transcript file {p} does not exist")
    conversations: list[list[Message]] = []
    loose: list[Message] = []
    for number, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if isinstance(data, dict) and "messages" in data:
                conversations.append([Message.model_validate(m) for m in data["messages"]])
            else:
                loose.append(Message.model_validate(data))
        except (ValueError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise CorpusError(f"{p}:{number}: not a chat message or conversation ({reason}); expected "
                              '{"role": ..., "content": ...} or {"messages": [...]}') from None
    if loose:
        conversations.append(loose)
    if not conversations or not any(conversations):
        raise CorpusError(f"{p} holds no messages")
    return conversations


def _render(lm: LoadedModel, messages: Sequence[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The conversation as the model sees it, and each message's character span in that text."""
    dicts = [m.model_dump() for m in messages]
    if lm.has_chat_template:
        text = str(lm.tokenizer.apply_chat_template(dicts, tokenize=False))
    else:
        text = "\n\n".join(f"{m.role}: {m.content}" for m in messages)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for m in messages:
        start = text.find(m.content, cursor)
        if start < 0:
            raise CorpusError(f"could not locate a {m.role} message in the rendered conversation")
        spans.append((start, start + len(m.content)))
        cursor = start + len(m.content)
    return text, spans


def score_conversation(lm: LoadedModel, vectors: VectorSet, messages: Sequence[Message],
                       layer: int | None = None, names: Sequence[str] | None = None) -> ScoredConversation:
    """Score every token of one conversation on the vectors at one layer (one forward pass).

    Example:
        >>> conv = score_conversation(lm, vs, read_transcripts("chat.jsonl")[0])
        >>> conv.role_summary()["assistant"]["top"]
    """
    chosen = vectors.default_layer if layer is None else layer
    text, spans = _render(lm, messages)
    enc = lm.tokenizer(text, return_tensors="pt", return_offsets_mapping=True, add_special_tokens=False)
    offsets = enc.pop("offset_mapping")[0].tolist()
    with monitoring(lm, vectors, names=names, layers=[chosen]) as trace, torch.inference_mode():
        lm.model(**enc.to(lm.device))
    owner = []
    for a, b in offsets:
        hit = next((i for i, (s, e) in enumerate(spans) if a < e and b > s), -1)
        owner.append(hit)
    return ScoredConversation(
        messages=list(messages), tokens=lm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist()),
        roles=[messages[i].role if i >= 0 else "" for i in owner], message_index=owner,
        scores=trace.scores[0, :, 0], names=trace.names, layer=chosen,
    )
