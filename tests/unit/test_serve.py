"""The server's HTTP side on a tiny random llama, in process (Starlette's test client, and the ``openai`` client
on top of it): replies equal to the library's, streams, readouts, every refusal with its status and field, the
API key, limits and metrics. The worker side is in test_serve_batching.py; the real model over a socket in
tests/integration/test_real_serve.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from emovec import SteeringSpec, SteerTerm, generate, wrap_model
from emovec.serve import ServeOptions, create_app
from emovec.serve.batcher import QueueFull
from emovec.serve.validation import describe
from tests.builders import PROMPTS, make_model, make_set, make_tokenizer

NAME = "tiny-llama"


@pytest.fixture(scope="module")
def lm():  # type: ignore[no-untyped-def]
    return wrap_model(make_model("llama"), make_tokenizer(), name=NAME)


@pytest.fixture(scope="module")
def vs(lm):  # type: ignore[no-untyped-def]
    return make_set(lm)


@pytest.fixture(scope="module")
def client(lm, vs) -> Iterator[TestClient]:
    options = ServeOptions(max_tokens_limit=32, max_messages=4, max_body_bytes=4096, max_prompts=3)
    with TestClient(create_app(lm, vs, options)) as c:
        yield c


def chat(content: str = PROMPTS[0], **extra: object) -> dict[str, object]:
    return {"model": NAME, "messages": [{"role": "user", "content": content}], "max_tokens": 5, **extra}


def conv(content: str = PROMPTS[0]) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def events(client: TestClient, body: dict[str, object], path: str = "/v1/chat/completions") -> list[dict]:  # type: ignore[type-arg]
    with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


# -- replies -------------------------------------------------------------------------------------------------------

def test_models_lists_the_served_model_its_vectors_and_layers(client):
    data = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in data] == [NAME]
    info = data[0]["emovec"]
    assert info["vectors"] == ["calm", "desperate", "afraid", "happy"] and info["layers"] == [0, 2]
    assert client.get(f"/v1/models/{NAME}").json()["id"] == NAME
    assert client.get("/v1/models/gpt-4").status_code == 404
    assert client.get("/health").json() == {"status": "ok"}


def test_chat_equals_generate_and_the_openai_client_reads_it(client, lm, vs):
    openai = pytest.importorskip("openai")
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client)
    ref = generate(lm, [conv()], max_new_tokens=5)
    out = api.chat.completions.create(model=NAME, messages=conv(), max_tokens=5)  # type: ignore[arg-type]
    assert out.choices[0].message.content == ref.replies[0] and out.choices[0].finish_reason == "length"
    assert out.usage is not None and out.usage.completion_tokens == 5
    assert out.usage.prompt_tokens == int(ref.attention_mask[0, : ref.prompt_length].sum())
    steer = {"steer": {"calm": 0.5}, "layer": 2}
    out = api.chat.completions.create(model=NAME, messages=conv(), max_tokens=5, extra_body={"emovec": steer})  # type: ignore[arg-type]
    spec = generate(lm, [conv()], vectors=vs, max_new_tokens=5, spec=SteeringSpec([SteerTerm("calm", 0.5)], layers=[2]))
    assert out.choices[0].message.content == spec.replies[0] != ref.replies[0]
    assert out.model_extra is not None and out.model_extra["emovec"]["steer"]["terms"] == {"calm": 0.5}
    stream = api.chat.completions.create(model=NAME, messages=conv(), max_tokens=5, stream=True,  # type: ignore[arg-type]
                                         extra_body={"emovec": steer})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == spec.replies[0]


def test_text_completions_take_raw_prompts_and_a_list_gives_one_choice_each(client, lm):
    ref = generate(lm, PROMPTS, max_new_tokens=4, chat=False)
    r = client.post("/v1/completions", json={"model": NAME, "prompt": PROMPTS, "max_tokens": 4})
    body = r.json()
    assert body["object"] == "text_completion" and [c["text"] for c in body["choices"]] == ref.replies
    assert [c["index"] for c in body["choices"]] == [0, 1] and body["usage"]["completion_tokens"] == 8
    parts = events(client, {"model": NAME, "prompt": PROMPTS[1], "max_tokens": 4, "stream": True,
                            "stream_options": {"include_usage": True}}, "/v1/completions")
    assert "".join(p["choices"][0]["text"] for p in parts if p["choices"]) == ref.replies[1]
    assert parts[-1]["choices"] == [] and parts[-1]["usage"]["completion_tokens"] == 4


def test_a_monitored_reply_carries_each_tokens_scores_and_a_summary(client, lm, vs):
    block = {"monitor": ["happy", "calm"], "monitor_layer": 0}
    body = client.post("/v1/chat/completions", json=chat(emovec=block)).json()
    ref = generate(lm, [conv()], vectors=vs, monitor=["happy", "calm"], monitor_layers=[0], max_new_tokens=6)
    assert ref.trace is not None
    readout = body["emovec"]["monitor"]
    assert readout["names"] == ["happy", "calm"] and readout["layer"] == 0
    tokens = readout["choices"][0]["tokens"]
    assert [t["id"] for t in tokens] == ref.token_ids[0, ref.prompt_length:].tolist()[:5]
    for k, t in enumerate(tokens):
        expect = ref.trace.scores[0, ref.prompt_length + k, 0].tolist()
        assert [t["scores"]["happy"], t["scores"]["calm"]] == pytest.approx(expect, rel=1e-4, abs=1e-5)
    mean = readout["choices"][0]["summary"]["mean"]
    assert mean["calm"] == pytest.approx(sum(t["scores"]["calm"] for t in tokens) / 5, rel=1e-5)
    parts = events(client, chat(emovec=block, stream=True))
    streamed = [t for p in parts if p.get("emovec") and p["emovec"]["monitor"]
                for c in p["emovec"]["monitor"]["choices"] for t in c["tokens"]]
    assert streamed == tokens
    assert parts[-1]["emovec"]["monitor"]["choices"][0]["summary"] == readout["choices"][0]["summary"]
    everything = client.post("/v1/chat/completions", json=chat(emovec={"monitor": True})).json()
    assert everything["emovec"]["monitor"]["names"] == ["calm", "desperate", "afraid", "happy"]


def test_stop_strings_and_ignored_fields(client, lm):
    full = generate(lm, [conv(PROMPTS[1])], max_new_tokens=8).replies[0]
    stop = " " + full.split()[2]
    r = client.post("/v1/chat/completions", json=chat(PROMPTS[1], max_tokens=8, stop=[stop], top_k=5, user="me"))
    assert r.json()["choices"][0]["message"]["content"] == full[: full.index(stop)].strip()
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    assert r.headers["x-emovec-ignored-fields"] == "top_k"


# -- refusals ------------------------------------------------------------------------------------------------------

BAD = [
    ({"emovec": {"steer": {"clam": 0.1}}}, 400, "emovec.steer.clam", "allowed: calm, desperate, afraid, happy"),
    ({"emovec": {"steer": {"calm": 11}}}, 400, "emovec.steer.calm", "from -10 to 10"),
    ({"emovec": {"steer": {"calm": "x"}}}, 400, "emovec.steer.calm", "finite number"),
    ({"emovec": {"steer": {"calm": 0.1}, "layer": 1}}, 400, "emovec.layer", "allowed: 0, 2"),
    ({"emovec": {"steer": {"calm": 0.1}, "layer": [2, 2]}}, 400, "emovec.layer", "distinct"),
    ({"emovec": {"steer": {"calm": 0.1}, "mode": "twist"}}, 400, "emovec.mode", "'add', 'clamp' or 'ablate'"),
    ({"emovec": {"layer": 2}}, 400, "emovec.layer", "applies to emovec.steer"),
    ({"emovec": {"stear": {"calm": 0.1}}}, 400, "emovec.stear", "allowed in emovec: steer, layer, mode"),
    ({"emovec": {"monitor": ["calm", "glum"]}}, 400, "emovec.monitor", "no vector named 'glum'"),
    ({"emovec": {"monitor": ["calm"], "monitor_layer": 7}}, 400, "emovec.monitor_layer", "allowed: 0, 2"),
    ({"model": "gpt-4"}, 404, "model", f"serves '{NAME}'"),
    ({"max_tokens": 33}, 400, "max_tokens", "allowed: 1..32"),
    ({"max_tokens": 0}, 400, "max_tokens", "greater than or equal to 1"),
    ({"n": 2}, 400, "n", "allowed: 1"),
    ({"temperature": -1}, 400, "temperature", "greater than or equal to 0"),
    ({"logprobs": True}, 400, "logprobs", "not supported"),
    ({"tools": [{"type": "function"}]}, 400, "tools", "not supported"),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "at most 4"),
    ({"messages": []}, 400, "messages", "at least 1"),
    ({"messages": [{"role": "user", "content": "hi"}] * 5}, 400, "messages", "at most 4"),
    ({"messages": [{"role": "tool", "content": "hi"}]}, 400, "messages.0.role", "'user'"),
]


@pytest.mark.parametrize(("change", "status", "param", "says"), BAD, ids=[b[2] + ":" + b[3][:12] for b in BAD])
def test_each_bad_request_gets_its_status_naming_the_field(client, change, status, param, says):
    r = client.post("/v1/chat/completions", json={**chat(), **change})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and says in error["message"], error
    assert client.get("/health").status_code == 200  # still serving


def test_malformed_json_nan_an_oversized_body_and_blank_prompts_are_refused(client):
    raw = {"content-type": "application/json"}
    r = client.post("/v1/chat/completions", content=b'{"model": ', headers=raw)
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]["message"]
    nan = json.dumps(chat(emovec={"steer": {"calm": float("nan")}}))
    r = client.post("/v1/chat/completions", content=nan, headers=raw)
    assert r.status_code == 400 and "finite number" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json=chat("the " * 2000))
    assert r.status_code == 413 and "at most 4096" in r.json()["error"]["message"]
    r = client.post("/v1/completions", json={"model": NAME, "prompt": "  "})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    r = client.post("/v1/completions", json={"model": NAME, "prompt": ["a"] * 4})
    assert r.status_code == 400 and "1..3 prompts" in r.json()["error"]["message"]


def test_a_prompt_past_the_token_limits_is_refused(lm, vs):
    with TestClient(create_app(lm, vs, ServeOptions(max_prompt_tokens=8))) as c:
        r = c.post("/v1/chat/completions", json=chat("the cat sat on the mat with the dog"))
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        assert "allowed: at most 8" in r.json()["error"]["message"]
        r = c.post("/v1/completions", json={"model": NAME, "prompt": "the " * 20})
        assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    with TestClient(create_app(lm, vs, ServeOptions(max_tokens_limit=1000))) as c:  # the model has 256 positions
        r = c.post("/v1/chat/completions", json=chat(max_tokens=300))
        assert r.status_code == 400 and "context of 256 tokens" in r.json()["error"]["message"]


def test_a_full_queue_answers_429(client, monkeypatch):
    def full(_jobs):  # type: ignore[no-untyped-def]
        raise QueueFull("the queue is full (256 waiting requests); retry later")

    monkeypatch.setattr(client.app.state.served.batcher, "submit", full)  # type: ignore[attr-defined]
    r = client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"


def test_the_api_key_guards_every_route_but_health(lm, vs):
    with TestClient(create_app(lm, vs, ServeOptions(api_key="sesame"))) as c:
        assert c.get("/health").status_code == 200
        for path in ("/v1/models", "/metrics"):
            assert c.get(path).status_code == 401
        assert c.post("/v1/chat/completions", json=chat()).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.post("/v1/chat/completions", json=chat(), headers={"Authorization": "Bearer sesame"})
        assert ok.status_code == 200


def test_metrics_count_requests_tokens_and_latency(client):
    client.post("/v1/chat/completions", json=chat())
    text = client.get("/metrics").text
    for name in ("emovec_requests_total", "emovec_tokens_total", "emovec_decode_steps_total", "emovec_queue_depth",
                 "emovec_batch_size_bucket",
                 "emovec_request_latency_seconds_bucket", "emovec_time_to_first_token_seconds"):
        assert name in text
    assert 'route="/v1/chat/completions",status="200"' in text


def test_a_request_past_its_timeout_gets_504_or_an_error_event(lm, vs):
    with TestClient(create_app(lm, vs, ServeOptions(timeout_s=1e-6))) as c:
        r = c.post("/v1/chat/completions", json=chat())
        assert r.status_code == 504 and "timeout" in r.json()["error"]["message"]
        parts = events(c, chat(stream=True))
        assert parts[-1]["error"]["type"] == "timeout"
        assert c.get("/health").status_code == 200


def test_default_steering_applies_unless_a_request_turns_it_off(lm, vs):
    options = ServeOptions(steer={"calm": 0.5}, layer=2)
    spec = SteeringSpec([SteerTerm("calm", 0.5)], layers=[2])
    steered = generate(lm, [conv()], vectors=vs, spec=spec, max_new_tokens=5).replies[0]
    plain = generate(lm, [conv()], max_new_tokens=5).replies[0]
    with TestClient(create_app(lm, vs, options)) as c:
        got = c.post("/v1/chat/completions", json=chat()).json()
        assert got["choices"][0]["message"]["content"] == steered
        assert got["emovec"]["steer"] == {"terms": {"calm": 0.5}, "layers": [2], "mode": "add", "scope": "all"}
        off = c.post("/v1/chat/completions", json=chat(emovec={"steer": {}})).json()
        assert off["choices"][0]["message"]["content"] == plain and off["emovec"]["steer"] is None


def test_without_vectors_steering_and_readouts_are_refused(lm):
    with TestClient(create_app(lm)) as c:
        r = c.post("/v1/chat/completions", json=chat(emovec={"monitor": ["calm"]}))
        assert r.status_code == 400 and "--vectors" in r.json()["error"]["message"]
        assert c.post("/v1/chat/completions", json=chat()).status_code == 200


def test_the_serve_package_names_what_it_holds():
    import emovec.serve

    assert emovec.serve.__all__ == sorted(emovec.serve.__all__)
    assert all(getattr(emovec.serve, name, None) is not None for name in emovec.serve.__all__)
    code = "import sys, emovec, emovec.cli; print('emovec.serve' in sys.modules, 'fastapi' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]  # nothing imports the server; the CLI loads it on use


def test_describe_names_union_fields_once():
    errors = [{"type": "int_parsing", "loc": ("body", "emovec", "layer", "int"), "msg": "Input should be a valid "
               "integer"}, {"type": "list_type", "loc": ("body", "emovec", "layer", "list[int]"),
                            "msg": "Input should be a valid list"}]
    assert describe(errors) == ("emovec.layer: Input should be a valid integer; or Input should be a valid list",
                                "emovec.layer")


def test_the_serve_command_builds_the_options_and_binds_loopback(lm, vs, tmp_path, monkeypatch):
    from emovec.cli import app

    vs.save(tmp_path / "vecs")
    seen: dict[str, object] = {}
    monkeypatch.setattr("emovec.cli.serving._load", lambda *a: lm)
    monkeypatch.setattr("emovec.serve.run_server", lambda app, host, port: seen.update(app=app, host=host, port=port))
    monkeypatch.setenv("EMOVEC_API_KEY", "sesame")
    result = CliRunner().invoke(app, ["serve", "tiny", "--vectors", str(tmp_path / "vecs"), "--steer", "calm=0.1",
                                      "--port", "9999", "--max-batch", "4"])
    assert result.exit_code == 0, result.output
    served = seen["app"].state.served  # type: ignore[attr-defined]
    assert seen["host"] == "127.0.0.1" and seen["port"] == 9999
    assert served.options.api_key == "sesame" and served.options.max_batch == 4
    assert served.default_steer.terms == (("calm", 0.1),)
    bad = CliRunner().invoke(app, ["serve", "tiny", "--steer", "calm=0.1"])
    assert bad.exit_code != 0 and "--vectors" in bad.output
