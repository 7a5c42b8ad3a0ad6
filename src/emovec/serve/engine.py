"""Decode one batch of jobs with the library's own ``generate``, so a served reply is the reply ``generate`` gives.

The batch's rows may steer differently: each row's steering is added by the contexts ``batch_specs`` builds
(zero on the rows it does not concern), entered around ``generate`` exactly as ``generate`` enters its own
``spec``. Monitoring reads the union of the rows' vectors and layers in the same passes. ``generate``'s
``on_step`` hands every step to the rows' trackers, which stream, stop rows at their own limits and drop
cancelled rows without touching the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import Tensor

from emovec.generation import DecodeStep, generate
from emovec.models.loading import LoadedModel
from emovec.serve.jobs import Job, batch_specs
from emovec.serve.rows import RowTracker
from emovec.steer import steering
from emovec.vectors.vector_set import VectorSet


def eos_ids(lm: LoadedModel) -> set[int]:
    """The ids that end a reply: the generation config's end-of-sequence ids and the tokenizer's."""
    configured = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, list | tuple) else [configured])
    ids.add(lm.tokenizer.eos_token_id)
    return {int(i) for i in ids if i is not None}


def _union(jobs: Sequence[Job]) -> tuple[list[str], list[int]]:
    names: list[str] = []
    layers: list[int] = []
    for job in jobs:
        if job.monitor is None:
            continue
        names += [n for n in job.monitor.names if n not in names]
        layers += [job.monitor.layer] if job.monitor.layer not in layers else []
    return names, sorted(layers)


@dataclass
class Engine:
    """Runs batches on one model; only the worker thread calls ``run``.

    Attributes:
        lm: the model.
        vectors: the vector set rows steer and read with.
        on_step: told of every decoding step (the decode-step counter of ``/metrics``).

    Example:
        >>> Engine(lm, vectors).run(jobs)
    """

    lm: LoadedModel
    vectors: VectorSet | None = None
    on_step: Callable[[], None] | None = None

    def trackers(self, jobs: Sequence[Job]) -> tuple[list[RowTracker], list[str], list[int]]:
        """One tracker per job, and the batch's monitored names and layers."""
        names, layers = _union(jobs)
        eos = eos_ids(self.lm)
        rows = []
        for job in jobs:
            watch = job.monitor
            columns = [names.index(n) for n in watch.names] if watch is not None else None
            rows.append(RowTracker(job, self.lm.tokenizer, eos, columns,
                                   layers.index(watch.layer) if watch is not None else 0))
        return rows, names, layers

    def run(self, jobs: Sequence[Job]) -> None:
        """Generate every job's reply; each job's events go to its sink as the rows advance."""
        rows, names, layers = self.trackers(jobs)

        def on_step(step: DecodeStep) -> Tensor:
            if self.on_step is not None:
                self.on_step()
            tokens = step.tokens.tolist()
            return torch.tensor([r.step(step.index, t, step.scores, i)
                                 for i, (r, t) in enumerate(zip(rows, tokens, strict=True))])

        first = jobs[0]
        with ExitStack() as stack:
            for spec in batch_specs([job.steer for job in jobs]):
                stack.enter_context(steering(self.lm, spec, self.vectors))
            generate(self.lm, [job.prompt for job in jobs], vectors=self.vectors if names else None,
                     monitor=names or False, monitor_layers=layers or None,
                     max_new_tokens=max(r.budget for r in rows), temperature=first.temperature, seed=first.seed,
                     chat=first.chat, on_step=on_step)
        for row in rows:  # a row the model's own length limit ended
            row.finish(row.reason or "length")
