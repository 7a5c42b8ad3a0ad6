"""The serving bench lines: ``emovec serve`` in its own process, driven by 1, 4 and 16 closed-loop clients (each
sends its next request when its reply arrives), against plain batched ``generate`` on the same prompts in this
process (batches as large as the client count); and steered + monitored requests against plain ones on the same
server. Run from ``benchmarks/run.py`` or alone: ``python benchmarks/serving.py [--quick]``.

Throughput counts completion tokens per second of wall time; served and plain runs generate the same tokens
(greedy, the same replies), so the ratio compares wall times. Latency is per request, queueing included.

The plain runs call ``generate`` on a worker thread, as the server does: on a busy 2-core machine torch's
OpenMP team of the main thread ran this model's small decoding steps four to six times slower than a worker
thread's (24 tokens: 10-15 s against 2.5 s at a load of 7), which would flatter the server.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

MODEL = "smollm2-135m-instruct"
STEERED = {"steer": {"calm": 0.05, "desperate": 0.05}, "monitor": ["desperate", "calm", "afraid", "happy"]}
Emit = Callable[[str, float, str, "float | None", "str | None"], None]


def prompts(n: int) -> list[str]:
    return [f"Tell me about your day number {i}." for i in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(vectors_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """``emovec serve`` on loopback, waited for until ``/health`` answers."""
    cmd = [sys.executable, "-m", "emovec.cli", "-q", "serve", MODEL, "--vectors", str(vectors_dir), "--port",
           str(port), "--max-batch", "16"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    end = time.monotonic() + 300
    while time.monotonic() < end:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("emovec serve did not start")


def closed_loop(url: str, texts: list[str], clients: int, max_tokens: int,
                block: dict[str, Any] | None = None) -> tuple[float, list[float], int]:
    """Send every text with ``clients`` clients at once; wall time, per-request latencies, completion tokens."""
    pending = list(reversed(texts))
    latencies: list[float] = []
    tokens = [0]
    ready = threading.Barrier(clients + 1)  # clients are made before the clock starts, as a harness keeps its own

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            ready.wait()
            while pending:
                text = pending.pop()
                body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
                        **({"emovec": block} if block else {})}
                start = time.perf_counter()
                r = http.post(f"{url}/v1/chat/completions", json=body)
                r.raise_for_status()
                latencies.append(time.perf_counter() - start)
                tokens[0] += r.json()["usage"]["completion_tokens"]

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client) for _ in range(clients)]
        ready.wait()
        start = time.perf_counter()
        for future in futures:
            future.result()
    return time.perf_counter() - start, latencies, tokens[0]


def plain_batched(lm: Any, texts: list[str], batch: int, max_tokens: int) -> tuple[float, int]:
    """Plain ``generate`` over the same texts in batches of ``batch``, on a worker thread as the server runs it:
    wall time and generated tokens."""
    from emovec.generation import generate

    def run() -> tuple[float, int]:
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(texts), batch):
            out = generate(lm, [[{"role": "user", "content": t}] for t in texts[i: i + batch]],
                           max_new_tokens=max_tokens)
            new = out.attention_mask[:, out.prompt_length:]
            ended = (out.token_ids[:, out.prompt_length:] == lm.tokenizer.eos_token_id) & new.bool()
            tokens += int(new.sum() - ended.sum())
        return time.perf_counter() - start, tokens

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def batch_stats(url: str) -> tuple[float, float]:
    """The server's batches so far: how many, and their rows together (from ``/metrics``)."""
    text = httpx.get(f"{url}/metrics").text
    value = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
             if line.startswith(("emovec_batch_size_count", "emovec_batch_size_sum"))}
    return value.get("emovec_batch_size_count", 0.0), value.get("emovec_batch_size_sum", 0.0)


def bench_clients(lm: Any, url: str, emit: Emit, clients: int, texts: list[str], rounds: int,
                  max_tokens: int) -> float:
    """Served vs plain batched at ``clients``, runs interleaved (the order alternates), best of ``rounds``;
    returns the served throughput."""
    best = {"served": 0.0, "plain": 0.0}
    latencies: list[float] = []
    batches, rows = batch_stats(url)
    for r in range(rounds):
        for kind in (("served", "plain") if r % 2 == 0 else ("plain", "served")):
            if kind == "served":
                wall, lat, tokens = closed_loop(url, texts, clients, max_tokens)
                latencies += lat
            else:
                wall, tokens = plain_batched(lm, texts, clients, max_tokens)
            best[kind] = max(best[kind], tokens / wall)
    batches_after, rows_after = batch_stats(url)
    target = ">= 0.8x plain batched generate" if clients == 16 else "recorded: vs plain batched generate"
    emit(f"serve_throughput_{clients}_clients", best["served"], "tokens/s", best["served"] / best["plain"],
         f"{target} (batches of {clients}, {len(texts)} prompts, {max_tokens} tokens, best of {rounds})")
    emit(f"serve_latency_p50_{clients}_clients", percentile(latencies, 50), "s", None, "recorded")
    emit(f"serve_latency_p95_{clients}_clients", percentile(latencies, 95), "s", None, "recorded")
    emit(f"serve_mean_batch_{clients}_clients", (rows_after - rows) / max(batches_after - batches, 1), "rows", None,
         "recorded: requests per decoded batch")
    return best["served"]


def bench_serving(lm: Any, vectors: Any, emit: Emit, quick: bool = False, max_tokens: int = 24) -> None:
    """Served vs plain batched throughput and latency at 1, 4 and 16 clients; steered + monitored vs plain
    served at 16 clients."""
    with tempfile.TemporaryDirectory() as tmp:
        vectors.save(Path(tmp) / "vectors")
        port = free_port()
        proc = start_server(Path(tmp) / "vectors", port)
        url = f"http://127.0.0.1:{port}"
        try:
            closed_loop(url, prompts(2), 2, 4)  # warm up
            plain_batched(lm, prompts(2), 2, 4)
            rounds = 1 if quick else 2
            for clients in (1, 4):
                bench_clients(lm, url, emit, clients, prompts(8 if quick else 16), rounds, max_tokens)
            bench_clients(lm, url, emit, 16, prompts(32), rounds, max_tokens)
            bench_steered(url, emit, rounds=rounds, max_tokens=max_tokens)
        finally:
            proc.terminate()
            proc.wait(30)


def bench_steered(url: str, emit: Emit, rounds: int, max_tokens: int) -> None:
    """Steered + monitored requests vs plain ones at 16 clients, on the same prompts, runs interleaved (the order
    alternates), best of ``rounds`` each."""
    texts = prompts(32)
    best = {"plain": 0.0, "steered": 0.0}
    for r in range(rounds):
        order = (("steered", STEERED), ("plain", None))
        for kind, block in order if r % 2 == 0 else order[::-1]:
            wall, _lat, tokens = closed_loop(url, texts, 16, max_tokens, block)
            best[kind] = max(best[kind], tokens / wall)
    emit("serve_steered_monitored_16_clients", best["steered"], "tokens/s", best["steered"] / best["plain"],
         ">= 0.95x plain served (2 emotions steered, 4 read at every token; best of interleaved runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))
    from run import emit, timing_vectors

    from emovec import load_model

    lm = load_model(MODEL)
    bench_serving(lm, timing_vectors(lm), emit, quick=args.quick)
    print(json.dumps({"name": "serve_done"}), file=sys.stderr)


if __name__ == "__main__":
    main()
