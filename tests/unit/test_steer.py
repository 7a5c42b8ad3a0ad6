from __future__ import annotations

import pytest
import torch

from emovec.capture import capture
from emovec.errors import IncompatibleVectorsError, LayerError
from emovec.steer import Condition, SteeringError, SteeringSpec, SteerTerm, steering
from tests.builders import PROMPTS, encode, greedy, logits, make_set


def test_strength_zero_is_exactly_unsteered(tiny):
    vs = make_set(tiny, layers=(0, 1, 2))
    enc = encode(tiny, PROMPTS)
    plain_ids, plain_logits = greedy(tiny, enc), logits(tiny, enc)
    spec = SteeringSpec([SteerTerm("calm", 0.0), SteerTerm("desperate", [0.0, 0.0])], layers=[0, 1, 2])
    with steering(tiny, spec, vs):
        assert torch.equal(greedy(tiny, enc), plain_ids)
        assert torch.equal(logits(tiny, enc), plain_logits)


def test_add_shifts_the_residual_by_strength_times_mean_norm(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    plain = capture(tiny_llama, PROMPTS, [1]).means
    with steering(tiny_llama, SteeringSpec([SteerTerm("calm", 0.5)], layers=[1]), vs):
        steered = capture(tiny_llama, PROMPTS, [1]).means
    unit = torch.nn.functional.normalize(vs.vector("calm", 1), dim=0)
    expected = 0.5 * float(vs.mean_norm[1]) * unit
    torch.testing.assert_close(steered - plain, expected.expand_as(plain), rtol=1e-4, atol=1e-4)


def test_clamp_and_ablate_set_the_component(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    unit = torch.nn.functional.normalize(vs.vector("afraid", 2), dim=0)
    for op, target in (("ablate", 0.0), ("clamp", 0.2)):
        with steering(tiny_llama, SteeringSpec([SteerTerm("afraid", 0.2, op)], layers=[2]), vs):
            res = capture(tiny_llama, PROMPTS, [2], keep_tokens=True)
        assert res.tokens is not None
        proj = torch.cat([t[0] @ unit for t in res.tokens])
        torch.testing.assert_close(proj, torch.full_like(proj, target * float(vs.mean_norm[2])), rtol=1e-4,
                                   atol=1e-4)


def test_batch_rows_are_independent_and_match_single_runs(tiny):
    vs = make_set(tiny, layers=(0, 1, 2))
    spec = SteeringSpec([SteerTerm("desperate", [2.0, 0.0])], layers=[1], scope="all")
    enc = encode(tiny, PROMPTS)
    with steering(tiny, spec, vs):
        both = greedy(tiny, enc)
    alone0 = SteeringSpec([SteerTerm("desperate", 2.0)], layers=[1])
    with steering(tiny, alone0, vs):
        first = greedy(tiny, encode(tiny, PROMPTS[:1]))
    second = greedy(tiny, encode(tiny, PROMPTS[1:]))
    pad = both.shape[1] - first.shape[1]
    assert torch.equal(both[0, pad:], first[0])
    assert torch.equal(both[1], second[0])


def test_scope_generated_leaves_the_prompt_alone(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    enc = encode(tiny_llama, PROMPTS)
    plain_logits, plain_ids = logits(tiny_llama, enc), greedy(tiny_llama, enc, n=8)
    spec = SteeringSpec([SteerTerm("happy", 8.0)], layers=[0, 1], scope="generated")
    with steering(tiny_llama, spec, vs):
        assert torch.equal(logits(tiny_llama, enc), plain_logits)  # a prompt-only pass is not steered
        steered_ids = greedy(tiny_llama, enc, n=8)
    n_prompt = enc["input_ids"].shape[1]
    assert torch.equal(steered_ids[:, : n_prompt + 1], plain_ids[:, : n_prompt + 1])  # first token from the prompt
    assert not torch.equal(steered_ids, plain_ids)
    with steering(tiny_llama, SteeringSpec([SteerTerm("happy", 8.0)], layers=[0], scope="prompt"), vs):
        assert not torch.equal(logits(tiny_llama, enc), plain_logits)


def test_conditional_steering_fires_only_past_its_threshold(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    enc = encode(tiny_llama, PROMPTS)
    plain = logits(tiny_llama, enc)
    term = [SteerTerm("happy", 4.0)]
    never = SteeringSpec(term, layers=[1], condition=Condition("desperate", 0, threshold=1e6))
    always = SteeringSpec(term, layers=[1], condition=Condition("desperate", 0, threshold=-1e6))
    with steering(tiny_llama, never, vs):
        assert torch.equal(logits(tiny_llama, enc), plain)
    with steering(tiny_llama, SteeringSpec(term, layers=[1]), vs):
        unconditional = logits(tiny_llama, enc)
    with steering(tiny_llama, always, vs):
        torch.testing.assert_close(logits(tiny_llama, enc), unconditional)
    # a threshold between token scores steers some tokens and not others
    unit = torch.nn.functional.normalize(vs.vector("desperate", 0), dim=0)
    res = capture(tiny_llama, PROMPTS, [0], keep_tokens=True)
    assert res.tokens is not None
    scores = torch.cat([t[0] @ unit for t in res.tokens]) / float(vs.mean_norm[0])
    mid = float(scores.median())
    with steering(tiny_llama, SteeringSpec(term, layers=[1], condition=Condition("desperate", 0, mid)), vs):
        partial = capture(tiny_llama, PROMPTS, [1], keep_tokens=True)
    base = capture(tiny_llama, PROMPTS, [1], keep_tokens=True)
    assert partial.tokens is not None and base.tokens is not None
    moved = torch.cat([(a[0] - b[0]).norm(dim=-1) > 1e-4 for a, b in zip(partial.tokens, base.tokens, strict=True)])
    assert torch.equal(moved, scores > mid)


def test_hooks_removed_after_an_exception(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    counts = [len(b._forward_hooks) for b in tiny_llama.blocks], len(tiny_llama.backbone._forward_pre_hooks)
    spec = SteeringSpec([SteerTerm("calm", 1.0)], [0, 2])
    with pytest.raises(RuntimeError, match="boom"), steering(tiny_llama, spec, vs):
        raise RuntimeError("boom")
    assert ([len(b._forward_hooks) for b in tiny_llama.blocks], len(tiny_llama.backbone._forward_pre_hooks)) == counts


def test_bad_specifications(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    cases = [
        (SteeringSpec([SteerTerm("calm", float("nan"))], [1]), SteeringError, "finite"),
        (SteeringSpec([SteerTerm("calm", float("inf"))], [1]), SteeringError, "finite"),
        (SteeringSpec([SteerTerm("clam", 0.1)], [1]), KeyError, "Did you mean 'calm'"),
        (SteeringSpec([SteerTerm("calm", 0.1)], [7]), LayerError, "out of range"),
        (SteeringSpec([SteerTerm(torch.ones(5), 0.1)], [1]), IncompatibleVectorsError, "width 5"),
        (SteeringSpec([SteerTerm("calm", 0.1), SteerTerm("calm", 0.1, "ablate")], [1]), SteeringError, "both"),
        (SteeringSpec([], [1]), SteeringError, "at least one term"),
        (SteeringSpec([SteerTerm("calm", 0.1)], [0], condition=Condition("calm", 2, 0.0)), SteeringError, "after"),
    ]
    for spec, error, message in cases:
        with pytest.raises(error, match=message), steering(tiny_llama, spec, vs):
            pass
