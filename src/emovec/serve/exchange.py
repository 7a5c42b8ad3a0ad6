"""The request side of a reply: wait for a request's job events on the event loop and answer with one body or a
stream, honouring the timeout and the client going away.

Events cross from the worker thread through an ``Inbox`` (``call_soon_threadsafe`` into an ``asyncio.Queue``).
When a request ends for any reason (answered, timed out, failed, client gone), its jobs are cancelled: queued
ones are never run and running rows stop at the next step; the other rows of their batch are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request

from emovec.serve.intake import RequestError
from emovec.serve.jobs import Event, Failed, Finished, Job, Progress
from emovec.serve.metrics import Metrics
from emovec.serve.replies import ReplyShape, error_body, sse

POLL_S = 0.5  # how often a waiting non-streamed request looks for its client's disconnect


class ClientGone(Exception):
    """The client closed the connection before its reply was ready."""


class Inbox:
    """A request's events, put by the worker thread, read on the event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def sink(self, event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def next(self, deadline: float, timeout_s: float, request: Request | None = None) -> Event:
        """The next event; ``RequestError`` 504 past ``deadline``; ``ClientGone`` when ``request``'s client
        disconnects (streams leave ``request`` out: Starlette cancels them itself)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestError(f"the reply took longer than the server's timeout of {timeout_s:g} s", None, 504,
                                   "timeout")
            try:
                return await asyncio.wait_for(self.queue.get(), min(left, POLL_S))
            except TimeoutError:
                if request is not None and await request.is_disconnected():
                    raise ClientGone from None


def cancel(jobs: Sequence[Job]) -> None:
    for job in jobs:
        job.cancel()


def _count(metrics: Metrics, shape: ReplyShape, results: Sequence[Finished]) -> None:
    metrics.tokens.labels("prompt").inc(shape.prompt_tokens)
    metrics.tokens.labels("completion").inc(sum(r.completion_tokens for r in results))


async def collect(inbox: Inbox, jobs: Sequence[Job], request: Request, timeout_s: float,
                  metrics: Metrics, shape: ReplyShape) -> list[Finished]:
    """Every job's ``Finished``; a ``Failed`` one raises its status."""
    done: dict[int, Finished] = {}
    try:
        while len(done) < len(jobs):
            event = await inbox.next(jobs[0].deadline, timeout_s, request)
            if isinstance(event, Failed):
                raise RequestError(event.message, None, event.status)
            if isinstance(event, Finished):
                done[event.index] = event
    finally:
        cancel(jobs)
    results = list(done.values())
    _count(metrics, shape, results)
    return results


async def stream(inbox: Inbox, jobs: Sequence[Job], shape: ReplyShape, timeout_s: float, include_usage: bool,
                 metrics: Metrics) -> AsyncIterator[bytes]:
    """The reply as server-sent events: an opening chunk per choice, text as it comes (with its scores when
    monitored), a closing chunk per choice, the usage if asked, ``[DONE]``; an error ends it as an error event."""
    done: dict[int, Finished] = {}
    start, first = time.perf_counter(), True
    try:
        for job in jobs:
            yield sse(shape.opening(job.index))
        while len(done) < len(jobs):
            try:
                event = await inbox.next(jobs[0].deadline, timeout_s)
            except RequestError as exc:
                yield sse(error_body(exc.message, exc.status, exc.param, exc.code))
                break
            if isinstance(event, Failed):
                yield sse(error_body(event.message, event.status))
                break
            if isinstance(event, Progress):
                if first and event.text:
                    metrics.first_token.observe(time.perf_counter() - start)
                    first = False
                yield sse(shape.progress(event))
            else:
                done[event.index] = event
                yield sse(shape.closing(event))
        else:
            _count(metrics, shape, list(done.values()))
            if include_usage:
                yield sse(shape.usage_chunk(list(done.values())))
        yield sse("[DONE]")
    finally:
        cancel(jobs)
