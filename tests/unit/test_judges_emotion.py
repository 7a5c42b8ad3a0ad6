"""The independent emotion judge: the 171-to-Plutchik table, the skip path without nade, and (when nade is
installed) its scores, the CLI and the sweep's side-effect metrics."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from emovec.cli import app
from emovec.data import emotions
from emovec.evaluation.judges import emotion as emo
from emovec.evaluation.summary import nade_calm_minus_distress, nade_target, summarize_group

runner = CliRunner()


@pytest.fixture
def no_nade(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    emo.reset_emotion_judge()
    monkeypatch.setitem(sys.modules, "nade", None)  # makes `import nade` raise ImportError
    yield
    emo.reset_emotion_judge()


def test_every_emotion_maps_to_a_plutchik_emotion_or_none():
    table = emo.plutchik_table()
    assert set(table) == set(emotions()) and len(table) == 171
    assert set(table.values()) - {None} == set(emo.PLUTCHIK)  # all eight are reachable
    assert emo.plutchik_of("terrified") == "fear" and emo.plutchik_of("desperate") == "fear"
    assert emo.plutchik_of("calm") == "joy" and emo.plutchik_of("loving") == "trust"
    assert emo.plutchik_of("bored") == "disgust" and emo.plutchik_of("furious") == "anger"
    assert emo.plutchik_of("tired") is None and emo.plutchik_of("not an emotion") is None
    assert emo.plutchik_of("joy") == "joy"  # Plutchik names map to themselves
    assert sum(v is None for v in table.values()) < 20


def test_without_nade_everything_reports_the_skip(no_nade: None, tmp_path: Path):
    assert emo.load_emotion_judge() is None and emo.judge_emotions(["hello"]) is None
    assert emo.emotion_judge_error() == emo.SKIPPED == "emotion judge skipped (install nade)"
    src = tmp_path / "r.jsonl"
    src.write_text('{"completion": "I am happy."}\n')
    result = runner.invoke(app, ["judge", "emotion", str(src), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "emotion judge skipped (install nade)" in result.output
    assert "pip install" in result.output and not (tmp_path / "o.jsonl").exists()
    result = runner.invoke(app, ["judge", "refusal", str(src), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0  # the other judges do not need it


def _rows(nade: bool) -> pd.DataFrame:
    base = {"item_kind": "benign", "refusal_label": "full_compliance", "harmful_detail": 0.0, "tone_masked": False,
            "helpful_correct": math.nan, "perplexity": 5.0, "repetition": 0.0, "kl": 0.0, "refusal_logodds": 0.0,
            "ms_per_token_p50": 1.0, "ms_per_token_p95": 2.0, "calm_minus_distress": 0.01, "cond_kind": "emotion",
            "cond_name": "afraid"}
    rows = []
    for i in range(4):
        extra = {f"nade_{e}": 0.1 * (k + 1) * (i + 1) / 4 for k, e in enumerate(emo.PLUTCHIK)} if nade else {}
        rows.append({**base, **extra})
    return pd.DataFrame(rows)


def test_summary_gives_nade_metrics_beside_the_readout_or_nan_without_them():
    with_nade = summarize_group(_rows(True), 50)
    assert with_nade["readout_calm_minus_distress"].value == pytest.approx(0.01)
    df = _rows(True)
    expected = ((df["nade_joy"] + df["nade_trust"]) / 2 - df["nade_fear"]).to_numpy()
    assert np.allclose(nade_calm_minus_distress(df), expected)
    assert np.allclose(nade_target(df), df["nade_fear"].to_numpy())  # afraid -> fear
    assert with_nade["nade_target"].value == pytest.approx(float(df["nade_fear"].mean()))
    without = summarize_group(_rows(False), 50)
    assert without["nade_target"].n == 0 and math.isnan(without["nade_calm_minus_distress"].value)
    assert without["readout_calm_minus_distress"].n == 4


def test_sweep_report_says_the_judge_was_skipped(tmp_path: Path):
    from emovec.evaluation.summary import summarize
    from emovec.reports.sweep_report import write_sweep_report
    from tests.builders import sweep_manifest

    df = _rows(False).assign(condition="emotion:afraid", strength=0.05, layers="3", prompt="p", reply="r",
                             judge_label=None, item_id=[f"i{i}" for i in range(4)])
    page = write_sweep_report(tmp_path, df, sweep_manifest("m"), summarize(df, n_boot=20), n_boot=20)
    assert "emotion judge skipped (install nade)" in page.read_text()
    df = _rows(True).assign(condition="emotion:afraid", strength=0.05, layers="3", prompt="p", reply="r",
                            judge_label=None, item_id=[f"i{i}" for i in range(4)])
    page = write_sweep_report(tmp_path, df, sweep_manifest("m"), summarize(df, n_boot=20), n_boot=20)
    text = page.read_text()
    assert "independent judge" in text and "nade_target" in text and "skipped" not in text


def test_nade_scores_and_the_emotion_command(tmp_path: Path):
    pytest.importorskip("nade")
    emo.reset_emotion_judge()
    scores = emo.judge_emotions(["I am terrified, please help, I'm so scared.", "", "What a wonderful, happy day!"])
    assert scores is not None and scores.scores.shape == (3, 8)
    assert np.isnan(scores.scores[1]).all()  # an empty reply is not scored
    finite = scores.scores[[0, 2]]
    assert ((finite >= 0) & (finite <= 1)).all()
    assert scores.column("fear")[0] > scores.column("fear")[2]
    assert scores.column("joy")[2] > scores.column("joy")[0]
    src = tmp_path / "r.csv"
    src.write_text('prompt,completion\nq,"I hate this, it is disgusting and makes me furious."\nq2,""\n')
    out = tmp_path / "o.jsonl"
    result = runner.invoke(app, ["judge", "emotion", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["label"] in emo.PLUTCHIK and rows[0]["score"] == max(rows[0][f"emotion_{e}"] for e in emo.PLUTCHIK)
    assert rows[1]["label"] is None and rows[0]["prompt"] == "q"
