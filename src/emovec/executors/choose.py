"""Pick the executor a run asks for (the local one needs nothing; Ray is imported only when asked for)."""

from __future__ import annotations

from typing import Any

from emovec.executors.base import Executor, ExecutorError, ExecutorOptions, LocalExecutor, ModelSpec
from emovec.executors.ray_pool import RayExecutor, require_ray
from emovec.models.loading import LoadedModel


def make_executor(options: ExecutorOptions | None, lm: LoadedModel, spec: ModelSpec | None = None,
                  state: dict[str, Any] | None = None) -> Executor:
    """The executor ``options`` ask for: local on ``lm``, or a Ray pool whose workers load ``spec`` (by default
    the model ``lm`` was loaded from, by name or path)."""
    if options is None or options.kind == "local":
        return LocalExecutor(lm, state)

    return RayExecutor(spec or spec_of(lm), options)


def check_available(options: ExecutorOptions | None) -> None:
    """Fail now, before any model loads, when ``options`` ask for Ray and Ray is not installed."""
    if options is not None and options.kind == "ray":
        require_ray()


def spec_of(lm: LoadedModel) -> ModelSpec:
    """How a remote worker loads the model ``lm`` was loaded from (a built-in name, a ``.gguf`` file, a folder or
    a hub id); a model wrapped from an object in memory cannot be sent, so say how to save it."""
    src = lm.source
    if src.kind == "object":
        raise ExecutorError(f"the model {src.name!r} was wrapped from an object in memory, so Ray workers cannot "
                            "load it: save it with save_pretrained() and load that folder with emovec.load_model")
    name = src.name if src.kind == "builtin" else src.location
    return ModelSpec(name=name, device=None if lm.device.type == "cpu" else lm.device.type,
                     dtype=str(lm.dtype).removeprefix("torch."))
