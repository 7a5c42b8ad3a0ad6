"""The queue between requests and the model, and the one worker thread that drains it in batches.

Requests are batched dynamically: once a job waits, the worker gives others ``wait_s`` to join (renewed while
they keep coming, a few times at most, and a little longer while fewer wait than the last batch held), then decodes
the oldest job together with the queued jobs that may share its batch (``Job.batch_key``), in arrival order; the
others wait for the next batch.
A batch runs to its end (static batches): requests that arrive meanwhile wait for the next one. The queue is
bounded: a request that would overfill it is refused whole (``QueueFull``, answered 429). Jobs cancelled or past
their deadline while queued are dropped unrun.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from emovec.errors import EmovecError
from emovec.serve.jobs import Failed, Job

log = logging.getLogger("emovec.serve")


class QueueFull(EmovecError, RuntimeError):
    """The server's queue has no room for the request; try again later."""


class ServerClosing(EmovecError, RuntimeError):
    """The server is shutting down and takes no new requests."""


GATHER_WINDOWS = 10  # a batch waits at most this many windows for company
PATIENCE = 0.05  # ... and for the last batch's clients, this fraction of the last batch's duration
MAX_PATIENCE_S = 1.0

Runner = Callable[[Sequence[Job]], None]
BatchObserver = Callable[[int], None]


class Batcher:
    """A bounded job queue and its worker thread.

    Args:
        run: decodes one batch (``Engine.run``); called on the worker thread only.
        max_batch: jobs per batch at most.
        max_queue: queued jobs at most.
        wait_s: how long a waiting job waits for company before its batch starts.
        on_batch: told each batch's size (metrics).

    Example:
        >>> batcher = Batcher(Engine(lm, vs).run, max_batch=16, max_queue=256)
        >>> batcher.start(); batcher.submit([job]); batcher.close()
    """

    def __init__(self, run: Runner, max_batch: int = 16, max_queue: int = 256, wait_s: float = 0.02,
                 on_batch: BatchObserver | None = None) -> None:
        self._run, self.max_batch, self.max_queue, self.wait_s = run, max_batch, max_queue, wait_s
        self._on_batch = on_batch
        self._jobs: deque[Job] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="emovec-serve-worker", daemon=True)
        self.running: Sequence[Job] = ()
        self._last = (0, 0.0)  # the last batch's size and duration

    @property
    def depth(self) -> int:
        """Jobs waiting (not yet in a batch)."""
        return len(self._jobs)

    def start(self) -> None:
        self._thread.start()

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue a request's jobs, all or none; ``QueueFull`` when they do not fit."""
        with self._cv:
            if self._closed:
                raise ServerClosing("the server is shutting down")
            if len(self._jobs) + len(jobs) > self.max_queue:
                raise QueueFull(f"the queue is full ({self.max_queue} waiting requests); retry later")
            self._jobs.extend(jobs)
            self._cv.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs, fail the queued and running ones (503) and wait for the running batch to end."""
        with self._cv:
            self._closed = True
            left, self._jobs = [*self._jobs, *self.running], deque()
            self._cv.notify_all()
        for job in left:
            job.cancel()
            job.sink(Failed(job.index, 503, "the server is shutting down"))
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch))
            self.running = batch
            start = time.monotonic()
            try:
                self._run(batch)
            except Exception as exc:  # a failed batch fails its jobs; the worker lives on
                log.exception("a batch of %d failed", len(batch))
                for job in batch:
                    job.sink(Failed(job.index, 500, f"generation failed: {type(exc).__name__}: {exc}"))
            finally:
                self.running, self._last = (), (len(batch), time.monotonic() - start)

    def _take(self) -> list[Job] | None:
        """The next batch (``[]`` when every waiting job had been dropped), or ``None`` once closed."""
        with self._cv:
            while not self._jobs and not self._closed:
                self._cv.wait()
            self._gather()
            return None if self._closed else self._pop_batch()

    def _gather(self) -> None:
        """Wait, holding the lock, until the batch should start: at once with ``max_batch`` jobs; else while jobs
        keep arriving (each renews a ``wait_s`` window, ``GATHER_WINDOWS`` at most), and while fewer jobs wait than
        the last batch held, for ``PATIENCE`` of the last batch's duration: the clients a batch has just answered
        send their next requests a moment later, and a batch that starts without them leaves them a whole batch
        behind (batches are static)."""
        start = last = time.monotonic()
        seen = len(self._jobs)
        size, seconds = self._last
        patience = min(MAX_PATIENCE_S, PATIENCE * seconds)
        while not self._closed and len(self._jobs) < self.max_batch:
            now = time.monotonic()
            if len(self._jobs) > seen:
                last, seen = now, len(self._jobs)
            waits = [last + self.wait_s] if now - start < GATHER_WINDOWS * self.wait_s else []
            if len(self._jobs) < size:
                waits.append(start + patience)
            until = max(waits, default=now)
            if until <= now:
                return
            self._cv.wait(until - now)

    def _pop_batch(self) -> list[Job]:
        live = [job for job in self._jobs if not job.dropped]
        if not live:
            self._jobs.clear()
            return []
        key = live[0].batch_key()
        batch = [job for job in live if job.batch_key() == key][: self.max_batch]
        taken = {id(job) for job in batch}
        self._jobs = deque(job for job in live if id(job) not in taken)
        return batch
