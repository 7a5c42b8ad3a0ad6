"""The drift study's runs as Ray Tune trials: one trial per (regime, learning rate, seed) run, ``workers`` at a
time, each with ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs, on a local Ray or the cluster at
``address`` / ``RAY_ADDRESS``.

A trial loads the model by its name or path (every worker must be able to), reads the study's locked vectors
from ``OUT/vectors`` and runs ``emovec.studies.drift.runs.run_one``: the same fine-tuning, drift monitor and folders
as a local run, so a trial that fails or is killed resumes from its last checkpoint when Tune retries it
(``retries`` times), and a rerun of the study skips what is stored. Runs go in two waves: regression runs
continue the balanced runs' adapters, so they start once every balanced run has finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emovec.executors import ExecutorOptions
from emovec.executors.ray_pool import connect, gpus_per_replica
from emovec.models.loading import load_model
from emovec.studies.drift.runs import DriftStudyError, RunJob, RunPlan, run_one
from emovec.vectors.vector_set import VectorSet


def _trial(config: dict[str, Any], job: RunJob, plans: dict[str, RunPlan]) -> None:
    from ray import tune


    plan = plans[config["run"]]
    lm = load_model(job.model, device=job.device, dtype=job.dtype)
    run_one(job, plan, lm, VectorSet.load(job.root / "vectors"))
    tune.report({"done": 1.0})


def waves(plans: Sequence[RunPlan]) -> list[list[RunPlan]]:
    """Runs that can start now, then the runs that continue another run's adapter."""
    first = [p for p in plans if p.continues is None]
    later = [p for p in plans if p.continues is not None]
    return [w for w in (first, later) if w]


def run_trials(job: RunJob, plans: Sequence[RunPlan], options: ExecutorOptions) -> None:
    """Run every plan as a Ray Tune trial (see the module docs); a trial that still fails after its retries
    fails the study with its error."""
    from ray import tune


    ray, started = connect(options)
    try:
        for i, wave in enumerate(waves(plans)):
            trainable = tune.with_resources(
                tune.with_parameters(_trial, job=job, plans={p.name: p for p in wave}),
                {"cpu": options.cpus_per_worker, "gpu": gpus_per_replica(ray, options)})
            tuner = tune.Tuner(
                trainable, param_space={"run": tune.grid_search([p.name for p in wave])},
                tune_config=tune.TuneConfig(max_concurrent_trials=options.workers),
                run_config=tune.RunConfig(name=f"wave{i}", storage_path=str((job.root / "tune").resolve()),
                                          failure_config=tune.FailureConfig(max_failures=options.retries),
                                          verbose=0))
            grid = tuner.fit()
            failed = [grid[k] for k in range(len(grid)) if grid[k].error is not None]
            if failed:
                raise DriftStudyError(f"{len(failed)} of {len(wave)} drift runs failed under Ray Tune; the first: "
                                      f"{failed[0].error}")
    finally:
        if started:
            ray.shutdown()
