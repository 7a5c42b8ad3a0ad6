"""The steer, monitor, chat and export commands on the real default model."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from emovec.cli import app
from emovec.export import import_gguf
from emovec.vectors import VectorSet

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_steer_json(real_vectors_dir):
    res = runner.invoke(app, ["steer", str(real_vectors_dir), "--prompt", "How are you today?", "--steer",
                              "desperate=0.5", "--steer", "calm=-0.5", "--max-new-tokens", "16", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout[res.stdout.index("{"):])
    assert set(data) == {"unsteered", "steered", "settings"} and data["settings"]["layers"] == [16]
    assert data["unsteered"] != data["steered"]


def test_steer_bad_input(real_vectors_dir):
    res = runner.invoke(app, ["steer", str(real_vectors_dir), "--prompt", "hi", "--steer", "desprate=0.1"])
    assert res.exit_code == 2 and "desperate" in res.output
    res = runner.invoke(app, ["steer", str(real_vectors_dir), "--prompt", "hi", "--steer", "calm=nan"])
    assert res.exit_code == 2 and "finite" in res.output
    res = runner.invoke(app, ["steer", str(real_vectors_dir), "--prompt", " ", "--steer", "calm=0.1"])
    assert res.exit_code == 2 and "empty" in res.output


def test_monitor_transcript_html_and_json(real_vectors_dir, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [
        {"role": "user", "content": "My dog died this morning and I can't stop crying."},
        {"role": "assistant", "content": "I am so sorry. Losing a friend like that hurts deeply."},
    ]}) + "\n" + '{"role": broken}\n')
    res = runner.invoke(app, ["monitor", str(real_vectors_dir), str(chat)])
    assert res.exit_code == 2 and "chat.jsonl:2" in res.output
    chat.write_text(chat.read_text().splitlines()[0] + "\n")
    html = tmp_path / "trace.html"
    res = runner.invoke(app, ["monitor", str(real_vectors_dir), str(chat), "--html", str(html), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout[res.stdout.index("{"):])
    assert set(data["conversations"][0]) == {"user", "assistant"}
    assert "<select id=emotion>" in html.read_text()


def test_chat_session(real_vectors_dir):
    res = runner.invoke(app, ["chat", str(real_vectors_dir), "--max-new-tokens", "8"],
                        input="/steer calm=0.2\nHello there\n/quit\n")
    assert res.exit_code == 0, res.output
    assert "model>" in res.output and "top emotions:" in res.output and "'calm': '0.2'" in res.output


def test_export_gguf_round_trip(real_vectors_dir, tmp_path):
    out = tmp_path / "calm.gguf"
    res = runner.invoke(app, ["export", str(real_vectors_dir), "--steer", "calm=0.05", "--format", "gguf",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    vs = VectorSet.load(real_vectors_dir)
    back = import_gguf(out, vs)
    unit = torch.nn.functional.normalize(vs.vector("calm", 16), dim=0)
    expected = 0.05 * float(vs.mean_norm[vs.layer_index(16)]) * unit
    torch.testing.assert_close(back[16], expected)
    res = runner.invoke(app, ["export", str(real_vectors_dir), "--steer", "calm=0.05", "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output


@pytest.mark.slow
def test_sweep_and_blackmail_commands(real_vectors_dir, tmp_path):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(f"vectors: {real_vectors_dir}\nout: {tmp_path / 'sweep'}\nconditions: [none, emotion:calm]\n"
                   "strengths: [0.1]\nlayers: [[8]]\nsuites: [paired]\nlimit: 2\nmax_new_tokens: 8\nbootstrap: 100\n")
    res = runner.invoke(app, ["sweep", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "refuse harmful" in res.stdout and (tmp_path / "sweep" / "report.html").exists()
    again = runner.invoke(app, ["sweep", str(cfg)])  # resumes: nothing new to generate
    assert again.exit_code == 0 and "0 new rows, 4 already done" in again.output
    out = tmp_path / "bm"
    res = runner.invoke(app, ["blackmail", "--vectors", str(real_vectors_dir), "--emotions", "desperate",
                              "--strengths", "0.1", "--layers", "8", "--variants", "main", "--samples", "1",
                              "--max-new-tokens", "16", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "desperate:+0.1" in res.stdout and (out / "report.html").exists()
