"""The executor bench line: one small sweep on the local executor vs a local Ray instance with 2 workers, on the
same machine and the same batches (run from ``benchmarks/run.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import time
from typing import Any


def bench_ray_sweep(lm: Any, vectors: Any, emit: Any) -> None:
    """Wall time of the Ray run (actor start and model loads included) over the local run; and Ray's cost per
    batch beyond the local run's."""
    if importlib.util.find_spec("ray") is None:
        print(json.dumps({"name": "sweep_ray_2_workers", "skipped": "ray is not installed (pip install emovec[ray])"}))
        return
    import ray

    from emovec.evaluation.sweep import run_sweep
    from emovec.evaluation.sweep_config import load_config

    base = {"vectors": "in-memory", "conditions": ["none", "emotion:calm"], "strengths": [0.05], "layers": [[20]],
            "suites": ["paired"], "limit": 16, "max_new_tokens": 24, "batch_size": 8, "perplexity": False}
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        seconds = {}
        for kind in ("local", "ray"):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_config({**base, "out": tmp, "executor": {"kind": kind, "workers": 2}})
                start = time.perf_counter()
                res = run_sweep(cfg, lm, vectors, show_progress=False)
                seconds[kind] = time.perf_counter() - start
                batches = int(res.rows["batch_id"].nunique())
    finally:
        ray.shutdown()
    emit("sweep_ray_2_workers", seconds["ray"], "s", seconds["ray"] / seconds["local"],
         f"recorded: 2 Ray workers x 1 CPU vs one process with 2 threads, {batches} batches of 8, model loads "
         "included (a cluster pays off with one replica per GPU, not on 2 cores)")
    emit("sweep_ray_overhead_per_batch", (seconds["ray"] - seconds["local"]) / batches, "s", None,
         "recorded: Ray's extra wall time per batch on this machine")
