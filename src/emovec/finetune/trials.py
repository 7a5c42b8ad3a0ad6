"""One ``emovec finetune`` run as a Ray Tune trial: on a worker with ``gpus_per_worker`` GPUs, retried from its last
checkpoint up to ``retries`` times, watched by whatever callback ``monitor`` builds on the worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from emovec.executors import ExecutorOptions
from emovec.executors.ray_pool import connect, gpus_per_replica
from emovec.finetune.train import FinetuneConfig, FinetuneError, FinetuneResult, finetune, read_result
from emovec.models.loading import LoadedModel, load_model

MonitorFactory = Callable[[LoadedModel], TrainerCallback]


def _finetune_trial(config: dict[str, Any], job: FinetuneConfig, monitor: MonitorFactory | None) -> None:
    from ray import tune

    lm = load_model(job.model)
    finetune(job, lm=lm, monitor=None if monitor is None else monitor(lm))
    tune.report({"done": 1.0})


def finetune_trial(config: FinetuneConfig, options: ExecutorOptions, *,
                   monitor: MonitorFactory | None = None) -> FinetuneResult:
    """``finetune(config)`` as a Ray Tune trial; the model is loaded on the worker by ``config.model`` (a name or
    path it can reach) and the result is read back from ``config.out`` (a folder the caller can read: shared
    storage on a cluster).

    Args:
        config: the run.
        options: the Ray executor's options (``retries``, ``cpus_per_worker``, ``gpus_per_worker``, ``address``).
        monitor: builds the run's callback on the worker from the loaded model (it is pickled to the worker:
            a module-level function or a ``functools.partial`` of one); ``None`` for none.

    Example:
        >>> finetune_trial(FinetuneConfig(regime="balanced", out="/shared/ft"), ExecutorOptions(kind="ray"))
    """
    from ray import tune


    out = Path(config.out).resolve()
    job = config.model_copy(update={"out": out})
    ray, started = connect(options)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(_finetune_trial, job=job, monitor=monitor),
            {"cpu": options.cpus_per_worker, "gpu": gpus_per_replica(ray, options)})
        grid = tune.Tuner(trainable, param_space={"run": job.regime},
                          run_config=tune.RunConfig(name="finetune", storage_path=str(out / "tune"),
                                                    failure_config=tune.FailureConfig(max_failures=options.retries),
                                                    verbose=0)).fit()
        if grid[0].error is not None:
            raise FinetuneError(f"the fine-tuning trial failed under Ray Tune: {grid[0].error}")
    finally:
        if started:
            ray.shutdown()
    return read_result(out)
