from __future__ import annotations

import pytest
import torch

from emovec.capture import TokenSelection, capture
from emovec.errors import ActivationError, CorpusError, LayerError

TEXTS = ["the cat sat on the mat", "she walked to the train and waited", "happy", "the sea was calm at night ."]


def reference(lm, text: str, layer: int, start: int = 0) -> torch.Tensor:
    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        hs = lm.model(**enc, output_hidden_states=True).hidden_states
    return hs[layer + 1][0, start:].mean(0)


def test_means_match_hidden_states_for_every_family(tiny):
    # hidden_states' last entry is post final norm, so compare the blocks before the last.
    res = capture(tiny, TEXTS, [0, 1])
    for i, text in enumerate(TEXTS):
        for j, layer in enumerate([0, 1]):
            torch.testing.assert_close(res.means[i, j], reference(tiny, text, layer), rtol=1e-4, atol=1e-5)


def test_batch_padding_does_not_change_results(tiny):
    together = capture(tiny, TEXTS, [1, 2], batch_tokens=4096)
    alone = [capture(tiny, [t], [1, 2]).means[0] for t in TEXTS]
    for i in range(len(TEXTS)):
        torch.testing.assert_close(together.means[i], alone[i], rtol=1e-4, atol=1e-5)


def test_from_index_and_last_token(tiny_llama):
    text = TEXTS[1]
    res = capture(tiny_llama, [text], [0], selection=TokenSelection.from_index(3))
    torch.testing.assert_close(res.means[0, 0], reference(tiny_llama, text, 0, start=3), rtol=1e-4, atol=1e-5)
    last = capture(tiny_llama, [text], [0], selection=TokenSelection.last())
    torch.testing.assert_close(last.means[0, 0], reference(tiny_llama, text, 0, start=-1), rtol=1e-4, atol=1e-5)
    assert last.token_counts.tolist() == [1]


def test_char_spans_select_overlapping_tokens(tiny_llama):
    text = "the cat sat on the mat"
    start = text.index("sat")
    res = capture(tiny_llama, [text], [0], selection=TokenSelection.char_spans(), spans=[[(start, start + 3)]],
                  keep_tokens=True)
    assert res.token_counts.tolist() == [1]
    enc = tiny_llama.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        hs = tiny_llama.model(**enc, output_hidden_states=True).hidden_states
    torch.testing.assert_close(res.means[0, 0], hs[1][0, 3], rtol=1e-4, atol=1e-5)  # <bos> the cat [sat]


def test_char_spans_never_read_before_their_token_start(tiny_llama):
    text = "the cat sat on the mat"
    whole = [[(0, len(text))]]
    res = capture(tiny_llama, [text], [0], selection=TokenSelection.char_spans(2), spans=whole)
    n = len(tiny_llama.tokenizer(text)["input_ids"])
    assert res.token_counts.tolist() == [n - 2]  # <bos> and "the" left out (the attention sink and its neighbour)
    torch.testing.assert_close(res.means[0, 0], reference(tiny_llama, text, 0, start=2), rtol=1e-4, atol=1e-5)
    with pytest.raises(CorpusError, match="from index 9"):
        capture(tiny_llama, ["the cat"], [0], selection=TokenSelection.char_spans(9), spans=[[(0, 7)]])
    with pytest.raises(ValueError, match=">= 0"):
        TokenSelection.char_spans(-1)


def test_groups_average_text_means_equally(tiny_llama):
    per_text = capture(tiny_llama, TEXTS, [2])
    grouped = capture(tiny_llama, TEXTS, [2], groups=["a", "b", "a", "b"])
    assert grouped.groups == ["a", "b"]
    assert grouped.counts.tolist() == [2, 2]
    torch.testing.assert_close(grouped.means[0], (per_text.means[0] + per_text.means[2]) / 2)


def test_keep_tokens_and_mean_norm(tiny_llama):
    res = capture(tiny_llama, TEXTS, [0, 2], keep_tokens=True)
    assert res.tokens is not None
    for i, t in enumerate(res.tokens):
        assert t.shape == (2, int(res.token_counts[i]), 32)
        torch.testing.assert_close(t.mean(1), res.means[i])
    allnorms = torch.cat([t[1].norm(dim=-1) for t in res.tokens])
    torch.testing.assert_close(res.mean_norm[1], allnorms.mean(), rtol=1e-4, atol=1e-4)


def test_stops_after_deepest_layer_and_never_runs_lm_head(tiny_llama):
    calls: list[str] = []
    handles = [tiny_llama.blocks[2].register_forward_hook(lambda *a: calls.append("block2")),
               tiny_llama.lm_head.register_forward_hook(lambda *a: calls.append("lm_head"))]
    try:
        capture(tiny_llama, TEXTS, [0, 1])
        assert calls == []
        capture(tiny_llama, TEXTS, [2])
        assert "block2" in calls and "lm_head" not in calls
    finally:
        for h in handles:
            h.remove()


def test_hooks_are_removed_even_after_errors(tiny_llama):
    before = [len(b._forward_hooks) for b in tiny_llama.blocks]
    with pytest.raises(CorpusError):
        capture(tiny_llama, ["the cat"], [0], selection=TokenSelection.from_index(50))
    capture(tiny_llama, TEXTS, [0, 2])
    assert [len(b._forward_hooks) for b in tiny_llama.blocks] == before


def test_deterministic(tiny_llama):
    a = capture(tiny_llama, TEXTS * 3, None, batch_tokens=20)
    b = capture(tiny_llama, TEXTS * 3, None, batch_tokens=20)
    assert torch.equal(a.means, b.means)


def test_bad_input_errors(tiny_llama):
    with pytest.raises(CorpusError, match="no texts"):
        capture(tiny_llama, [], [0])
    with pytest.raises(CorpusError, match="smaller token start"):
        capture(tiny_llama, ["the cat", "the cat sat on the mat . the sea"], [0],
                selection=TokenSelection.from_index(6))
    with pytest.raises(LayerError, match=r"valid indices are 0\.\.2"):
        capture(tiny_llama, TEXTS, [3])
    with pytest.raises(ValueError, match="one key per text"):
        capture(tiny_llama, TEXTS, [0], groups=["a"])


def test_nan_activations_raise(tiny_llama):
    with torch.no_grad():
        tiny_llama.blocks[0].mlp.down_proj.weight.fill_(float("nan"))
    with pytest.raises(ActivationError, match="non-finite"):
        capture(tiny_llama, TEXTS, [1])
