"""The server's Prometheus metrics, in a registry of its own (two apps in one process do not collide).

``/metrics`` serves them in Prometheus' text format: requests by route and status, prompt and completion
tokens, the queue depth and the running batch, batch sizes, request latency and time to first token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# seconds: CPU replies take seconds, GPU ones tens of milliseconds
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class Metrics:
    """The metrics of one app.

    Example:
        >>> metrics = Metrics(); metrics.requests.labels("/v1/chat/completions", "200").inc()
    """

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("emovec_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.tokens = Counter("emovec_tokens", "prompt and completion tokens of finished replies", ["kind"],
                              registry=r)
        self.queue_depth = Gauge("emovec_queue_depth", "replies waiting for a batch", registry=r)
        self.running = Gauge("emovec_running_rows", "replies in the batch being decoded", registry=r)
        self.decode_steps = Counter("emovec_decode_steps", "decoding steps (forward passes of a batch)", registry=r)
        self.batch_size = Histogram("emovec_batch_size", "replies per decoded batch", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.latency = Histogram("emovec_request_latency_seconds", "request latency, to the last byte", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.first_token = Histogram("emovec_time_to_first_token_seconds", "streamed requests: time to the first "
                                     "text", buckets=LATENCY_BUCKETS, registry=r)

    def watch(self, depth: Callable[[], int], running: Callable[[], int]) -> None:
        """Read the queue depth and running rows when scraped."""
        self.queue_depth.set_function(lambda: float(depth()))
        self.running.set_function(lambda: float(running()))

    def text(self) -> bytes:
        return generate_latest(self.registry)
