from __future__ import annotations

import pytest
import torch

from emovec.generation import PromptError, generate
from emovec.steer import SteeringSpec, SteerTerm
from tests.builders import PROMPTS, make_set


def test_generate_plain_steered_and_monitored(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    plain = generate(tiny_llama, PROMPTS, max_new_tokens=5)
    zero = generate(tiny_llama, PROMPTS, vectors=vs, spec=SteeringSpec([SteerTerm("calm", 0.0)], [1]),
                    max_new_tokens=5, monitor=["calm"], monitor_layers=[1])
    assert torch.equal(plain.token_ids, zero.token_ids) and plain.replies == zero.replies
    assert zero.trace is not None and zero.trace.scores.shape[:2] == (2, zero.token_ids.shape[1] - 1)
    strong = generate(tiny_llama, PROMPTS, vectors=vs, spec=SteeringSpec([SteerTerm("calm", 10.0)], [0, 1]),
                      max_new_tokens=5)
    assert not torch.equal(plain.token_ids, strong.token_ids)
    assert plain.attention_mask.shape == plain.token_ids.shape


def test_sampling_is_seeded(tiny_llama):
    a = generate(tiny_llama, PROMPTS, max_new_tokens=6, temperature=1.0, seed=3)
    b = generate(tiny_llama, PROMPTS, max_new_tokens=6, temperature=1.0, seed=3)
    assert torch.equal(a.token_ids, b.token_ids)


def test_prompt_errors(tiny_llama):
    with pytest.raises(PromptError, match="empty"):
        generate(tiny_llama, ["fine", "  "])
    with pytest.raises(PromptError, match="no prompts"):
        generate(tiny_llama, [])
    with pytest.raises(PromptError, match="vector set"):
        generate(tiny_llama, ["hi"], monitor=True)


def test_scores_read_from_generation_match_separate_passes(tiny):
    from emovec.evaluation.judges.model_scores import last_logprobs
    from emovec.generation import format_prompt, generate
    from emovec.steer import SteeringSpec, SteerTerm, steering

    vs = make_set(tiny, layers=(0, 1, 2))
    prompts = ["the cat sat on the", "she walked to the train and waited"]
    spec = SteeringSpec([SteerTerm("calm", [0.0, 1.0])], layers=[1])
    t = tiny.tokenizer.convert_tokens_to_ids("dog")
    gen = generate(tiny, prompts, vectors=vs, spec=spec, max_new_tokens=4, score_tokens=True, after_tokens=[t])
    seqs = [tiny.tokenizer(format_prompt(tiny, p))["input_ids"] for p in prompts]
    with steering(tiny, spec, vs):
        first = last_logprobs(tiny, seqs, one_batch=True)
        after = last_logprobs(tiny, [[*s, t] for s in seqs], one_batch=True)
    assert gen.first_logprobs is not None and gen.token_logprobs is not None
    torch.testing.assert_close(gen.first_logprobs, first, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gen.after_prompt[t], after, atol=1e-4, rtol=1e-4)
    chosen = gen.token_ids[:, gen.prompt_length]
    torch.testing.assert_close(gen.token_logprobs[:, 0], first.gather(1, chosen[:, None])[:, 0], atol=1e-4, rtol=1e-4)
