"""The Ray executor: a pool of actors, each holding one loaded model, fed the caller's keyed batches.

Results come back to the calling process, which alone writes them (through the keyed store), so a worker killed
mid-batch leaves nothing behind: its batch is sent again to a fresh worker (up to ``retries`` times) and is
written once. A worker whose model cannot load fails the run with that worker's error instead of hanging.
Connects to ``options.address`` or ``RAY_ADDRESS`` when given (an existing cluster), else starts a local Ray.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from emovec.executors.base import ExecutorError, ExecutorOptions, ModelSpec, WorkFn
from emovec.models.loading import load_model


def require_ray() -> Any:
    """The ``ray`` module, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ExecutorError("the Ray executor needs Ray: pip install 'emovec[ray]' (or pip install ray), or use "
                            "--executor local") from None
    return ray


def connect(options: ExecutorOptions) -> tuple[Any, bool]:
    """Ray, connected to ``options.address`` (or ``RAY_ADDRESS``) or to a local instance started here, and
    whether this call started it; an error when the cluster has fewer GPUs than the workers need."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        address = options.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(2, int(options.workers * options.cpus_per_worker)), include_dashboard=False,
                     log_to_driver=False)
        started = True
    gpus_per_replica(ray, options)  # a cluster short of the GPUs asked for fails here, before any work
    return ray, started


def gpus_per_replica(ray: Any, options: ExecutorOptions) -> float:
    """The GPUs each replica (actor or trial) asks for: ``options.gpus_per_worker`` when given (an error when the
    cluster has fewer than the workers need); when not given, one per replica if the cluster has a GPU for every
    worker, else none (replicas on CPUs)."""
    have = float(ray.cluster_resources().get("GPU", 0))
    if options.gpus_per_worker is None:
        return 1.0 if have >= options.workers else 0.0
    need = options.gpus_per_worker * options.workers
    if options.gpus_per_worker > 0 and have < need:
        raise ExecutorError(f"{options.workers} workers x {options.gpus_per_worker:g} GPUs need {need:g} GPUs; "
                            f"the Ray cluster has {have:g}. Lower --workers or --gpus-per-worker, or set it to 0 "
                            "to run on CPUs")
    return float(options.gpus_per_worker)


class _ModelWorker:
    """One model replica. Loads the model once; keeps ``state`` (caches) across batches."""

    def __init__(self, spec: ModelSpec) -> None:
        self.lm = load_model(spec.name, device=spec.device, dtype=spec.dtype)
        self.state: dict[str, Any] = {}

    def ready(self) -> str:
        return f"{os.getpid()}"

    def run(self, fn: WorkFn, shared: Any, item: Any) -> Any:
        return fn(self.lm, shared, item, self.state)


class RayExecutor:
    """Runs batches on ``options.workers`` Ray actors (see the module docs)."""

    name = "ray"

    def __init__(self, spec: ModelSpec, options: ExecutorOptions) -> None:
        require_ray()  # no Ray installed: say so now, before any work is planned
        self.spec, self.options = spec, options
        self.started_ray = False
        self.actors: list[Any] = []

    def _init(self) -> Any:
        ray, started = connect(self.options)
        self.started_ray = self.started_ray or started
        return ray

    def _actor(self, ray: Any) -> Any:
        cls = ray.remote(num_cpus=self.options.cpus_per_worker, num_gpus=gpus_per_replica(ray, self.options),
                         max_restarts=0)(_ModelWorker)
        return cls.remote(self.spec)

    def map(self, fn: WorkFn, shared: Any, items: Sequence[Any],
            on_result: Callable[[int, Any], None]) -> None:
        if not items:
            return
        ray = self._init()
        errors = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)
        shared_ref = ray.put(shared)
        self.actors = [self._actor(ray) for _ in range(min(self.options.workers, len(items)))]
        idle = deque(self.actors)
        queue: deque[tuple[int, int]] = deque((i, 0) for i in range(len(items)))  # (index, attempt)
        pending: dict[Any, tuple[int, int, Any]] = {}
        try:
            while queue or pending:
                while queue and idle:
                    index, attempt = queue.popleft()
                    actor = idle.popleft()
                    pending[actor.run.remote(fn, shared_ref, items[index])] = (index, attempt, actor)
                done, _ = ray.wait(list(pending), num_returns=1)
                index, attempt, actor = pending.pop(done[0])
                try:
                    result = ray.get(done[0])
                except errors as err:
                    if _load_failure(err):
                        raise ExecutorError(f"a Ray worker could not load {self.spec.name!r}: {err}") from None
                    if attempt >= self.options.retries:
                        raise ExecutorError(f"batch {index} failed {attempt + 1} times on Ray workers; last "
                                            f"error: {err}") from None
                    queue.appendleft((index, attempt + 1))  # the batch again, on a fresh worker
                    fresh = self._actor(ray)
                    self.actors = [a for a in self.actors if a is not actor] + [fresh]
                    idle.append(fresh)
                    continue
                except ray.exceptions.RayTaskError as err:
                    raise ExecutorError(f"batch {index} raised on a Ray worker: {err.cause!r}") from None
                on_result(index, result)
                idle.append(actor)
        finally:
            for a in self.actors:
                ray.kill(a)
            self.actors = []


def _load_failure(err: BaseException) -> bool:
    """An actor that died in its constructor (the model did not load), not one that was killed mid-batch."""
    text = str(err)
    return "creation task" in text or "__init__" in text
