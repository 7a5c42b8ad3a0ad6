"""A job is one reply to generate (one choice of one request), with what the worker sends back about it.

The request side (``emovec.serve.app``, on the event loop) makes jobs and reads their events; the worker thread
(``emovec.serve.batcher``) decodes them in batches and emits ``Progress``, then ``Finished`` or ``Failed``,
through each job's ``sink``. ``cancel`` is the one thing the request side tells a running job: the worker stops
that row at its next step and the other rows go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from emovec.serve.schemas import Mode, ReadoutSummary, Scope, TokenScores
from emovec.steer import SteeringSpec, SteerTerm


@dataclass(frozen=True)
class RowSteer:
    """One request's steering, checked against the vector set: terms sorted by name (the order the batch adds
    them in, so a row's sum is the same alone or beside others), layers, mode and scope."""

    terms: tuple[tuple[str, float], ...]
    layers: tuple[int, ...]
    mode: Mode = "add"
    scope: Scope = "all"

    def spec(self) -> SteeringSpec:
        """The library's specification for this row alone: what ``generate(..., spec=...)`` would be given.

        Example:
            >>> RowSteer((("calm", 0.05),), (16,)).spec()
        """
        return SteeringSpec([SteerTerm(name, value, self.mode) for name, value in self.terms],
                            layers=list(self.layers), scope=self.scope)

    @property
    def mixes(self) -> bool:
        """Whether rows with other steerings can share this row's batch: added terms can (zero on the other rows
        adds nothing); a clamp or an ablation acts on every row of its pass, so it batches only with itself."""
        return self.mode == "add"


@dataclass(frozen=True)
class RowMonitor:
    """The vectors read at every reply token, and the layer read."""

    names: tuple[str, ...]
    layer: int


@dataclass(frozen=True)
class Progress:
    """New reply text, and the tokens whose scores became known (monitored jobs), since the last event."""

    index: int
    text: str
    tokens: list[TokenScores]


@dataclass(frozen=True)
class Finished:
    """The whole reply: text (stripped, cut before a stop string), why it ended, its token count and readout."""

    index: int
    text: str
    finish_reason: str
    completion_tokens: int
    tokens: list[TokenScores]
    summary: ReadoutSummary | None


@dataclass(frozen=True)
class Failed:
    """The job could not be generated; ``status`` is the HTTP status to answer with."""

    index: int
    status: int
    message: str


Event = Progress | Finished | Failed
Sink = Callable[[Event], None]


@dataclass
class Job:
    """One reply to generate.

    Attributes:
        index: the choice index within its request.
        prompt: a conversation (chat) or a text (completion).
        chat: render the conversation with the chat template (``generate``'s ``chat``).
        max_tokens: reply tokens at most.
        stop: strings that end the reply (not included in it).
        temperature: 0 for greedy decoding.
        seed: the sampling seed (sampled jobs batch only with jobs of the same temperature and seed).
        steer: the steering, or ``None``.
        monitor: the readout, or ``None``.
        prompt_tokens: the prompt's length in tokens (for ``usage``).
        sink: where the worker sends this job's events (thread-safe).
        stream: whether ``Progress`` events are wanted.
        deadline: ``time.monotonic()`` past which the worker drops the job.
    """

    index: int
    prompt: str | list[dict[str, str]]
    chat: bool
    max_tokens: int
    stop: tuple[str, ...]
    temperature: float
    seed: int
    steer: RowSteer | None
    monitor: RowMonitor | None
    prompt_tokens: int
    sink: Sink
    stream: bool = False
    deadline: float = float("inf")
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop this job at the worker's next step (or before it starts); no more events are sent."""
        self.cancelled.set()

    @property
    def dropped(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline

    def batch_key(self) -> Hashable:
        """Jobs with equal keys may share a batch: the same prompt rendering, the same sampling (every greedy job
        alike) and, for clamps and ablations, the same steering."""
        sampling = None if self.temperature == 0 else (self.temperature, self.seed)
        exclusive = self.steer if self.steer is not None and not self.steer.mixes else None
        return self.chat, sampling, exclusive


def batch_specs(steers: Sequence[RowSteer | None]) -> list[SteeringSpec]:
    """The steering contexts that give each row of a batch its own steering.

    Added steering: one specification per (layers, scope) group, each term with one strength per row (zero on the
    rows outside the group or without that term), so a row gets exactly its own sum. A clamp or ablation batch
    holds one steering only (``Job.batch_key``): its specification.

    Example:
        >>> specs = batch_specs([RowSteer((("calm", 0.05),), (16,)), None])
    """
    live = [s for s in steers if s is not None]
    if not live:
        return []
    if not live[0].mixes:
        return [live[0].spec()]
    groups = sorted({(s.layers, s.scope) for s in live})
    specs = []
    for layers, scope in groups:
        rows = [dict(s.terms) if s is not None and (s.layers, s.scope) == (layers, scope) else {} for s in steers]
        names = sorted({name for row in rows for name in row})
        terms = [SteerTerm(name, [row.get(name, 0.0) for row in rows]) for name in names]
        specs.append(SteeringSpec(terms, layers=list(layers), scope=scope))
    return specs
