from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from emovec.corpus import load_corpus
from emovec.studies import StudyError
from emovec.studies.policy_dominance import (
    ModelPlan,
    Preset,
    influence_from_values,
    monitoring_value,
    run_study,
    steering_value,
)
from emovec.studies.policy_dominance.effects import CausalInfluence, Modularity
from emovec.studies.policy_dominance.report import write_study_report
from emovec.validation.stability import StabilityResult, measure_stability, story_activations


def test_story_and_reply_readings_leave_the_attention_sink_out(tiny_llama, write_corpus):
    from emovec.studies.policy_dominance.effects import reply_readouts
    from emovec.validation.geometry import implicit_emotion
    from tests.builders import attention_sink, make_set

    corpus = load_corpus(write_corpus(emotions=("happy", "sad"), per=4, length=20))
    plain = story_activations(tiny_llama, corpus, ["happy", "sad"], 1, per_emotion=4)
    replies = ["the sea was calm at night .", "she walked to the train and waited", "ok", ""]
    vs = make_set(tiny_llama, layers=(1,))
    read = reply_readouts(tiny_llama, vs, ["calm", "happy"], 1, replies)
    implicit = implicit_emotion(tiny_llama, vs, 1)
    with attention_sink(tiny_llama, 1):
        sunk = story_activations(tiny_llama, corpus, ["happy", "sad"], 1, per_emotion=4)
        read_sunk = reply_readouts(tiny_llama, vs, ["calm", "happy"], 1, replies)
        implicit_sunk = implicit_emotion(tiny_llama, vs, 1)
    assert implicit is not None and implicit_sunk is not None
    np.testing.assert_allclose(implicit_sunk.matrix, implicit.matrix, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sunk.acts["story"], plain.acts["story"])
    np.testing.assert_allclose(read_sunk, read, rtol=1e-5, equal_nan=True)
    assert np.isfinite(read[:2]).all() and np.isnan(read[2:]).all()  # too short to read past the sink, empty


def test_stability_sees_real_structure_and_not_shuffled_labels(tiny_llama, write_corpus):
    corpus = load_corpus(write_corpus(emotions=("happy", "sad", "angry", "calm"), per=6, length=30))
    sa = story_activations(tiny_llama, corpus, ["happy", "sad", "angry", "calm"], 1, per_emotion=6,
                           templates={"story": "{story}", "dialogue": "A: what happened ?\nB: {story}"})
    assert sa.acts["story"].shape[0] == 24 and set(sa.acts) == {"story", "dialogue"}
    real = measure_stability(sa, ["happy", "calm"], n_splits=20, n_seeds=4)
    shuffled = sa.__class__(sa.layer, sa.emotions, np.random.default_rng(0).permutation(sa.labels), sa.acts)
    noise = measure_stability(shuffled, ["happy", "calm"], n_splits=20, n_seeds=4)
    for name in ("happy", "calm"):
        est = real.split_half[name]
        assert est.low <= est.value <= est.high and est.n == 20
        assert est.value > noise.split_half[name].value + 0.2
        # the null is computed by the study itself: the same halvings with labels shuffled (no topics: globally)
        null = real.split_half_null
        assert null is not None and null[name].n == 20 and est.value > null[name].high
        assert abs(null[name].value) < 0.3  # averaged over 20 shuffles, noise halves agree on nothing
        assert real.readout_auc[name].value > 0.8
        assert -1 <= real.template["dialogue"][name].value <= 1
    pooled = real.split_half_null_pooled  # the null of the mean over targets, which the mean must beat
    assert pooled is not None and pooled.n == 20
    assert np.mean([real.split_half[k].value for k in ("happy", "calm")]) > pooled.high
    with pytest.raises(KeyError, match="not among"):
        measure_stability(sa, ["proud"])
    with pytest.raises(ValueError, match="at least 10 splits"):
        measure_stability(sa, ["happy"], n_splits=3)


def test_split_halves_follow_topics_so_topic_effects_cannot_pull_an_emotions_halves_apart() -> None:
    from emovec.validation.stability import StoryActivations

    # a crossed design where topics outweigh emotions five-fold: story (e, t) = emotion e + 5 x topic t + noise
    rng = np.random.default_rng(0)
    n_e, n_t, d = 8, 6, 64
    emo, top = rng.normal(size=(n_e, d)), 5 * rng.normal(size=(n_t, d))
    labels, topics = np.repeat(np.arange(n_e), n_t), np.tile(np.arange(n_t), n_e)
    acts = torch.tensor(emo[labels] + top[topics] + 0.3 * rng.normal(size=(n_e * n_t, d)), dtype=torch.float32)
    names = [f"e{i}" for i in range(n_e)]
    by_topic = measure_stability(StoryActivations(1, names, labels, {"story": acts}, topics=topics), names[:3],
                                 n_splits=20, n_seeds=4)
    per_emotion = measure_stability(StoryActivations(1, names, labels, {"story": acts}), names[:3], n_splits=20,
                                    n_seeds=4)
    for name in names[:3]:
        assert by_topic.split_half[name].value > 0.9 and by_topic.readout_auc[name].value > 0.75
        assert by_topic.resample[name].value > 0.9
        # labels shuffled within topics keep the topic structure and lose the emotion: split-half falls to ~0
        assert by_topic.split_half_null is not None and abs(by_topic.split_half_null[name].value) < 0.2
        # the confound the topic split removes: halves on different topics point apart, and held-out stories of
        # the emotion read lower than others (what the Gemma ladder showed before this fix: -0.19 and 0.34)
        assert per_emotion.split_half[name].value < 0 and per_emotion.readout_auc[name].value < 0.5


def test_corpus_stability_compares_two_corpora(tiny_llama, write_corpus):
    from emovec.corpus import Corpus
    from emovec.validation.stability import corpus_stability

    emotions = ("happy", "sad", "angry", "calm")
    a = load_corpus(write_corpus(emotions=emotions, per=5, length=30))
    same = corpus_stability(tiny_llama, a, a, emotions, 1, targets=["happy"], per_emotion=5, n_boot=50)
    assert set(same) == {"happy"} and same["happy"].value == pytest.approx(1.0, abs=1e-5)
    swap = {"happy": "sad", "sad": "happy"}  # the other corpus calls happy stories sad and back
    b = Corpus(tuple(r.model_copy(update={"emotion": swap.get(r.emotion or "", r.emotion)}) for r in a.records),
               a.source)
    crossed = corpus_stability(tiny_llama, a, b, emotions, 1, targets=["happy", "angry"], per_emotion=5, n_boot=50)
    assert crossed["happy"].value < 0.5 < crossed["angry"].value
    assert crossed["happy"].low <= crossed["happy"].value <= crossed["happy"].high


def test_causal_influence_recovers_slopes_and_wrong_way_share():
    strengths = [-0.2, -0.1, 0.0, 0.1, 0.2]
    slopes = np.array([2.0, 2.0, 2.0, -1.0, 3.0])
    values = slopes[:, None] * np.array(strengths)[None] + 0.5
    res = influence_from_values("calm", "x", values, strengths, n_boot=200)
    assert res.slope.value == pytest.approx(slopes.mean()) and res.wrong_way == pytest.approx(0.2)
    assert res.slope.low <= res.slope.value <= res.slope.high
    with pytest.raises(ValueError, match="at least 3 prompts"):
        influence_from_values("calm", "x", values[:2], strengths)


def test_monitoring_value_detects_information_beyond_controls():
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    controls = rng.normal(size=(n, 3))
    informative = (y[:, None] * 1.5 + rng.normal(size=(n, 2)))
    useful = monitoring_value(y, controls, informative, n_boot=200)
    assert useful.auc_with_emotions > useful.auc_controls + 0.2 and useful.value.low > 0
    useless = monitoring_value(y, controls + y[:, None] * 2.0, rng.normal(size=(n, 2)), n_boot=200)
    assert useless.value.low < 0.02 and useless.auc_controls > 0.8
    groups = np.repeat(np.arange(n // 4), 4)
    grouped = monitoring_value(y, controls, informative, n_boot=200, groups=groups)
    assert grouped.value.low > 0
    one_class = monitoring_value(np.zeros(20, dtype=int), controls[:20], informative[:20])
    assert "not estimable" in one_class.note and one_class.value.n == 0


def _rows(cond: str, kind: str, strength: float, refuse: list[bool], answer: list[bool], kl: float):
    rows = [{"condition": cond, "cond_kind": kind, "strength": strength, "item_id": f"h{i}", "item_kind": "harmful",
             "refusal_label": "full_refusal" if r else "full_compliance", "kl": kl} for i, r in enumerate(refuse)]
    rows += [{"condition": cond, "cond_kind": kind, "strength": strength, "item_id": f"b{i}", "item_kind": "benign",
              "refusal_label": "full_compliance" if a else "full_refusal", "kl": kl} for i, a in enumerate(answer)]
    return rows


def test_steering_value_compares_at_matched_side_effects():
    t, f = True, False
    rows = pd.DataFrame(
        _rows("none", "none", 0.0, [f, f, f, f], [t, t, t, t], 0.0)
        + _rows("concept:refusal", "concept", 0.1, [t, t, f, f], [t, t, t, t], 0.2)
        + _rows("emotion:calm", "emotion", 0.1, [t, t, t, f], [t, t, t, t], 0.25)  # within 1.5 x 0.2
        + _rows("emotion:afraid", "emotion", 0.1, [t, t, t, t], [t, t, t, t], 0.9)  # better, but too costly
    )
    sv = steering_value(rows, n_boot=200)
    assert sv.best_control == "concept:refusal@+0.1" and sv.budget_kl == pytest.approx(0.3)
    assert sv.best_emotion == "emotion:calm@+0.1"
    assert sv.value.value == pytest.approx(0.125) and sv.value.low <= sv.value.value <= sv.value.high
    only_emotions = rows[rows["cond_kind"] != "concept"]
    assert "needs both" in steering_value(only_emotions).note


PRESET = Preset(name="tiny", background=2, per_emotion=4, max_length=40, templates=("story", "dialogue"), n_splits=10,
                n_seeds=3, n_boot=100, limits={"paired": 2, "helpful": 2}, max_new_tokens=3, strength=1.0,
                dose=(-1.0, 0.0, 1.0), dose_prompts=3)


def test_study_runs_resumes_and_reports(tiny_llama, tmp_path: Path):
    keys = {"calm": "calm", "desperate": "desperate"}
    logs: list[str] = []
    res = run_study([ModelPlan("tiny", policy_level="rung 1 (test)")], PRESET, tmp_path / "study", keys=keys,
                    loaded={"tiny": tiny_llama}, log=logs.append)
    r = res.models["tiny"].model_dump()
    assert r["policy_level"] == "rung 1 (test)"
    assert set(r["stability"]["split_half"]) == {"calm", "desperate"}
    assert len(r["modularity"]["matrix"]) == 2 and all(0 <= v["value"] <= 1 for v in r["modularity"]["index"].values())
    mod = r["modularity"]  # the independent emotion judge beside the readout, or the skip
    if mod["judge_status"] == "nade":
        assert set(mod["judge_target"]) == {"calm", "desperate"} and len(mod["judge_matrix"]) == 2
        assert len(mod["judge_matrix"][0]) == 8 == len(mod["judge_emotions"])
    else:
        assert mod["judge_status"].startswith("emotion judge skipped") and not mod["judge_target"]
    assert set(r["causal_influence"]["calm"]) >= {"slope", "wrong_way", "mean_by_strength"}
    assert set(r["verdict"]["criteria"]) == {"refusal_controlled_by_policy_or_controls",
                                             "emotion_moves_style_not_failures", "poor_stability",
                                             "broad_side_effects"}
    for crit in r["verdict"]["criteria"].values():
        assert isinstance(crit["met"], bool) and crit["rule"]
    report = json.loads((tmp_path / "study" / "report.json").read_text())
    assert report["family_note"] and "tiny" in report["models"]
    assert res.report is not None and set(res.report.models) == {"tiny"} and res.report.family_note
    write_study_report(tmp_path / "study", res.report)
    assert "data:image/png;base64" in (tmp_path / "study" / "report.html").read_text()
    again = run_study([ModelPlan("tiny")], PRESET, tmp_path / "study", keys=keys, loaded={"tiny": tiny_llama},
                      log=logs.append)
    assert any("already done" in line for line in logs) and again.models["tiny"].layer == r["layer"]
    back, first = again.models["tiny"], res.models["tiny"]  # read back from result.json as typed results
    assert isinstance(back.stability, StabilityResult) and isinstance(back.modularity, Modularity)
    assert all(isinstance(c, CausalInfluence) for c in back.causal_influence.values())
    assert back.stability.split_half == first.stability.split_half
    assert back.verdict is not None and first.verdict is not None and back.verdict.text == first.verdict.text
    assert back.steering_value.candidates == first.steering_value.candidates
    assert r["overview"]["mean_split_half_cosine"] == pytest.approx(
        np.mean([v["value"] for v in r["stability"]["split_half"].values()]))


def test_study_bad_input(tiny_llama, tmp_path: Path):
    from tests.unit.test_vector_set import make_set

    make_set(tiny_llama, names=("calm", "happy"), layers=(0, 1, 2)).save(tmp_path / "vecs")
    with pytest.raises(StudyError, match="no vector 'desperate'"):
        run_study([ModelPlan("tiny", str(tmp_path / "vecs"))], PRESET, tmp_path / "s",
                  keys={"calm": "calm", "desperate": "desperate"}, loaded={"tiny": tiny_llama})
    with pytest.raises(StudyError, match="too few prompts"):
        run_study([ModelPlan("tiny")], PRESET.model_copy(update={"dose_prompts": 2}), tmp_path / "s",
                  loaded={"tiny": tiny_llama})
    with pytest.raises(StudyError, match="not one of the corpus"):
        run_study([ModelPlan("tiny")], PRESET, tmp_path / "s", keys={"joy": "joyous"})


def test_stability_curve_reads_once_and_matches_the_study_at_each_count(tiny_llama, write_corpus, tmp_path) -> None:
    from emovec.studies.stability.curve import StabilityCurve, stability_curve, write_curve

    names = ["happy", "sad", "angry", "calm"]
    corpus = load_corpus(write_corpus(emotions=tuple(names), per=8, length=24))
    curve = stability_curve(tiny_llama, ["happy", "calm"], names, 1, counts=(6, 4), corpus=corpus, n_splits=10,
                            log=lambda _: None)
    assert [r.per_emotion for r in curve.rows] == [4, 6] and [r.n_stories for r in curve.rows] == [16, 24]
    # a count's figures are the study's own with that many stories (the same stories, read the same way)
    direct = measure_stability(story_activations(tiny_llama, corpus, names, 1, per_emotion=4, max_length=100),
                       ["happy", "calm"], n_splits=10, n_seeds=3)
    for k in ("happy", "calm"):
        assert curve.rows[0].split_half[k].value == pytest.approx(direct.split_half[k].value, abs=1e-5)
        assert direct.split_half_null is not None
        assert curve.rows[0].split_half_null[k].high == pytest.approx(direct.split_half_null[k].high, abs=1e-5)
    assert "stories/emotion" in curve.table() and len(curve.table().splitlines()) == 3
    path = write_curve(curve, tmp_path / "curve.json")
    assert json.loads(path.read_text())["rows"][1]["per_emotion"] == 6
    back = StabilityCurve.model_validate_json(path.read_text())  # the derived means are written and recomputed
    assert back.rows[1].mean_split_half == pytest.approx(json.loads(path.read_text())["rows"][1]["mean_split_half"])
    with pytest.raises(StudyError, match="--overwrite"):
        write_curve(curve, path)
    with pytest.raises(StudyError, match="at least 4"):
        stability_curve(tiny_llama, ["happy"], names, 1, counts=(2, 6), corpus=corpus)
    with pytest.raises(StudyError, match="not in the pool"):
        stability_curve(tiny_llama, ["proud"], names, 1, corpus=corpus)
    with pytest.raises(StudyError, match="out of range"):
        stability_curve(tiny_llama, ["happy"], names, 99, corpus=corpus)
