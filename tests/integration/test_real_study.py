"""The policy-dominance study on the real default model, with a small preset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emovec.studies.policy_dominance import ModelPlan, Preset, run_study

pytestmark = pytest.mark.integration

SMALL = Preset(name="small", background=4, per_emotion=6, max_length=80, templates=("story", "dialogue"), n_splits=10,
               n_seeds=3, n_boot=200, limits={"paired": 4, "helpful": 2}, max_new_tokens=8, strength=0.1,
               dose=(-0.2, 0.0, 0.2), dose_prompts=3, batch_size=32)


@pytest.mark.slow
def test_policy_dominance_on_the_default_model(real_model, tmp_path: Path):
    keys = {"calm": "calm", "desperate": "desperate"}
    res = run_study([ModelPlan("smollm2-135m-instruct")], SMALL, tmp_path, keys=keys,
                    loaded={"smollm2-135m-instruct": real_model}, log=lambda m: None)
    r = res.models["smollm2-135m-instruct"].model_dump()
    assert r["layer"] == 20 and r["source"]["name"] == "smollm2-135m-instruct"
    unsteered = set()
    for name in keys.values():
        stab = r["stability"]
        # as many estimates as the preset asks for, cosines in [-1, 1] and AUCs in [0, 1]
        assert stab["split_half"][name]["n"] == stab["readout_auc"][name]["n"] == SMALL.n_splits
        assert stab["resample"][name]["n"] == SMALL.n_seeds
        for measure, (lo, hi) in (("split_half", (-1, 1)), ("resample", (-1, 1)), ("readout_auc", (0, 1))):
            est = stab[measure][name]
            assert lo - 1e-6 <= est["low"] <= est["value"] <= est["high"] <= hi + 1e-6, (measure, est)
        dose = r["causal_influence"][name]
        assert dose["strengths"] == list(SMALL.dose) and dose["slope"]["n"] == SMALL.dose_prompts
        # the mean per-prompt slope is the least-squares slope of the means (slopes are linear in the values)
        fitted = np.polyfit(dose["strengths"], dose["mean_by_strength"], 1)[0]
        assert dose["slope"]["value"] == pytest.approx(fitted, rel=1e-4)
        assert dose["slope"]["low"] <= dose["slope"]["value"] <= dose["slope"]["high"]
        assert dose["slope_sd"] >= 0 and 0 <= dose["wrong_way"] <= 1
        unsteered.add(round(dose["mean_by_strength"][dose["strengths"].index(0.0)], 5))
    assert len(unsteered) == 1  # strength 0 is the unsteered model, whichever direction is named
    assert r["verdict"]["text"] and len(r["verdict"]["criteria"]) == 4
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["models"]["smollm2-135m-instruct"]["verdict"] == r["verdict"]
