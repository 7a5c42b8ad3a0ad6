"""The server's worker side on a tiny random llama: generate's on_step, per-row steering in one batch, the row
trackers (limits, stop strings, readout), the queue. The HTTP side is in test_serve.py."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from emovec import generate, wrap_model
from emovec.generation import DecodeStep
from emovec.serve.batcher import Batcher, QueueFull
from emovec.serve.engine import Engine
from emovec.serve.jobs import Event, Failed, Finished, Job, Progress, RowMonitor, RowSteer, batch_specs
from emovec.serve.rows import TextCursor, first_stop, readout_summary
from tests.builders import PROMPTS, make_model, make_set, make_tokenizer


@pytest.fixture(scope="module")
def lm():  # type: ignore[no-untyped-def]
    return wrap_model(make_model("llama"), make_tokenizer(), name="tiny-llama")


@pytest.fixture(scope="module")
def vs(lm):  # type: ignore[no-untyped-def]
    return make_set(lm)


def job(prompt: str, events: list[Event], **kw: object) -> Job:
    fields: dict[str, object] = dict(index=0, prompt=prompt, chat=False, max_tokens=5, stop=(), temperature=0.0,
                                     seed=0, steer=None, monitor=None, prompt_tokens=0, sink=events.append)
    return Job(**{**fields, **kw})  # type: ignore[arg-type]


def reply(events: list[Event]) -> Finished:
    done = [e for e in events if isinstance(e, Finished)]
    assert len(done) == 1, events
    return done[0]


# -- generate's on_step --------------------------------------------------------------------------------------------

def test_on_step_sees_each_token_and_a_stopped_row_leaves_the_other_alone(lm):
    seen: list[DecodeStep] = []

    def hook(step: DecodeStep) -> torch.Tensor:
        seen.append(step)
        return torch.tensor([step.index >= 1, False])  # row 0 stops after two tokens

    out = generate(lm, PROMPTS, max_new_tokens=5, chat=False, on_step=hook)
    alone = generate(lm, PROMPTS[1:], max_new_tokens=5, chat=False)
    n = out.prompt_length
    assert [s.index for s in seen] == list(range(5)) and seen[0].scores is None
    assert [int(s.tokens[1]) for s in seen] == out.token_ids[1, n:].tolist()
    assert out.token_ids[1, n:].tolist() == alone.token_ids[0, alone.prompt_length:].tolist()
    assert (out.token_ids[0, n + 2:] == lm.tokenizer.pad_token_id).all()


def test_on_step_hands_over_the_monitor_scores_of_each_pass(lm, vs):
    shapes = []
    out = generate(lm, PROMPTS, vectors=vs, monitor=["calm"], max_new_tokens=3, chat=False,
                   on_step=lambda s: shapes.append(tuple(s.scores.shape)))  # type: ignore[union-attr,func-returns-value]
    assert shapes == [(2, out.prompt_length, 1, 1), (2, 1, 1, 1), (2, 1, 1, 1)]


# -- steering rows side by side ------------------------------------------------------------------------------------

def test_row_steer_is_the_library_spec_and_batch_specs_zero_the_other_rows():
    calm = RowSteer((("calm", 0.05), ("happy", 0.1)), (2,))
    spec = calm.spec()
    assert [(t.direction, t.strength, t.op) for t in spec.terms] == [("calm", 0.05, "add"), ("happy", 0.1, "add")]
    specs = batch_specs([calm, None, RowSteer((("calm", -0.2),), (0, 2))])
    assert [list(s.layer_weights()) for s in specs] == [[0, 2], [2]]
    assert [(t.direction, list(t.strength)) for t in specs[0].terms] == [("calm", [0.0, 0.0, -0.2])]
    assert [(t.direction, list(t.strength)) for t in specs[1].terms] == [("calm", [0.05, 0.0, 0.0]),
                                                                        ("happy", [0.1, 0.0, 0.0])]
    clamp = RowSteer((("calm", 0.3),), (2,), "clamp")
    assert not clamp.mixes and batch_specs([clamp, clamp]) == [clamp.spec()]
    assert batch_specs([None, None]) == []


def test_a_mixed_batch_gives_each_request_what_generate_gives_it_alone(lm, vs):
    steers = [RowSteer((("calm", 0.5),), (2,)), None, RowSteer((("desperate", -0.4), ("happy", 0.3)), (0, 2)),
              RowSteer((("afraid", 0.6),), (0,), scope="generated")]
    prompts = [PROMPTS[0], PROMPTS[1], "the dog ran", PROMPTS[0]]
    watch = [RowMonitor(("calm", "happy"), 2), None, RowMonitor(("afraid",), 0), None]
    events: list[list[Event]] = [[] for _ in prompts]
    jobs = [job(p, e, steer=s, monitor=m, max_tokens=4 + i)
            for i, (p, e, s, m) in enumerate(zip(prompts, events, steers, watch, strict=True))]
    Engine(lm, vs).run(jobs)
    for i, (p, s, m) in enumerate(zip(prompts, steers, watch, strict=True)):
        ref = generate(lm, [p], vectors=vs, spec=s.spec() if s else None, monitor=list(m.names) if m else False,
                       monitor_layers=[m.layer] if m else None, max_new_tokens=5 + i, chat=False)
        got = reply(events[i])
        ids = ref.token_ids[0, ref.prompt_length:].tolist()[: 4 + i]
        assert got.text == lm.tokenizer.decode(ids, skip_special_tokens=True).strip()
        assert got.completion_tokens == 4 + i and got.finish_reason == "length"
        if m is not None:
            assert ref.trace is not None
            expect = ref.trace.scores[0, ref.prompt_length: ref.prompt_length + 4 + i, 0]
            torch.testing.assert_close(torch.tensor([list(t.scores.values()) for t in got.tokens]), expect,
                                       rtol=1e-4, atol=1e-5)
            assert [t.id for t in got.tokens] == ids
            assert got.summary is not None and set(got.summary.mean) == set(m.names)
    assert steers[0] is not None and reply(events[0]).text != reply(events[1]).text


def test_a_clamp_is_the_library_clamp_and_batches_only_with_itself(lm, vs):
    events: list[Event] = []
    Engine(lm, vs).run([job(PROMPTS[0], events, steer=RowSteer((("calm", 2.0),), (0,), "clamp"), max_tokens=4)])
    clamp = RowSteer((("calm", 2.0),), (0,), "clamp")
    assert reply(events).text == generate(lm, [PROMPTS[0]], vectors=vs, spec=clamp.spec(), max_new_tokens=4,
                                          chat=False).replies[0]
    assert job("x", [], steer=clamp).batch_key() != job("x", []).batch_key()
    assert job("x", [], steer=RowSteer((("calm", 1.0),), (2,))).batch_key() == job("y", []).batch_key()


# -- one row's life ------------------------------------------------------------------------------------------------

def test_stop_strings_cut_the_reply_and_streams_add_up_to_it(lm, vs):
    full = generate(lm, [PROMPTS[1]], max_new_tokens=8, chat=False).replies[0]
    words = full.split()
    stop = " " + words[3]
    for monitor in (None, RowMonitor(("calm",), 2)):
        events: list[Event] = []
        Engine(lm, vs).run([job(PROMPTS[1], events, stop=(stop,), max_tokens=8, stream=True, monitor=monitor)])
        done = reply(events)
        assert done.text == full[: full.index(stop)].strip() and done.finish_reason == "stop"
        streamed = "".join(e.text for e in events if isinstance(e, Progress))
        assert streamed == done.text
        if monitor is not None:
            sent = [t for e in events if isinstance(e, Progress) for t in e.tokens]
            assert [t.id for t in sent] == [t.id for t in done.tokens] and len(sent) == done.completion_tokens


def test_a_cancelled_row_stops_without_events_and_the_batch_goes_on(lm, vs):
    quiet: list[Event] = []
    events: list[Event] = []
    gone = job(PROMPTS[0], quiet, max_tokens=6, stream=True)

    def sink(event: Event) -> None:  # the client of row 0 leaves after the first token of row 1
        events.append(event)
        gone.cancel()

    Engine(lm, vs).run([gone, job(PROMPTS[1], [], max_tokens=6, stream=True, sink=sink)])
    assert len(quiet) <= 1 and not any(isinstance(e, Finished) for e in quiet)
    alone = generate(lm, [PROMPTS[1]], max_new_tokens=6, chat=False).replies[0]
    assert reply(events).text == alone


def test_text_cursor_holds_back_what_may_change():
    cursor = TextCursor(["END"])
    assert cursor.advance("  Hello") == "Hello"
    assert cursor.advance("  Hello wor") == " wor"
    assert cursor.advance("  Hello world E") == "ld"  # " E" may start the stop string
    assert cursor.advance("  Hello world \ufffd") == ""
    assert cursor.advance("Hello world!", final=True) == "!" and cursor.sent == "Hello world!"
    assert first_stop("a b END c", ["END", "b"]) == 2 and first_stop("abc", ["x"]) is None


def test_readout_summary_is_monitor_traces():
    s = readout_summary(["calm", "sad"], 2, [[0.1, 0.5], [0.3, -0.5]])
    assert s.mean == pytest.approx({"calm": 0.2, "sad": 0.0}) and s.max == pytest.approx({"calm": 0.3, "sad": 0.5})
    assert [n for n, _ in s.top] == ["calm", "sad"]
    assert readout_summary(["calm"], 2, []).top == []


# -- the queue -----------------------------------------------------------------------------------------------------

def test_batcher_batches_compatible_jobs_drops_cancelled_ones_and_refuses_a_full_queue():
    ran: list[list[int]] = []
    gate = threading.Event()

    def run(batch):  # type: ignore[no-untyped-def]
        gate.wait(5)
        ran.append([j.max_tokens for j in batch])

    b = Batcher(run, max_batch=2, max_queue=4, wait_s=0.05)
    clamp = RowSteer((("calm", 1.0),), (2,), "clamp")
    jobs = [job("a", [], max_tokens=1), job("a", [], max_tokens=2, steer=clamp), job("a", [], max_tokens=3),
            job("a", [], max_tokens=4)]
    b.submit(jobs)
    with pytest.raises(QueueFull, match="queue is full"):
        b.submit([job("a", [])])
    jobs[3].cancel()
    b.start()
    gate.set()
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    b.close()
    assert ran == [[1, 3], [2]]


def test_batcher_fails_a_batch_that_raises_and_the_queued_jobs_on_close():
    def run(batch):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    events: list[Event] = []
    b = Batcher(run, wait_s=0)
    b.start()
    b.submit([job("a", events)])
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)
    b.close()
    assert isinstance(events[0], Failed) and events[0].status == 500 and "boom" in events[0].message
    late: list[Event] = []
    idle = Batcher(run)
    idle.submit([job("a", late)])
    idle.close()
    assert isinstance(late[0], Failed) and late[0].status == 503


def test_a_batch_waits_a_little_for_the_clients_of_the_last_one():
    sizes: list[int] = []
    b = Batcher(lambda batch: sizes.append(len(batch)), max_batch=8, wait_s=0.01)
    b._last = (3, 4.0)  # the last batch held 3 and took 4 s: wait up to 0.2 s for 3
    b.start()
    b.submit([job("a", [])])
    time.sleep(0.05)  # longer than a window: without the rule the batch would have started alone
    b.submit([job("a", []), job("a", [])])
    deadline = time.monotonic() + 5
    while not sizes and time.monotonic() < deadline:
        time.sleep(0.01)
    b.close()
    assert sizes == [3]
