from __future__ import annotations

import math

import pytest
import torch

from emovec.evaluation.judges.model_scores import next_token_kl, refusal_logodds, reply_perplexity
from emovec.generation import PromptError
from emovec.steer import SteeringSpec, SteerTerm
from tests.builders import make_set

PROMPTS = ["the cat sat on the", "she walked to the train and waited for her", "i"]


def next_probs(lm, text: str) -> torch.Tensor:
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return lm.model(input_ids=ids).logits[0, -1].softmax(-1)


def test_refusal_logodds_matches_a_hand_computation(tiny):
    tok = tiny.tokenizer
    refusal, compliance = ("i never", "sad"), ("i always", "happy")
    got = refusal_logodds(tiny, PROMPTS, refusal=refusal, compliance=compliance)
    tid = {w: tok.convert_tokens_to_ids(w) for w in ("i", "never", "always", "sad", "happy")}
    for k, prompt in enumerate(PROMPTS):
        p = next_probs(tiny, prompt)
        after_i = next_probs(tiny, prompt + " i")
        ref = p[tid["sad"]] + p[tid["i"]] * after_i[tid["never"]]
        comp = p[tid["happy"]] + p[tid["i"]] * after_i[tid["always"]]
        assert got[k].item() == pytest.approx(math.log(ref / comp), abs=1e-4)


def test_refusal_logodds_moves_under_steering_and_rejects_bad_prompts(tiny_llama):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    plain = refusal_logodds(tiny_llama, PROMPTS, refusal=("sad",), compliance=("happy",))
    spec = SteeringSpec([SteerTerm("calm", 2.0)], layers=[1])
    steered = refusal_logodds(tiny_llama, PROMPTS, refusal=("sad",), compliance=("happy",), spec=spec, vectors=vs)
    assert not torch.allclose(plain, steered)
    with pytest.raises(PromptError, match="empty"):
        refusal_logodds(tiny_llama, ["the cat", "  "])


def test_kl_is_zero_at_strength_zero_and_per_row_matches_separate_runs(tiny):
    vs = make_set(tiny, layers=(0, 1, 2))
    zero = next_token_kl(tiny, PROMPTS, SteeringSpec([SteerTerm("calm", 0.0)], layers=[1]), vs)
    assert torch.equal(zero, torch.zeros(len(PROMPTS)))
    separate = [next_token_kl(tiny, [p], SteeringSpec([SteerTerm("calm", s)], layers=[1]), vs)[0].item()
                for p, s in zip(PROMPTS, (0.5, 0.0, 1.5), strict=True)]
    rows = next_token_kl(tiny, PROMPTS, SteeringSpec([SteerTerm("calm", [0.5, 0.0, 1.5])], layers=[1]), vs)
    assert rows[1].item() == pytest.approx(0.0, abs=1e-6) and rows[0] > 0 and rows[2] > 0
    assert rows.tolist() == pytest.approx(separate, rel=1e-3, abs=1e-6)


def test_reply_perplexity_matches_a_hand_computation(tiny_llama):
    prompt, reply = "the cat sat", "on the red car"
    ppl = reply_perplexity(tiny_llama, [prompt, "the dog"], [reply, ""])
    head = tiny_llama.tokenizer(prompt)["input_ids"]
    tail = tiny_llama.tokenizer(reply, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([head + tail])
    with torch.no_grad():
        lp = tiny_llama.model(input_ids=ids).logits[0].log_softmax(-1)
    nll = -torch.stack([lp[len(head) + j - 1, t] for j, t in enumerate(tail)]).mean()
    assert ppl[0].item() == pytest.approx(math.exp(nll.item()), rel=1e-4)
    assert math.isnan(ppl[1].item())  # empty reply
    with pytest.raises(PromptError, match="2 prompts but 1 replies"):
        reply_perplexity(tiny_llama, ["a", "b"], ["c"])
