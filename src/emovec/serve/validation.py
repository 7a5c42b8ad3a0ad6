"""Say what is wrong with a request pydantic refused: the field (as a dotted path) and what it accepts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from emovec.serve.schemas import MAX_STRENGTH, EmovecOptions

SHOWN = 3  # errors named in one message
# pydantic names the member of a union that failed in the error's location: int, list[int], TextPart, ...
_UNION_MEMBER = re.compile(r"^(int|float|str|bool|none|[A-Z]\w*|(list|dict|literal|function-\w+)\[.*\])$")


def field_path(loc: Sequence[object]) -> str:
    """``("body", "emovec", "steer", "calm")`` -> ``emovec.steer.calm``; list positions stay numbers, the
    union member pydantic tried is left out."""
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(p for i, p in enumerate(parts) if i == 0 or not _UNION_MEMBER.match(p))


def _one(error: Mapping[str, Any]) -> str:
    kind, path, msg = error.get("type", ""), field_path(error.get("loc", ())), str(error.get("msg", ""))
    if kind == "json_invalid":
        return f"malformed JSON body: {error.get('ctx', {}).get('error', msg)}"
    if kind == "extra_forbidden":
        return f"{path}: unknown field; allowed in emovec: {', '.join(EmovecOptions.model_fields)}"
    if kind == "missing":
        return f"{path}: required"
    if path.startswith("emovec.steer.") and kind in ("finite_number", "float_parsing", "float_type",
                                                     "greater_than_equal", "less_than_equal"):
        return (f"{path}: {msg}; allowed: a finite number from -{MAX_STRENGTH:g} to {MAX_STRENGTH:g} "
                "(a fraction of the layer's mean residual norm)")
    return f"{path}: {msg}" if path else msg


def describe(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """One message for pydantic's errors (the first few), and the first field at fault.

    Example:
        >>> describe([{"type": "missing", "loc": ("body", "model"), "msg": "Field required"}])
        ('model: required', 'model')
    """
    if not errors:
        return "invalid request", None
    # a union reports each member's failure at the same field: name the field once, with each member's complaint
    seen: dict[str, list[str]] = {}
    for error in errors:
        path = "" if error.get("type") == "json_invalid" else field_path(error.get("loc", ()))
        text = _one(error)
        prefix = f"{path}: "
        said = seen.setdefault(path, [])
        said.append(text[len(prefix):] if said and text.startswith(prefix) else text)
    messages = ["; or ".join(parts) for parts in seen.values()]
    extra = f" (and {len(messages) - SHOWN} more)" if len(messages) > SHOWN else ""
    first = field_path(errors[0].get("loc", ())) or None
    return "; ".join(messages[:SHOWN]) + extra, None if errors[0].get("type") == "json_invalid" else first
