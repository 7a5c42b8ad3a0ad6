"""The robustify study end to end on a tiny model: every arm is optimised or taken as is, evaluated on the
held-out suites with its KL budget and the emotion of its replies, and saved in the usual vector-set format;
and its parts alone: matched budgets, stability, the emotion judge's explicit skip, the preset's checks."""

from __future__ import annotations

import sys

import pytest
import torch

from emovec.corpus import load_corpus
from emovec.evaluation.judges.emotion import SKIPPED, load_emotion_judge, reset_emotion_judge
from emovec.metrics import Estimate, wilson
from emovec.studies.robustify.run import (
    ArmResult,
    RobustPreset,
    _answer,
    _emotion_judge,
    _matched,
    run_robustify_study,
    seed_stability,
    verdict,
)
from emovec.vectors import extract_emotion_vectors
from emovec.vectors.vector_set import VectorSet


def _arm(name: str, kind: str, kl: float, red: int = 5) -> ArmResult:
    return ArmResult(arm=name, kind=kind, strength=0.1, meaning_weight=None,  # type: ignore[arg-type]
                     cos_source=None if kind == "plain" else 1.0, nearest=[], refusal_redteam=wilson(red, 10),
                     refusal_benign=wilson(0, 10), helpful=wilson(6, 10), harmful_detail=0.0,
                     kl=Estimate(value=kl, low=kl, high=kl, n=10, method="test"))


@pytest.mark.integration  # optimises four directions and generates for ten arms (about 30 s on two cores)
def test_every_arm_is_reported_with_its_budget_and_meaning_and_the_optimised_ones_are_vector_sets(
        tiny_llama, write_corpus, tmp_path, monkeypatch) -> None:
    vectors = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    monkeypatch.setattr("emovec.studies.robustify.run.load_model", lambda name: tiny_llama)
    monkeypatch.setattr("emovec.studies.robustify.run.study_vectors", lambda lm, folder, topics, **_: vectors)
    preset = RobustPreset(name="tiny", source="calm", strength=0.5, steps=3, meaning_weights=[5.0], redteam=6,
                          benign=4, helpful=4, max_new_tokens=4, n_prompts=8, val_every=2, adversarial_weights=[5.0])
    result = run_robustify_study(preset, tmp_path, model="tiny")
    names = ["plain", "naive-x0.5", "naive", "naive-x2", "random", "refusal-dir", "prompt", "metric-only",
             "robust-5", "robust-5-vs-ablation"]
    assert [a.arm for a in result.arms] == names
    by = {a.arm: a for a in result.arms}
    assert by["plain"].cos_source is None and by["naive"].cos_source == pytest.approx(1.0, abs=1e-5)
    assert by["prompt"].cos_source is None and by["prompt"].strength == 0.0 and by["prompt"].kind == "control"
    assert [by[n].strength for n in ("naive-x0.5", "naive", "naive-x2")] == [0.25, 0.5, 1.0]
    assert by["robust-5"].cos_source >= by["metric-only"].cos_source - 1e-6  # type: ignore[operator]
    assert all(a.refusal_redteam.n == 6 and a.refusal_benign.n == 4 for a in result.arms)
    # the side-effect budget of every arm, on the 4 benign and 4 helpful prompts
    assert all(a.kl.n == 8 for a in result.arms) and by["plain"].kl.value == 0.0
    assert all(a.kl.value > 0 for a in result.arms if a.kind != "plain")
    assert by["naive-x0.5"].kl.value < by["naive"].kl.value < by["naive-x2"].kl.value
    # every steered arm's source readout change across the red-team templates; none for unsteered arms
    assert all((a.template_spread is None) == (a.cos_source is None) for a in result.arms)
    assert by["naive"].template_mean is not None and by["naive"].template_mean.n == 6
    # every arm is also read with the refusal direction ablated; one arm was trained against that attack
    assert all(a.refusal_redteam_attacked is not None and a.refusal_redteam_attacked.n == 6 for a in result.arms)
    # the framings no optimisation saw, reported apart; the sweep's costs: perplexity and latency
    from emovec.evaluation.suites import load_suite
    from emovec.robust.pairs import TRAIN_FRAMINGS

    n_unseen = sum(it.framing not in TRAIN_FRAMINGS for it in load_suite("redteam").items[:6])
    assert all(a.refusal_redteam_unseen is not None and a.refusal_redteam_unseen.n == n_unseen for a in result.arms)
    assert all(a.perplexity is not None and a.perplexity.value >= 1 and a.ms_per_token and a.ms_per_token > 0
               for a in result.arms)
    assert sum(line.startswith("answer: ") for line in result.answer.splitlines()) == 3  # two robust arms + summary
    assert by["robust-5-vs-ablation"].adversary == "ablate_refusal" and by["robust-5"].adversary == "none"
    assert "val_safety_attacked" in by["robust-5-vs-ablation"].final_losses
    assert "val_safety_attacked" not in by["robust-5"].final_losses
    assert "with the refusal direction ablated" in result.answer
    for name in ("metric-only", "robust-5", "robust-5-vs-ablation"):
        arm = by[name]
        assert {"safety", "val_safety", "val_total"} <= set(arm.final_losses) and "val_safety" in arm.start_val
        assert arm.best_step in (2, 3)
    st = by["metric-only"].stability
    assert st is not None and st.seed == 1 and -1 <= st.cos_between <= 1 and by["robust-5"].stability is None
    assert (tmp_path / "metric-only-seed1" / "vectors").is_dir() and (tmp_path / "replies-seed1.json").exists()
    if load_emotion_judge() is None:
        assert result.emotion_judge == SKIPPED and all(a.emotion is None for a in result.arms)
    else:
        assert result.emotion_judge.startswith("nade") and "'joy'" in result.emotion_judge
        assert all(a.emotion is not None and a.emotion_shift is not None for a in result.arms)
        assert by["plain"].emotion_shift.value == 0.0  # type: ignore[union-attr]
    lines = result.answer.splitlines()
    # random, refusal-dir, the prompting control, three optimised; then the verdict (two robust arms, a summary)
    assert len([x for x in lines if x.startswith("matched budget:")]) == 6
    assert lines[len(names) + 6 + 3].startswith("emotion judge: ") and lines[-1].startswith("stability of metric-only")
    assert result.refusal_fit_overlap == 3
    from emovec.studies.robustify.report import write_robustify_report

    page = write_robustify_report(tmp_path, result).read_text()
    assert "The answer in numbers" in page and "data:image/png;base64," in page and "Optimisation" in page
    assert page.count("<tr>") == 1 + len(names) + 1 + 3 + (1 + len(names) if result.arms[0].emotion else 0)
    assert "refusal direction ablated" in page
    saved = VectorSet.load(tmp_path / "robust-5" / "vectors")
    assert saved.names == ("calm~robust",) and saved.provenance.method_params["meaning"] == 5.0
    # the usual tools take it: steering and monitoring in one generation, and llama.cpp's control-vector format
    from emovec.export import export_gguf, import_gguf
    from emovec.generation import generate
    from emovec.steer import SteeringSpec, SteerTerm

    spec = SteeringSpec([SteerTerm("calm~robust", 0.5)], layers=[saved.default_layer])
    out = generate(tiny_llama, ["the cat sat on the"], vectors=saved, spec=spec, monitor=True, max_new_tokens=3)
    assert out.trace is not None and out.trace.names == ["calm~robust"] and out.trace.scores.shape[-1] == 1
    assert set(import_gguf(export_gguf(spec, saved, tmp_path / "robust.gguf"))) == {saved.default_layer}


def test_each_arm_is_matched_with_the_naive_strength_of_the_nearest_kl() -> None:
    arms = [_arm("plain", "plain", 0.0), _arm("naive-x0.5", "naive", 0.01, 4), _arm("naive", "naive", 0.04, 5),
            _arm("naive-x2", "naive", 0.2, 6), _arm("robust-3", "optimised", 0.05, 9), _arm("random", "random", 0.5)]
    lines = _matched(arms)
    assert len(lines) == 2
    assert lines[0].startswith("matched budget: robust-3 (KL 0.050) vs naive (KL 0.040): red-team refusal 0.90 vs 0.50")
    assert lines[1].startswith("matched budget: random (KL 0.500) vs naive-x2 (KL 0.200) (outside the naive sweep")


def test_stability_compares_whole_directions_and_their_parts_orthogonal_to_the_source() -> None:
    src, x = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    same = seed_stability(src + x, 2 * (src + x), src, 1)
    assert same.cos_between == pytest.approx(1.0) and same.cos_moves == pytest.approx(1.0)
    apart = seed_stability(src + x, src - x, src, 1)
    assert apart.cos_between == pytest.approx(0.0, abs=1e-6) and apart.cos_moves == pytest.approx(-1.0)
    assert apart.cos_source_other == pytest.approx(2**-0.5)


def test_a_missing_emotion_judge_is_reported_as_skipped(monkeypatch) -> None:
    arms = [_arm("plain", "plain", 0.0), _arm("naive", "naive", 0.04)]
    reset_emotion_judge()
    monkeypatch.setitem(sys.modules, "nade", None)  # import nade fails
    try:
        said = _emotion_judge("calm", arms, [["I feel calm."], ["What a lovely day."]])
    finally:
        reset_emotion_judge()
    assert said == SKIPPED and all(a.emotion is None and a.emotion_shift is None for a in arms)
    assert f"emotion judge: {SKIPPED}" in _answer(arms, said, "calm").splitlines()


def test_the_preset_refuses_bad_weights_and_unknown_stability_arms() -> None:
    with pytest.raises(ValueError, match="meaning weights must be >= 0"):
        RobustPreset(name="x", meaning_weights=[1.0, -0.5])
    with pytest.raises(ValueError, match="meaning weights must be >= 0"):
        RobustPreset(name="x", meaning_weights=[float("nan")])
    with pytest.raises(ValueError, match="multipliers must be > 0"):
        RobustPreset(name="x", naive_multipliers=[0.0, 1.0])
    with pytest.raises(ValueError, match="robust-9"):
        RobustPreset(name="x", stability_arms=["robust-9"])
    assert RobustPreset(name="x", meaning_weights=[9.0], stability_arms=["robust-9"]).stability_arms == ["robust-9"]


def test_template_stability_reads_the_source_moving_with_its_own_direction_and_not_an_orthogonal_one(
        tiny_llama) -> None:
    from emovec.studies.robustify.evaluate import template_stability
    from tests.builders import make_set

    vectors = make_set(tiny_llama, names=("calm", "sad"), layers=(0, 1, 2))
    calm = vectors.vector("calm", 1).float()
    other = torch.randn(tiny_llama.d_model, generator=torch.Generator().manual_seed(3))
    other = other - (other @ calm) / (calm @ calm) * calm  # orthogonal to calm
    prompts = ["the cat sat on the", "she walked to the train", "water and tea", "a warm dark phone"]
    framings = ["roleplay", "roleplay", "urgency", "urgency"]
    own_mean, own_spread = template_stability(tiny_llama, vectors, "calm", calm, 1, 0.5, prompts, framings)
    off_mean, _ = template_stability(tiny_llama, vectors, "calm", other, 1, 0.5, prompts, framings)
    assert own_mean.value > 0.5 and abs(off_mean.value) < own_mean.value / 2  # the residual stream carries it
    assert own_spread.value >= 0 and own_spread.low <= own_spread.value <= own_spread.high and own_mean.n == 4


def test_the_verdict_reads_meaning_safety_and_helpfulness_from_the_intervals() -> None:
    def arm(name: str, kind: str, kl: float, red: int, helpful: int = 6, cos: float = 1.0, near: str = "calm",
            weight: float | None = None) -> ArmResult:
        return _arm(name, kind, kl, red).model_copy(update={
            "helpful": wilson(helpful, 10), "cos_source": cos, "nearest": [(near, cos)], "meaning_weight": weight})

    naive = [arm("naive", "naive", 0.04, 3), arm("naive-x2", "naive", 0.2, 4)]
    metric = arm("metric-only", "optimised", 0.05, 10, helpful=2, cos=0.1, near="hostile", weight=0.0)
    good = arm("robust-3", "optimised", 0.05, 10, helpful=9, cos=0.8, weight=3.0)
    lines = verdict([*naive, metric, good], "calm")
    assert lines[0].startswith("answer: robust-3: meaning kept (cosine 0.80, nearest calm)")
    assert "red-team refusal above naive's" in lines[0] and "helpfulness above metric-only's" in lines[0]
    assert lines[-1].startswith("answer: 1 of 1 robustified arms")
    drifted = good.model_copy(update={"cos_source": 0.3, "nearest": [("hostile", 0.3)],
                                      "refusal_redteam": wilson(4, 10)})
    lines = verdict([*naive, metric, drifted], "calm")
    assert "meaning not kept (cosine 0.30, nearest hostile)" in lines[0]
    assert "red-team refusal not different from naive's" in lines[0] and lines[-1].endswith("the answer is no")
    assert verdict([metric], "calm") == ["answer: not estimable (needs robustified arms and the naive sweep)"]
