"""``emovec serve`` on the real default model, over a loopback socket, read with the official ``openai`` client:
plain, steered, streamed and monitored replies equal to the library's ``generate`` run alone; bad requests get
their 4xx and the server goes on; concurrent requests with different steerings are each right; a client leaving
mid-stream leaves the others right; the API key is enforced. One server per module (uvicorn in a thread, the
session's model). The bounded load test is marked slow.

The server and the reference runs share one model object, and hooks act on every pass of a model: references are
computed only while the server's worker is idle (``idle``).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from emovec import generate
from emovec.serve import ServeOptions, create_app
from emovec.serve.jobs import RowSteer
from emovec.vectors import VectorSet

pytestmark = pytest.mark.integration
openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

KEY = "test-key"
NAME = "smollm2-135m-instruct"
PROMPTS = ["How are you today?", "Name a colour.", "What is two plus two?", "Say something kind.",
           "Describe the sea in one sentence.", "What do cats like?"]
# the steer blocks requests send; None: unsteered
STEERS: list[dict[str, Any] | None] = [None, {"steer": {"calm": 0.1}}, {"steer": {"desperate": 0.15}, "layer": 8},
                                       {"steer": {"happy": 0.1, "sad": -0.05}}]


@dataclass
class Live:
    url: str
    app: Any
    vs: VectorSet
    lm: Any

    def client(self, key: str = KEY, **kw: Any) -> Any:
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, **kw)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A value of the server's ``/metrics``."""
        return self.app.state.served.metrics.registry.get_sample_value(name, labels or {}) or 0.0

    def idle(self, timeout: float = 120.0) -> None:
        """Wait until the worker has no batch running or waiting (its hooks are off the model)."""
        batcher = self.app.state.served.batcher
        end = time.monotonic() + timeout
        while (batcher.running or batcher.depth) and time.monotonic() < end:
            time.sleep(0.02)
        assert not batcher.running, "the server's worker did not go idle"

    def row_steer(self, block: dict[str, Any] | None) -> RowSteer | None:
        if block is None:
            return None
        layer = block.get("layer", self.vs.default_layer)
        return RowSteer(tuple(sorted(block["steer"].items())), (layer,))

    def reference(self, prompt: str, block: dict[str, Any] | None, max_tokens: int, **kw: Any) -> Any:
        self.idle()
        steer = self.row_steer(block)
        return generate(self.lm, [[{"role": "user", "content": prompt}]], vectors=self.vs,
                        spec=steer.spec() if steer else None, max_new_tokens=max_tokens, **kw)


@pytest.fixture(scope="module")
def live(real_model, real_vectors_dir) -> Iterator[Live]:
    vs = VectorSet.load(real_vectors_dir)
    app = create_app(real_model, vs, ServeOptions(api_key=KEY, max_tokens_limit=64, max_batch=16, max_body_bytes=65536))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 60
    while not server.started and time.monotonic() < end:
        time.sleep(0.05)
    assert server.started
    yield Live(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", app, vs, real_model)
    server.should_exit = True
    thread.join(30)


def ask(api: Any, prompt: str, block: dict[str, Any] | None = None, max_tokens: int = 8, **kw: Any) -> Any:
    extra = {"emovec": block} if block else None
    return api.chat.completions.create(model=NAME, messages=[{"role": "user", "content": prompt}],
                                       max_tokens=max_tokens, extra_body=extra, **kw)


# -- replies equal to the library's --------------------------------------------------------------------------------

def test_plain_and_steered_replies_equal_generate(live):
    api = live.client()
    plain = ask(api, PROMPTS[0], max_tokens=12)
    steered = ask(api, PROMPTS[0], {"steer": {"desperate": 0.15}, "layer": 8}, max_tokens=12)
    ref_plain = live.reference(PROMPTS[0], None, 12).replies[0]
    ref_steered = live.reference(PROMPTS[0], {"steer": {"desperate": 0.15}, "layer": 8}, 12).replies[0]
    assert plain.choices[0].message.content == ref_plain
    assert steered.choices[0].message.content == ref_steered != ref_plain
    assert steered.model_extra["emovec"]["steer"] == {"terms": {"desperate": 0.15}, "layers": [8], "mode": "add",
                                                      "scope": "all"}


def test_streamed_and_monitored_replies_equal_generate(live):
    api = live.client()
    block = {"steer": {"calm": 0.1}, "monitor": ["desperate", "calm"]}
    chunks = list(ask(api, PROMPTS[4], block, max_tokens=10, stream=True))
    whole = ask(api, PROMPTS[4], block, max_tokens=10)
    ref = live.reference(PROMPTS[4], block, 11, monitor=["desperate", "calm"], monitor_layers=[live.vs.default_layer])
    n, text = ref.prompt_length, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    ids = ref.token_ids[0, n:].tolist()
    ended = ids.index(live.lm.tokenizer.eos_token_id) if live.lm.tokenizer.eos_token_id in ids[:10] else 10
    expect = live.lm.tokenizer.decode(ids[:ended], skip_special_tokens=True).strip()
    assert text == whole.choices[0].message.content == expect
    readout = whole.model_extra["emovec"]["monitor"]["choices"][0]
    assert [t["id"] for t in readout["tokens"]] == ids[:ended]
    for k, t in enumerate(readout["tokens"]):
        assert [t["scores"]["desperate"], t["scores"]["calm"]] == pytest.approx(
            ref.trace.scores[0, n + k, 0].tolist(), rel=1e-3, abs=1e-4)
    streamed = [t for c in chunks if (c.model_extra or {}).get("emovec") and c.model_extra["emovec"]["monitor"]
                for ch in c.model_extra["emovec"]["monitor"]["choices"] for t in ch["tokens"]]
    assert [t["id"] for t in streamed] == [t["id"] for t in readout["tokens"]]
    assert chunks[-1].model_extra["emovec"]["monitor"]["choices"][0]["summary"]["mean"].keys() == {"desperate", "calm"}


def test_concurrent_requests_with_different_steerings_are_each_right(live):
    cases = [(p, s) for p in PROMPTS[:4] for s in STEERS[:3]]
    api = live.client()
    live.idle()
    batches, singles = live.sample("emovec_batch_size_count"), live.sample("emovec_batch_size_bucket", {"le": "1.0"})
    with ThreadPoolExecutor(len(cases)) as pool:
        got = list(pool.map(lambda c: ask(api, c[0], c[1], max_tokens=6).choices[0].message.content, cases))
    mixed = (live.sample("emovec_batch_size_count") - batches) - (live.sample("emovec_batch_size_bucket",
                                                                             {"le": "1.0"}) - singles)
    assert mixed >= 1  # at least one batch held several requests
    for (prompt, block), reply in zip(cases, got, strict=True):
        assert reply == live.reference(prompt, block, 6).replies[0], (prompt, block)


# -- refusals, the key, disconnects ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "status", "field"), [
    ({"emovec": {"steer": {"desprate": 0.1}}}, 400, "emovec.steer.desprate"),
    ({"emovec": {"steer": {"calm": 1e6}}}, 400, "emovec.steer.calm"),
    ({"emovec": {"steer": {"calm": 0.1}, "layer": 99}}, 400, "emovec.layer"),
    ({"emovec": {"steer": {"calm": 0.1}, "strength": 2}}, 400, "emovec.strength"),
    ({"max_tokens": 65}, 400, "max_tokens"),
    ({"model": "../../etc/passwd"}, 404, "model"),
])
def test_bad_requests_get_their_4xx_and_the_server_goes_on(live, body, status, field):
    payload = {"model": NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **body}
    r = httpx.post(f"{live.url}/chat/completions", json=payload, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == status and r.json()["error"]["param"] == field, r.text
    assert httpx.get(f"{live.url.removesuffix('/v1')}/health").json() == {"status": "ok"}


def test_nan_malformed_json_and_an_oversized_body_are_refused(live):
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    nan = json.dumps({"model": NAME, "messages": [{"role": "user", "content": "hi"}],
                      "emovec": {"steer": {"calm": float("nan")}}})
    assert httpx.post(f"{live.url}/chat/completions", content=nan, headers=headers).status_code == 400
    assert httpx.post(f"{live.url}/chat/completions", content=b"{", headers=headers).status_code == 400
    big = json.dumps({"model": NAME, "messages": [{"role": "user", "content": "x" * 70_000}]})
    assert httpx.post(f"{live.url}/chat/completions", content=big, headers=headers).status_code == 413
    with pytest.raises(openai.BadRequestError, match=r"emovec\.steer\.glum"):
        ask(live.client(), "hi", {"steer": {"glum": 0.1}})


def test_a_request_without_the_key_is_refused(live):
    with pytest.raises(openai.AuthenticationError):
        ask(live.client(key="wrong"), "hi")
    assert httpx.get(f"{live.url}/models").status_code == 401
    assert httpx.get(f"{live.url}/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_a_client_leaving_mid_stream_leaves_the_others_right(live):
    live.idle()
    before = live.sample("emovec_decode_steps_total")

    def leave() -> int:
        stream = ask(live.client(), PROMPTS[5], max_tokens=64, stream=True)
        got = 0
        for chunk in stream:
            got += bool(chunk.choices and chunk.choices[0].delta.content)
            if got == 2:
                stream.close()
                break
        return got

    with ThreadPoolExecutor(4) as pool:
        gone = pool.submit(leave)
        others = [pool.submit(lambda p=p: ask(live.client(), p, STEERS[1], max_tokens=8).choices[0].message.content)
                  for p in PROMPTS[:3]]
        replies = [f.result() for f in others]
        assert gone.result() == 2
    live.idle()
    assert live.sample("emovec_decode_steps_total") - before < 64  # the leaver's row stopped long before 64 tokens
    for prompt, reply in zip(PROMPTS[:3], replies, strict=True):
        assert reply == live.reference(prompt, STEERS[1], 8).replies[0]


# -- load ----------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_load_200_requests_from_16_clients_all_right(live):
    cases = [(p, s) for p in PROMPTS for s in STEERS]
    expected = {(p, json.dumps(s)): live.reference(p, s, 6).replies[0] for p, s in cases}
    order = [cases[i % len(cases)] for i in range(200)]
    random.Random(0).shuffle(order)

    api = live.client()

    def one(case: tuple[str, dict[str, Any] | None]) -> bool:
        reply = ask(api, case[0], case[1], max_tokens=6).choices[0].message.content
        return reply == expected[(case[0], json.dumps(case[1]))]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, order))  # an error raises here: 0 errors means it returned
    assert sum(results) == 200
