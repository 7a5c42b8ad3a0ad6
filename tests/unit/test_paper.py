"""The paper's experiments: Bradley-Terry scores from soft pairwise outcomes, order-bias cancelling, steering
restricted to chosen tokens, and the intensity and preference read-outs on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovec.metrics import Estimate
from emovec.steer import SteeringError, masked_steering
from emovec.studies.paper import preferences as prefs
from emovec.studies.paper.run import intensity, preference_correlations
from tests.builders import make_set


def test_bradley_terry_recovers_known_scores_and_intervals_cover_them() -> None:
    true = np.array([2.0, 1.0, 0.0, -1.0, -2.0])
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    outcome = np.array([1 / (1 + np.exp(-(true[i] - true[j]))) for i, j in pairs])
    scores = prefs.bradley_terry(5, pairs, outcome, ridge=1e-6)
    assert np.allclose(scores, true - true.mean(), atol=1e-2)
    low, high = prefs.bt_intervals(5, pairs, outcome, n_boot=50)
    assert np.all(low - 0.05 <= scores) and np.all(scores <= high + 0.05) and (high - low).max() < 1.0


def test_two_orders_cancel_a_bias_for_the_first_option() -> None:
    pairs = [(0, 1), (0, 2)]
    p_first = np.array([0.9, 0.7, 0.8, 0.6])  # prompts (0,1), (1,0), (0,2), (2,0): a +0.3 bias for option A
    assert prefs.pair_outcomes(p_first) == pytest.approx([0.6, 0.6])
    assert [(c.first, c.second) for c in prefs.both_orders(pairs)] == [(0, 1), (1, 0), (0, 2), (2, 0)]
    planned = prefs.plan_pairs(10, 3, seed=1)
    assert len(set(planned)) == len(planned) and all(i < j for i, j in planned)
    assert {i for p in planned for i in p} == set(range(10))


def test_masked_steering_changes_only_the_masked_positions_and_what_follows(tiny_llama) -> None:
    ids = torch.tensor([[2, 5, 6, 7, 8, 9]])
    mask = torch.zeros((1, 6), dtype=torch.bool)
    mask[0, 3] = True
    plain = tiny_llama.model(input_ids=ids).logits
    with masked_steering(tiny_llama, 1, torch.ones(tiny_llama.d_model), 5.0, mask):
        steered = tiny_llama.model(input_ids=ids).logits
    diff = (steered - plain).abs().sum(-1)[0]
    assert torch.all(diff[:3] < 1e-5) and diff[3] > 1e-3  # earlier positions untouched (causal)
    with pytest.raises(SteeringError, match="mask"), masked_steering(tiny_llama, 1, torch.ones(tiny_llama.d_model), 1.0,
                                                                 mask[:, :3]):
        tiny_llama.model(input_ids=ids)


def test_intensity_and_preference_readouts_have_their_baselines(tiny_llama) -> None:
    vectors = make_set(tiny_llama, names=("afraid", "calm", "sad", "happy", "angry"), layers=(1,))
    rows = intensity(tiny_llama, vectors, 1, n_random=10)
    assert [r.id for r in rows][:3] == ["dose", "fall", "late"] and len(rows) == 8
    assert all(-1 <= r.rho.value <= 1 and r.rho_min <= r.rho.value <= r.rho_max and 0 <= r.random_p95 <= 1
               for r in rows)
    # the interval of a mean correlation stays inside [-1, 1] (Fisher's z), and 3 paraphrases are called too few
    assert all(-1 <= r.rho.low <= r.rho.value <= r.rho.high <= 1 and r.rho.n == 3 and r.too_few_paraphrases
               for r in rows)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=30)
    read = np.stack([scores + 0.1 * rng.normal(size=30), rng.normal(size=30)], 1)
    pr, null95 = preference_correlations(read, scores, ["blissful", "noise"], n_perm=200)
    assert pr[0].r.value > 0.95 and abs(pr[1].r.value) < null95 < 0.6
    assert pr[0].r.low < pr[0].r.value < pr[0].r.high
    assert pr[1].r.low < 0 < pr[1].r.high  # noise: the interval holds 0


def _e(value: float, low: float = float("nan"), high: float = float("nan"), n: int = 10) -> Estimate:
    return Estimate(value=value, low=low, high=high, n=n, method="test")


def test_report_renders_all_four_experiments_and_escapes_snippets(tmp_path) -> None:
    from emovec.studies.paper import EmotionPreference, PaperResult, TemplateResult
    from emovec.studies.paper.report import write_paper_report

    result = PaperResult(
        model="tiny", layer=1,
        intensity=[TemplateResult(id="dose", emotion="afraid", opposite="calm", rho=_e(0.8, 0.1, 0.95, 3),
                                  rho_min=0.7, rho_max=0.9, opposite_rho=-0.2, random_p95=0.4)],
        top_text={"afraid": {"top": ["<i>scary</i>"], "bottom": ["nice"], "top_source": ["tweets"],
                             "bottom_source": ["chitchat"]}}, text_sources={"vader": 10, "chitchat": 5},
        activities=["swim", "dig"],
        activity_scores=[_e(0.5, 0.2, 0.8), _e(-0.5, -0.8, -0.2)],
        preference_r=[EmotionPreference(emotion="afraid", r=_e(-0.6), shift=_e(-0.3)),
                      EmotionPreference(emotion="happy", r=_e(0.7), shift=_e(0.4))],
        shuffled_r_p95=0.3, steering_r=_e(1.0, 1.0, 1.0), random_shifts=[-0.05, 0.02],
        activity_shifts={"afraid": [-0.4, -0.2], "happy": [0.3, 0.5]}, findings=["intensity: <b>one</b> line"])
    page = write_paper_report(tmp_path, result).read_text()
    assert "intensity: &lt;b&gt;one&lt;/b&gt; line" in page  # the findings, escaped
    assert "<td>swim</td><td>-0.400</td><td>+0.300</td>" in page  # per-activity shifts, most preferred first
    assert "2 random directions of the same norm shifted the log-odds by -0.050 to +0.020" in page
    assert "hostile\nn/a" in page or "hostile n/a" in page  # the paper's reference pair, absent from this set
    for section in ("1. Intensity", "2. Top-activating", "3. Activity", "4. Steering"):
        assert section in page
    assert "&lt;i&gt;scary&lt;/i&gt;" in page and "2 of 2 emotions" in page and "data:image/png" in page
    assert "(tweets)" in page and "(chitchat)" in page and "5 BYU Chit-Chat Challenge messages" in page


def test_top_text_reads_every_installed_human_source_and_skips_a_missing_one(tiny_llama, monkeypatch) -> None:
    from emovec.studies.paper import run as paper
    from emovec.validation import external
    from emovec.validation.external import ExternalDataMissing, Snippet
    from tests.builders import make_set

    chat = tuple(Snippet("chitchat", f"the cat sat on the {w} red book", float("nan"))
                 for w in ("old", "new", "big", "small", "dark"))
    monkeypatch.setattr(external, "chitchat_messages", lambda: chat)

    def missing() -> tuple[Snippet, ...]:
        raise ExternalDataMissing("not installed; get it with: pip install it")

    monkeypatch.setattr(external, "vader_snippets", missing)
    pool, counts, notes = paper.human_text(3, 4)
    assert counts == {"chitchat": 4} and len(pool) == 4 and len(notes) == 1 and "vader skipped" in notes[0]
    vs = make_set(tiny_llama, names=("calm", "sad"), layers=(1,))
    tops = paper.top_text(tiny_llama, vs, 1, pool, k=2)
    assert set(tops) == {"calm", "sad"} and tops["calm"]["top_source"] == ["chitchat", "chitchat"]
    read = paper.readouts(tiny_llama, vs, [x.text for x in pool], 1)
    assert tops["calm"]["top"][0] == pool[int(read[:, 0].argmax())].text
    assert tops["sad"]["bottom"][0] == pool[int(read[:, 1].argmin())].text
    assert paper.top_text(tiny_llama, vs, 1, []) == {}


def test_random_directions_are_steered_like_the_emotions(tiny_llama, monkeypatch) -> None:
    from emovec.studies.paper import preferences
    from emovec.studies.paper.run import steering_shifts
    from tests.builders import make_set

    # the tiny word-level tokenizer has no "A"/"B": answer with two words it has
    vocab = tiny_llama.tokenizer.get_vocab()
    monkeypatch.setattr(preferences, "_option_tokens", lambda lm: (vocab["red"], vocab["blue"]))
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    acts = ["water and tea", "bread and a book", "money for work", "a warm dark phone"]
    got = steering_shifts(tiny_llama, vs, 1, acts, ["calm", "afraid"], partners=1, strength=0.5, n_random=3)
    randoms = got.random_means()
    assert set(got.emotions) == {"calm", "afraid"} and len(randoms) == 3 and len(set(randoms)) == 3
    assert all(a.shape == (4,) and np.isfinite(a).all() for a in [*got.emotions.values(), *got.random])
    calm = got.shift("calm")  # the mean over activities, with its interval over them
    assert calm.n == 4 and calm.low <= calm.value <= calm.high
    assert calm.value == pytest.approx(got.emotions["calm"].mean())
    again = steering_shifts(tiny_llama, vs, 1, acts, ["calm"], partners=1, strength=0.0, n_random=0)
    assert np.abs(again.emotions["calm"]).max() < 1e-6  # strength 0 moves nothing


def test_the_whole_study_runs_on_a_tiny_model_and_states_its_findings_from_its_figures(tiny_llama, monkeypatch,
                                                                                       tmp_path) -> None:
    from emovec.studies.paper import PaperPreset, PaperResult, preferences, run_paper_study
    from emovec.studies.paper import run as paper
    from emovec.studies.paper.report import write_paper_report

    vocab = tiny_llama.tokenizer.get_vocab()
    monkeypatch.setattr(preferences, "_option_tokens", lambda lm: (vocab["red"], vocab["blue"]))
    acts = ["water and tea", "bread and a book", "money for work", "a warm dark phone", "the cat sat", "a red train"]
    monkeypatch.setattr(paper, "activities", lambda: acts)
    vs = make_set(tiny_llama, names=("afraid", "calm", "sad", "happy", "angry", "blissful"), layers=(1,))
    preset = PaperPreset(name="tiny", snippets=0, chat=0, partners=2, steer_emotions=4, steer_partners=2,
                         n_random=8, n_perm=20, steer_random=3)
    result = run_paper_study(tiny_llama, vs, preset)
    assert len(result.intensity) == 8 and all(-1 <= t.rho.low <= t.rho.value <= t.rho.high <= 1
                                              for t in result.intensity)
    assert len(result.activity_scores) == 6 and len(result.preference_r) == 6 and len(result.random_shifts) == 3
    steered = [e for e in result.preference_r if e.shift is not None]
    assert len(steered) == 4 and set(result.activity_shifts) == {e.emotion for e in steered}
    assert all(len(v) == 6 for v in result.activity_shifts.values())
    assert all(e.shift.low <= e.shift.value <= e.shift.high for e in steered if e.shift is not None)
    assert result.seconds is not None and result.seconds > 0 and result.top_text == {}
    # the findings are read from the figures: change the figures and the lines change with them
    assert [f.split(":")[0] for f in result.findings] == ["intensity", "preferences", "steering"]
    n_rise = sum(t.rises for t in result.intensity)
    assert result.findings[0].startswith(f"intensity: in {n_rise} of 8 templates")
    all_rise = result.model_copy(deep=True)
    for t in all_rise.intensity:
        t.rho, t.random_p95 = _e(0.9, 0.8, 1.0, 5), 0.3
    assert paper.findings(all_rise)[0].startswith("intensity: in 8 of 8 templates")
    assert "does not show" not in paper.findings(all_rise)[0]
    assert "blissful r" in result.findings[1] and "(paper +0.71)" in result.findings[1]
    page = write_paper_report(tmp_path, result)
    assert PaperResult.model_validate_json((tmp_path / "paper.json").read_text()) == result and page.exists()


def test_a_schema_1_result_reads_back_with_its_intervals_as_estimates() -> None:
    import json
    from pathlib import Path

    from emovec.studies.paper.run import PaperResult

    old = json.loads((Path(__file__).parent / "golden" / "paper_schema1.json").read_text())
    new = PaperResult.model_validate(old)
    assert new.schema_version == 2 and len(new.intensity) == len(old["intensity"])
    for t, o in zip(new.intensity, old["intensity"], strict=True):
        assert (t.rho.value, t.rho.low, t.rho.high) == (o["rho"], o["rho_low"], o["rho_high"])
    for e, o in zip(new.preference_r, old["preference_r"], strict=True):
        assert (e.r.value, e.r.low, e.r.high) == (o["r"], o["r_low"], o["r_high"])
        assert (e.shift is None) == (o["shift"] is None)
    assert [s.low for s in new.activity_scores] == old["activity_low"]
    assert new.steering_r is None or new.steering_r.value == old["steering_r"]
