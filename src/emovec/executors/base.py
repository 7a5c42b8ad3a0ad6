"""The executor interface, its options, and the local executor.

A unit of work is ``fn(lm, shared, item, state)``: ``lm`` the worker's loaded model, ``shared`` what every item
needs (sent once per worker), ``item`` one keyed batch, ``state`` a dict the worker keeps between items (caches).
``fn`` must be a module-level function so a remote worker can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from emovec.errors import EmovecError
from emovec.models.loading import LoadedModel

T = TypeVar("T")
R = TypeVar("R")
WorkFn = Callable[[LoadedModel, Any, Any, dict[str, Any]], Any]


class ExecutorError(EmovecError, RuntimeError):
    """Work could not be run where it was asked to run."""


class ModelSpec(BaseModel):
    """How a worker loads its own copy of the model (``emovec.load_model`` arguments)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    device: str | None = None
    dtype: str | None = None


class ExecutorOptions(BaseModel):
    """``kind``: ``local`` (this process) or ``ray``. Ray: ``workers`` model replicas (actors), each with
    ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs (None: one per replica when the cluster has a GPU for
    every worker, else none; see ``emovec.executors.ray_pool.gpus_per_replica``); ``address`` of an existing
    cluster (default: the
    ``RAY_ADDRESS`` environment variable, else a local instance); a batch whose worker dies is retried on a fresh
    worker up to ``retries`` times."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "ray"] = "local"
    workers: int = Field(default=2, ge=1)
    cpus_per_worker: float = Field(default=1.0, gt=0)
    gpus_per_worker: float | None = Field(default=None, ge=0)
    address: str | None = None
    retries: int = Field(default=2, ge=0)


class Executor(Protocol):
    name: str

    def map(self, fn: WorkFn, shared: Any, items: Sequence[Any],
            on_result: Callable[[int, Any], None]) -> None:
        """Run ``fn`` on every item; call ``on_result(index, result)`` in this process as results arrive (the
        order may differ from ``items``; every index is reported exactly once)."""
        ...


class LocalExecutor:
    """Runs every item in this process, in order, on the model already loaded."""

    name = "local"

    def __init__(self, lm: LoadedModel, state: dict[str, Any] | None = None) -> None:
        self.lm = lm
        self.state: dict[str, Any] = state if state is not None else {}

    def map(self, fn: WorkFn, shared: Any, items: Sequence[Any],
            on_result: Callable[[int, Any], None]) -> None:
        for i, item in enumerate(items):
            on_result(i, fn(self.lm, shared, item, self.state))
