"""The KV cache under either of its names: transformers 5.25 renamed ``past_key_values`` (forward argument and
output field) to ``cache``, keeping the old name as a deprecated alias. Everything in emovec that passes or reads
a cache goes through these three functions, so it works on releases before and after the rename."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

__all__ = ["cache_argument", "cache_in", "cache_of"]


_NAMES: dict[type, str] = {}


def _argument_name(model_cls: type) -> str:
    if model_cls not in _NAMES:
        try:
            params = inspect.signature(model_cls.forward).parameters  # type: ignore[attr-defined]
            _NAMES[model_cls] = "cache" if "cache" in params else "past_key_values"
        except (AttributeError, TypeError, ValueError):
            _NAMES[model_cls] = "past_key_values"
    return _NAMES[model_cls]


def cache_argument(model: nn.Module, cache: Any) -> dict[str, Any]:
    """``{name: cache}`` for ``model(**inputs, **cache_argument(model, cache))``, with the name the installed
    transformers expects."""
    return {_argument_name(type(model)): cache}


def cache_of(output: Any) -> Any:
    """The KV cache a forward pass or ``generate`` returned (``None`` when it returned none)."""
    fields = output.keys() if hasattr(output, "keys") else ()
    if "cache" in fields:
        return output["cache"]
    if "past_key_values" in fields:
        return output["past_key_values"]
    return getattr(output, "cache", None)


def cache_in(kwargs: dict[str, Any]) -> Any:
    """The KV cache among a forward pass's keyword arguments (as a forward pre-hook sees them), under either name."""
    cache = kwargs.get("cache")
    return cache if cache is not None else kwargs.get("past_key_values")
