from __future__ import annotations

import pytest
import torch

from emovec.capture import capture
from emovec.monitor import monitoring
from emovec.steer import SteeringSpec, SteerTerm, steering
from tests.builders import PROMPTS, encode, greedy, make_set


def expected_scores(lm, vs, texts, layer):
    res = capture(lm, texts, [layer], keep_tokens=True)
    j = vs.layer_index(layer)
    units = torch.nn.functional.normalize(vs.directions[j], dim=-1)
    assert res.tokens is not None
    return [((t[0] - vs.center[j]) @ units.T) / vs.mean_norm[j] for t in res.tokens]


def test_scores_during_generation_equal_a_separate_forward_pass(tiny):
    vs = make_set(tiny, layers=(0, 1, 2))
    vs = type(vs)(vs.names, vs.layers, vs.directions, vs.mean_norm, vs.provenance, center=torch.randn(3, 32))
    enc = encode(tiny, PROMPTS[:1])
    with monitoring(tiny, vs, layers=[1, 2]) as trace:
        out = greedy(tiny, enc, n=5)
    n_fed = out.shape[1] - 1  # the last generated token is never fed back
    assert trace.scores.shape == (1, n_fed, 2, 4) and len(trace.steps) == 5
    text = tiny.tokenizer.decode(out[0, :n_fed], skip_special_tokens=True)
    for j, layer in enumerate([1, 2]):
        torch.testing.assert_close(trace.scores[0, :, j], expected_scores(tiny, vs, [text], layer)[0],
                                   rtol=1e-3, atol=1e-4)


def test_streaming_callback_subset_table_and_summary(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    seen: list[tuple[int, int]] = []
    enc = encode(tiny_llama, PROMPTS)
    with monitoring(tiny_llama, vs, names=["calm", "afraid"], layers=[1],
                    on_step=lambda s, p: seen.append((s.shape[1], p))) as trace:
        out = greedy(tiny_llama, enc, n=3)
    n_prompt = enc["input_ids"].shape[1]
    assert seen == [(n_prompt, 0), (1, n_prompt), (1, n_prompt + 1)]
    mask = torch.cat([enc["attention_mask"], torch.ones(2, 2, dtype=torch.long)], dim=1)
    rows = trace.table(out, tiny_llama.tokenizer, mask=mask)
    assert {r.name for r in rows} == {"calm", "afraid"} and {r.layer for r in rows} == {1}
    assert len(rows) == int(mask.sum()) * 2
    summary = trace.summary(mask)
    assert summary[0]["top"][0][0] in {"calm", "afraid"} and set(summary[1]["max"]) == {"calm", "afraid"}
    empty = mask.clone()
    empty[1] = 0  # a row with no real tokens (an empty reply) summarises to nothing instead of failing
    summary = trace.summary(empty)
    assert summary[1]["top"] == [] and summary[1]["mean"] == {} and len(summary[0]["top"]) == 2


def test_monitor_sees_steering(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    enc = encode(tiny_llama, PROMPTS[:1])
    with monitoring(tiny_llama, vs, names=["calm"], layers=[1]) as plain:
        tiny_llama.model(**enc)
    with steering(tiny_llama, SteeringSpec([SteerTerm("calm", 0.3)], [1]), vs), \
            monitoring(tiny_llama, vs, names=["calm"], layers=[1]) as steered:
        tiny_llama.model(**enc)
    torch.testing.assert_close(steered.scores - plain.scores, torch.full_like(plain.scores, 0.3), rtol=1e-3, atol=1e-4)


def test_unknown_name(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    with pytest.raises(KeyError, match="Did you mean"), monitoring(tiny_llama, vs, names=["afriad"]):
        pass
