"""The policy-dominance study on the real default model, with a small preset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from emovec.studies import ModelPlan, Preset, run_study

pytestmark = pytest.mark.integration

SMALL = Preset("small", background=4, per_emotion=6, max_length=80, templates=("story", "dialogue"), n_splits=10,
               n_seeds=3, n_boot=200, limits={"paired": 4, "helpful": 2}, max_new_tokens=8, strength=0.1,
               dose=(-0.2, 0.0, 0.2), dose_prompts=3, batch_size=32)


def test_policy_dominance_on_the_default_model(real_model, tmp_path: Path):
    keys = {"calm": "calm", "desperate": "desperate"}
    res = run_study([ModelPlan("smollm2-135m-instruct")], SMALL, tmp_path, keys=keys,
                    loaded={"smollm2-135m-instruct": real_model}, log=lambda m: None)
    r = res.models["smollm2-135m-instruct"]
    assert r["layer"] == 20 and r["source"]["name"] == "smollm2-135m-instruct"
    for name in keys.values():
        for measure in ("split_half", "resample", "readout_auc"):
            est = r["stability"][measure][name]
            assert est["n"] > 0 and est["lo"] <= est["value"] <= est["hi"]
        slope = r["causal_influence"][name]["slope"]
        assert math.isfinite(slope["value"]) and slope["lo"] <= slope["value"] <= slope["hi"]
    assert r["verdict"]["text"] and len(r["verdict"]["criteria"]) == 4
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["models"]["smollm2-135m-instruct"]["verdict"] == r["verdict"]
