"""Optimising a steering direction through a frozen tiny model: the loss terms move the way they should,
meaning pins the direction, continuations vary per prompt, held-out losses are recorded and pick the result,
checkpoints resume to the same result, and bad input gets clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emovec.corpus import load_corpus
from emovec.errors import LayerError
from emovec.generation import format_prompt
from emovec.robust import losses, step
from emovec.robust.optimize import RobustConfig, RobustError, optimize_direction, preference_pairs
from emovec.robust.pairs import COMPLIANT, REFUSALS, helpful_pairs
from emovec.steer import differentiable_steering
from emovec.vectors import extract_emotion_vectors
from tests.builders import make_set


@pytest.fixture
def setup(tiny_llama, write_corpus):  # type: ignore[no-untyped-def]
    vectors = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    return tiny_llama, vectors


@pytest.fixture
def quick(tiny_llama):  # type: ignore[no-untyped-def]
    """The tiny model with random vectors at every layer (no extraction)."""
    return tiny_llama, make_set(tiny_llama, names=("calm", "sad", "happy", "afraid"), layers=(0, 1, 2))


def test_differentiable_steering_passes_gradients_to_the_direction_and_removes_its_hook(tiny_llama) -> None:
    v = torch.nn.Parameter(torch.randn(tiny_llama.d_model))
    ids = torch.tensor([[2, 5, 6, 7]])
    plain = tiny_llama.model(input_ids=ids).logits.detach()
    with differentiable_steering(tiny_llama, 1, v, 3.0):
        tiny_llama.model(input_ids=ids).logits.sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    torch.testing.assert_close(tiny_llama.model(input_ids=ids).logits, plain)


def test_a_left_padded_pair_batch_reads_what_each_sequence_reads_alone(tiny_llama) -> None:
    lm = tiny_llama
    prompts = ["the cat sat on the", "she walked to the train and waited for her letter again"]
    chosen, rejected = ["the dog", "cried . quietly then ran home"], ["sat", "red blue"]
    got = losses.read(lm, losses.pair_batch(lm, prompts, chosen, rejected), readout_layer=1)
    for k, conts in enumerate((chosen, rejected)):
        for i, (p, c) in enumerate(zip(prompts, conts, strict=True)):
            head = lm.tokenizer(format_prompt(lm, p))["input_ids"]
            tail = lm.tokenizer(c, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                res = lm.model(input_ids=torch.tensor([head + tail]), output_hidden_states=True)
            logp = F.log_softmax(res.logits[0].float(), -1)
            want = sum(float(logp[len(head) - 1 + t, tok]) for t, tok in enumerate(tail))
            assert float(got.seq_logp[k, i]) == pytest.approx(want, abs=1e-4)
            if k == 0:
                torch.testing.assert_close(got.next_logp[i], logp[len(head) - 1], atol=1e-4, rtol=1e-4)
                torch.testing.assert_close(got.hidden[i], res.hidden_states[2][0, len(head) - 1], atol=1e-4,
                                           rtol=1e-4)


def test_continuations_vary_across_prompts_and_the_models_own_compliant_replies_are_rejected(
        quick, tmp_path, monkeypatch) -> None:
    lm, _ = quick
    cfg = RobustConfig(source="calm", out=tmp_path / "a", own_replies=False)
    bad, good, n_own = preference_pairs(lm, cfg, 12)
    assert n_own == 0 and len(bad) == len(good) == 12
    for pairs in (bad, good):
        assert len(set(pairs.chosen)) == len(set(pairs.rejected)) == 8  # every template in use
        assert all(a != b for a, b in zip(pairs.chosen, pairs.chosen[1:], strict=False))  # neighbours differ
    assert set(bad.chosen) == set(REFUSALS) and set(bad.rejected) == set(COMPLIANT)
    assert set(good.chosen) == set(COMPLIANT) and set(good.rejected) == set(REFUSALS)
    again, _, _ = preference_pairs(lm, cfg, 12)
    assert again == bad  # seeded

    # the tiny model's replies are word salad: the judge finds no refusal, so each becomes the rejected side
    own = RobustConfig(source="calm", out=tmp_path / "b")
    bad_own, _, n_own = preference_pairs(lm, own, 6)
    saved = json.loads((tmp_path / "b" / "replies.json").read_text())
    assert n_own == 6 and bad_own.rejected == saved["replies"] and saved["prompts"] == bad_own.prompts
    assert not set(bad_own.rejected) & set(COMPLIANT) and len(set(bad_own.rejected)) > 1
    monkeypatch.setattr("emovec.robust.pairs.generate", lambda *a, **k: pytest.fail("replies were not reused"))
    assert preference_pairs(lm, own, 6)[0] == bad_own


def test_safety_loss_falls_and_a_heavy_meaning_weight_keeps_the_direction_on_its_emotion(setup, tmp_path) -> None:
    lm, vectors = setup
    free = optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "free", steps=8, lr=0.2,
                                                       strength=1.0, meaning=0.0, modularity=0.0, retain=0.0),
                              n_prompts=8)
    assert free.history[-1]["safety"] < free.history[0]["safety"]
    pinned = optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "pinned", steps=8, lr=0.2,
                                                         strength=1.0, meaning=50.0, modularity=0.0, retain=0.0),
                                n_prompts=8)
    assert pinned.history[-1]["cos_source"] > free.history[-1]["cos_source"]
    vs = pinned.vector_set(vectors)
    assert vs.names == ("calm~robust",) and vs.provenance.method.startswith("robustified")
    assert vs.provenance.method_params["meaning"] == 50.0 and "final_safety" in vs.provenance.method_params
    assert "final_val_safety" in vs.provenance.method_params
    assert torch.isclose(vs.directions[0, 0].norm(), vectors.vector("calm", 1).norm(), rtol=1e-4)


def test_the_validation_loss_is_recorded_and_picks_the_returned_direction(quick, tmp_path) -> None:
    lm, vectors = quick
    cfg = RobustConfig(source="calm", out=tmp_path / "v", steps=5, lr=0.3, strength=1.0, val_every=2, layer=1)
    seen: list[torch.Tensor] = []
    res = optimize_direction(lm, vectors, cfg, n_prompts=8,
                             on_step=lambda step, rec: seen.append(torch.tensor(0.0)))
    validated = [int(h["step"]) for h in res.history if "val_safety" in h]
    assert validated == [2, 4, 5]  # every val_every steps and the last
    assert all({"val_safety", "val_retain", "val_modularity", "val_total"} <= set(res.history[s - 1])
               for s in validated)
    assert "val_safety" not in res.history[0] and set(res.start_val) >= {"val_safety", "val_total"}
    assert res.data == {"n_prompts": 8, "train": 6, "val_harmful": 2, "val_benign": 2, "own_replies": 8,
                        "helpful_train": 36, "val_helpful": 12}
    assert all({"val_helpful", "val_stability"} <= set(res.history[s - 1]) for s in validated)
    totals = {s: res.history[s - 1]["val_total"] for s in validated}
    assert res.best_step == min(totals, key=lambda s: totals[s]) and res.chosen["step"] == res.best_step
    assert len(seen) == 5 and not res.stopped_early
    saved = json.loads((tmp_path / "v" / "robust.json").read_text())
    assert saved["history"] == res.history and saved["start_val"] == res.start_val


def test_early_stopping_keeps_the_best_validated_direction_and_stays_stopped(quick, tmp_path, monkeypatch) -> None:
    lm, vectors = quick
    calls = iter(range(100))
    real = step.validate

    def worse_each_time(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = real(*args, **kwargs)
        return out | {"val_total": float(next(calls))}  # the start, then steps 1, 2, ...: never better than step 1

    monkeypatch.setattr(step, "validate", worse_each_time)
    cfg = RobustConfig(source="calm", out=tmp_path / "e", steps=8, lr=0.3, strength=1.0, val_every=1, patience=2,
                       layer=1)
    res = optimize_direction(lm, vectors, cfg, n_prompts=8)
    assert len(res.history) == 3 and res.stopped_early and res.best_step == 1
    first = optimize_direction(lm, vectors, cfg.model_copy(update={"out": tmp_path / "f", "steps": 1, "patience": 0}),
                               n_prompts=8)
    torch.testing.assert_close(res.direction, first.direction)  # the direction after step 1
    again = optimize_direction(lm, vectors, cfg, n_prompts=8)  # resumes: already stopped
    assert len(again.history) == 3 and again.stopped_early
    torch.testing.assert_close(again.direction, res.direction)


def test_an_interrupted_run_resumes_to_the_same_direction(setup, tmp_path) -> None:
    lm, vectors = setup
    cfg = RobustConfig(source="sad", out=tmp_path / "a", steps=4, lr=0.1, save_every=2, val_every=2, strength=0.5)
    whole = optimize_direction(lm, vectors, cfg, n_prompts=8)

    def crash(step: int, record: dict[str, float]) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize_direction(lm, vectors, cfg.model_copy(update={"out": tmp_path / "b"}), n_prompts=8, on_step=crash)
    assert len(json.loads((tmp_path / "b" / "robust.json").read_text())["history"]) == 2
    rest = optimize_direction(lm, vectors, cfg.model_copy(update={"out": tmp_path / "b"}), n_prompts=8)
    assert len(rest.history) == 4 and rest.best_step == whole.best_step
    assert [h.get("val_total") for h in rest.history] == pytest.approx([h.get("val_total") for h in whole.history])
    torch.testing.assert_close(rest.direction, whole.direction, rtol=1e-4, atol=1e-5)


def test_bad_input_gets_clear_errors(setup, tmp_path) -> None:
    lm, vectors = setup
    with pytest.raises(ValueError, match="loss is undefined"):
        RobustConfig(source="calm", out=tmp_path, safety=0, retain=0, meaning=0, modularity=0, helpful=0,
                     stability=0)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        RobustConfig(source="calm", out=tmp_path, meaning=-1.0)
    with pytest.raises(ValueError, match=r"less than or equal to 0\.5"):
        RobustConfig(source="calm", out=tmp_path, val_fraction=0.9)
    with pytest.raises(KeyError, match="bliss"):
        optimize_direction(lm, vectors, RobustConfig(source="bliss", out=tmp_path / "x"))
    with pytest.raises(RobustError, match="only 6 training prompts"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "b", batch=7), n_prompts=8)
    with pytest.raises(RobustError, match=r"diverged at step \d.*last good direction \(after step \d\) is saved"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "d", steps=3, lr=1e30,
                                                     strength=1.0), n_prompts=8)
    from emovec.robust.checkpoint import load_checkpoint

    kept = load_checkpoint(tmp_path / "d")  # the last good state, even when it diverged before the first save
    assert kept is not None and torch.isfinite(kept.tensors["direction"]).all()
    assert all(np.isfinite(h["total"]) for h in kept.meta["history"])
    with pytest.raises(LayerError, match="layer 99"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "l", layer=99), n_prompts=8)
    optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "c", steps=1), n_prompts=8)
    with pytest.raises(RobustError, match="other settings"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "c", steps=2, lr=0.5), n_prompts=8)
    with pytest.raises(RobustError, match="n_prompts"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "c", steps=2), n_prompts=10)


def test_refusal_ablation_removes_the_direction_after_every_block_and_then_its_hooks(tiny_llama) -> None:
    from emovec.models.sites import block_output_hooks
    from emovec.robust.adversary import refusal_ablation

    lm, ids = tiny_llama, torch.tensor([[2, 5, 6, 7]])
    u = torch.randn(lm.d_model)
    seen: list[float] = []
    plain = lm.model(input_ids=ids).logits.detach()
    with refusal_ablation(lm, 3 * u), block_output_hooks(lm, list(range(lm.n_layers)),
                                                         lambda i, h: seen.append(float((h @ u).abs().max()))):
        attacked = lm.model(input_ids=ids).logits.detach()
    assert len(seen) == lm.n_layers and max(seen) < 1e-4  # nothing left along the direction after any block
    assert not torch.allclose(attacked, plain)
    torch.testing.assert_close(lm.model(input_ids=ids).logits, plain)  # hooks removed


def test_the_embedding_attack_stays_in_its_ball_and_raises_the_loss_it_attacks(tiny_llama) -> None:
    from emovec.robust.adversary import embedding_attack, embedding_shift

    lm = tiny_llama
    batch = losses.pair_batch(lm, ["the cat sat on the"] * 2, ["the dog", "cried"], ["sat", "red blue"])
    plain = losses.read(lm, batch, 1)

    def loss(delta: torch.Tensor) -> torch.Tensor:
        with embedding_shift(lm, delta):
            return losses.preference(losses.read(lm, batch, 1), plain, 1.0)

    shape = (int(batch.ids.shape[0]), int(batch.ids.shape[1]))
    radius = 0.5 * float(lm.model.get_input_embeddings().weight.std())
    delta = embedding_attack(lm, loss, shape, epsilon=0.5, steps=4)
    assert delta.shape == (*shape, lm.d_model) and float(delta.abs().max()) <= radius + 1e-6
    with torch.no_grad():
        start = embedding_attack(lm, loss, shape, epsilon=0.5, steps=0)  # the random start, no ascent
        assert float(loss(delta)) > float(loss(start)) and float(loss(delta)) > float(loss(torch.zeros_like(delta)))


@pytest.mark.parametrize("kind", ["ablate_refusal", "embedding"])
def test_an_adversarial_run_records_the_attacked_held_out_safety_and_chooses_by_it(quick, tmp_path, kind) -> None:
    lm, vectors = quick
    cfg = RobustConfig(source="calm", out=tmp_path / kind, steps=3, lr=0.3, strength=1.0, val_every=3, layer=1,
                       adversary=kind, adv_epsilon=0.5)
    res = optimize_direction(lm, vectors, cfg, n_prompts=8)
    last = res.history[-1]
    assert {"val_safety", "val_safety_attacked"} <= set(last) and {"val_safety_attacked"} <= set(res.start_val)
    assert last["val_safety_attacked"] != last["val_safety"]  # the attack changes what the model prefers
    assert res.best_step == 3  # the only validated step: its direction is the one returned
    meaning = 1.0 - float(F.cosine_similarity(res.direction, vectors.vector("calm", 1).float(), dim=0))
    assert last["val_total"] == pytest.approx(last["val_retain"] + last["val_modularity"] + last["val_helpful"]
                                              + last["val_stability"] + last["val_safety_attacked"] + meaning,
                                              abs=1e-4)
    assert res.vector_set(vectors).provenance.method_params["adversary"] == kind


def test_several_directions_at_their_own_layers_train_together_and_save_as_one_vector_set(quick, tmp_path) -> None:
    lm, vectors = quick
    cfg = RobustConfig(source="calm", also=["sad"], layers=[1, 2], out=tmp_path / "k2", steps=3, lr=0.3,
                       strength=1.0, meaning=0.0, val_every=3)
    res = optimize_direction(lm, vectors, cfg, n_prompts=8)
    start = torch.stack([vectors.vector("calm", 1), vectors.vector("sad", 2)]).float()
    assert res.directions.shape == (2, lm.d_model) and res.layers == [1, 2]
    moved = 1 - F.cosine_similarity(res.directions, start, dim=-1)
    assert bool((moved > 1e-4).all())  # both directions got gradients and moved
    with pytest.raises(ValueError, match=r"read \.directions"):
        _ = res.direction
    vs = res.vector_set(vectors)
    assert vs.names == ("calm~robust", "sad~robust") and vs.layers == (1, 2) and vs.recommended_layer == 1
    assert float(F.cosine_similarity(vs.vector("calm~robust", 1).float(), res.directions[0], dim=0)) > 0.9999
    assert float(F.cosine_similarity(vs.vector("sad~robust", 2).float(), res.directions[1], dim=0)) > 0.9999
    torch.testing.assert_close(vs.vector("sad~robust", 1).float(), vectors.vector("sad", 1).float())  # not its layer
    assert vs.provenance.method_params["layer_of"] == "calm~robust: 1, sad~robust: 2"
    again = optimize_direction(lm, vectors, cfg.model_copy(update={"steps": 4}), n_prompts=8)  # resumes [k, d]
    assert len(again.history) == 4 and again.history[:3] == res.history


def test_several_directions_get_clear_errors_for_bad_settings(quick, tmp_path) -> None:
    lm, vectors = quick
    with pytest.raises(ValueError, match="one layer per direction"):
        RobustConfig(source="calm", also=["sad"], layers=[1], out=tmp_path)
    with pytest.raises(ValueError, match="must differ"):
        RobustConfig(source="calm", also=["calm"], out=tmp_path)
    with pytest.raises(ValueError):
        RobustConfig(source="calm", also=["sad", "happy", "afraid", "calm2"], out=tmp_path)  # k <= 4
    with pytest.raises(KeyError, match="hapy"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", also=["hapy"], out=tmp_path / "x", layer=1))


def _reading(seq: list[list[float]], hidden: torch.Tensor, tokens: float = 4.0) -> losses.Reading:
    n = len(seq[0])
    return losses.Reading(torch.tensor(seq), torch.zeros(n, 3), hidden, torch.full((2, n), tokens))


def test_the_helpful_term_counts_only_a_fall_in_the_answers_likelihood_per_token() -> None:
    h = torch.zeros(2, 4)
    plain = _reading([[-8.0, -8.0], [-1.0, -1.0]], h)
    assert float(losses.answer_drop(plain, plain)) == 0.0
    assert float(losses.answer_drop(_reading([[-4.0, -2.0], [-9.0, -9.0]], h), plain)) == 0.0  # raising: no reward
    fell = _reading([[-12.0, -8.0], [-1.0, -1.0]], h)
    assert float(losses.answer_drop(fell, plain)) == pytest.approx((4.0 / 4) / 2)  # one prompt fell 1 nat a token


def test_the_template_term_is_zero_for_an_even_shift_and_grows_with_its_spread() -> None:
    units = torch.eye(4)[:1]  # the source emotion reads dimension 0
    plain = _reading([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], torch.randn(3, 4))
    even = _reading(plain.seq_logp.tolist(), plain.hidden + torch.tensor([0.5, 0.3, 0.0, 0.0]))
    assert float(losses.template_variance(even, plain, units, norm=1.0, strength=0.5)) == pytest.approx(0.0, abs=1e-9)
    spread = plain.hidden.clone()
    spread[:, 0] += torch.tensor([0.0, 0.5, 1.0])
    got = float(losses.template_variance(_reading(plain.seq_logp.tolist(), spread), plain, units, 1.0, 0.5))
    assert got == pytest.approx(float(torch.tensor([0.0, 1.0, 2.0]).var(unbiased=False)), rel=1e-5)


def test_helpful_training_tasks_are_disjoint_from_the_helpful_evaluation_suite() -> None:
    from emovec.evaluation.suites import load_suite

    train = helpful_pairs(0)
    evaluated = {it.prompt.lower() for it in load_suite("helpful").items}
    assert len(train) >= 40 and not evaluated & {p.lower() for p in train.prompts}
    assert all(r in REFUSALS for r in train.rejected) and len(set(train.rejected)) > 1
    assert helpful_pairs(0) == train and helpful_pairs(1).prompts != train.prompts  # seeded order


def test_a_heavy_helpful_weight_keeps_the_helpful_answers_more_likely_than_none(quick, tmp_path) -> None:
    lm, vectors = quick
    runs = {}
    for w in (0.0, 50.0):
        cfg = RobustConfig(source="calm", out=tmp_path / f"h{w:g}", steps=6, lr=0.5, strength=2.0, meaning=0.0,
                           modularity=0.0, retain=0.0, stability=0.0, helpful=w, val_every=3, layer=1)
        runs[w] = optimize_direction(lm, vectors, cfg, n_prompts=8)
    assert "helpful" not in runs[0.0].history[0] and runs[0.0].data["helpful_train"] == 0
    assert "val_helpful" in runs[50.0].history[-1]
    assert runs[50.0].history[-1]["helpful"] < runs[50.0].history[0]["helpful"]
    assert runs[50.0].vector_set(vectors).provenance.method_params["helpful"] == 50.0
