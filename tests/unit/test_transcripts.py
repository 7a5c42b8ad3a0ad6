from __future__ import annotations

import json

import pytest
import torch

from emovec.errors import CorpusError
from emovec.reports.trace import render_trace, write_trace
from emovec.transcripts import read_transcripts, score_conversation
from tests.builders import make_set


def write(tmp_path, lines):
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_both_layouts_and_report_bad_lines(tmp_path):
    conv = json.dumps({"messages": [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "sat"}]})
    loose = [json.dumps({"role": "user", "content": "the sea"}), json.dumps({"role": "assistant", "content": "calm"})]
    convs = read_transcripts(write(tmp_path, [conv, *loose]))
    assert [len(c) for c in convs] == [2, 2]
    with pytest.raises(CorpusError, match=r"chat.jsonl:2: not a chat message"):
        read_transcripts(write(tmp_path, [conv, '{"role": "user"}', conv]))
    with pytest.raises(CorpusError, match=r"chat.jsonl:1:"):
        read_transcripts(write(tmp_path, ["{not json"]))


def test_scores_equal_a_forward_pass_and_roles_are_assigned(tiny_llama, tmp_path):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    msgs = read_transcripts(write(tmp_path, [json.dumps({"role": "user", "content": "the cat sat on the mat"}),
                                             json.dumps({"role": "assistant", "content": "she smiled at the dog"})]))[0]
    conv = score_conversation(tiny_llama, vs, msgs, layer=1)
    assert conv.scores.shape == (len(conv.tokens), 4)
    assert set(conv.roles) >= {"user", "assistant"}
    text = "\n\n".join(f"{m.role}: {m.content}" for m in msgs)
    enc = tiny_llama.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        hidden = tiny_llama.model(**enc, output_hidden_states=True).hidden_states[2][0]
    j = vs.layer_index(1)
    units = torch.nn.functional.normalize(vs.directions[j], dim=-1)
    expected = (hidden - vs.center[j]) @ units.T / vs.mean_norm[j]
    torch.testing.assert_close(conv.scores, expected, rtol=1e-3, atol=1e-4)
    per_message = conv.message_summary()
    assert [m["role"] for m in per_message] == ["user", "assistant"]
    assert per_message[1]["tokens"] == sum(i == 1 for i in conv.message_index)
    summary = conv.role_summary()
    assert summary["assistant"]["tokens"] == sum(r == "assistant" for r in conv.roles)
    page = render_trace(conv.tokens, conv.scores, conv.names, "t", roles=conv.roles)
    out = write_trace(tmp_path / "trace.html", [page])
    html = out.read_text()
    assert "<select id=emotion>" in html and "data:image/png;base64," in html and 'class="tok"' in html
