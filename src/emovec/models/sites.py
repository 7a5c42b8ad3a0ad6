"""Forward hooks on the residual stream after each block, registered only inside a context manager.

Blocks return either a tensor or a tuple whose first element is the hidden state, depending on the
architecture and the transformers version; ``block_output_hooks`` hides that difference. Hooks are always
removed on exit, also when the forward pass raises. Model modules are never replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

from emovec.models.kvcache import cache_in
from emovec.models.loading import LoadedModel

# fn(layer, hidden) -> replacement hidden state, or None to leave it unchanged.
BlockFn = Callable[[int, Tensor], Tensor | None]


def _hook_for(layer: int, fn: BlockFn) -> Callable[[nn.Module, Any, Any], Any]:
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        new = fn(layer, hidden)
        if new is None:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def cache_offset(kwargs: dict[str, Any]) -> int:
    """How many positions the KV cache already holds before this forward pass (0 for a fresh sequence)."""
    cache = cache_in(kwargs)
    return int(cache.get_seq_length()) if cache is not None and hasattr(cache, "get_seq_length") else 0


@contextmanager
def backbone_pre_hook(lm: LoadedModel, fn: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call ``fn(kwargs)`` before every forward pass of the backbone (inputs, cache), removing it on exit."""

    def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        merged = dict(kwargs)
        if args:
            merged.setdefault("input_ids", args[0])
        fn(merged)

    handle = lm.backbone.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def block_output_hooks(lm: LoadedModel, layers: Sequence[int], fn: BlockFn) -> Iterator[None]:
    """Call ``fn(layer, hidden)`` on the residual stream after each block in ``layers`` during forward passes.

    Args:
        lm: the model.
        layers: validated block indices.
        fn: called with the block index and its output hidden state ``[batch, pos, d_model]``; may return a
            replacement tensor of the same shape.

    Example:
        >>> with block_output_hooks(lm, [3], lambda i, h: print(i, h.shape)):
        ...     lm.backbone(**batch)
    """
    blocks = lm.blocks
    handles = []
    try:
        for layer in layers:
            handles.append(blocks[layer].register_forward_hook(_hook_for(layer, fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()
