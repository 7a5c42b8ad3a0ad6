"""Next-token log-probs with follow-up tokens read from the key-value cache equal a full re-read."""

from __future__ import annotations

import torch

from emovec.evaluation.judges.model_scores import last_logprobs, logprobs_and_followups


def test_cached_followups_match_rereading_each_sequence_with_the_token(tiny) -> None:
    tok = tiny.tokenizer
    seqs = [tok(t)["input_ids"] for t in ("the cat sat on the", "a dog ran", "she looked at the old house and")]
    follow = [tok(w, add_special_tokens=False)["input_ids"][0] for w in ("happy", "sad")]
    first, after = logprobs_and_followups(tiny, seqs, follow)
    alone = torch.stack([torch.log_softmax(tiny.model(input_ids=torch.tensor([s])).logits[0, -1], -1) for s in seqs])
    assert torch.allclose(first, alone, atol=1e-4)  # padded batch = each sequence read alone
    for t in follow:
        assert torch.allclose(after[t], last_logprobs(tiny, [[*s, t] for s in seqs]), atol=1e-4)
    assert not torch.allclose(after[follow[0]], after[follow[1]])  # the cache was not shared between follow-ups
