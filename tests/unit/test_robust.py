"""Optimising a steering direction through a frozen tiny model: the loss terms move the way they should,
meaning pins the direction, checkpoints resume to the same result, and bad input gets clear errors."""

from __future__ import annotations

import pytest
import torch

from emovec.corpus import load_corpus
from emovec.robust.optimize import RobustConfig, RobustError, optimize_direction
from emovec.steer import differentiable_steering
from emovec.vectors import extract_emotion_vectors


@pytest.fixture
def setup(tiny_llama, write_corpus):  # type: ignore[no-untyped-def]
    vectors = extract_emotion_vectors(tiny_llama, load_corpus(write_corpus()), token_start=2, denoise_variance=None,
                                      show_progress=False).vectors.with_recommended_layer(1)
    return tiny_llama, vectors


def test_differentiable_steering_passes_gradients_to_the_direction_and_removes_its_hook(tiny_llama) -> None:
    v = torch.nn.Parameter(torch.randn(tiny_llama.d_model))
    ids = torch.tensor([[2, 5, 6, 7]])
    plain = tiny_llama.model(input_ids=ids).logits.detach()
    with differentiable_steering(tiny_llama, 1, v, 3.0):
        tiny_llama.model(input_ids=ids).logits.sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    torch.testing.assert_close(tiny_llama.model(input_ids=ids).logits, plain)


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
    assert torch.isclose(vs.directions[0, 0].norm(), vectors.vector("calm", 1).norm(), rtol=1e-4)


def test_an_interrupted_run_resumes_to_the_same_direction(setup, tmp_path) -> None:
    lm, vectors = setup
    cfg = RobustConfig(source="sad", out=tmp_path / "a", steps=4, lr=0.1, save_every=2, strength=0.5)
    whole = optimize_direction(lm, vectors, cfg, n_prompts=8)
    half = optimize_direction(lm, vectors, cfg.model_copy(update={"out": tmp_path / "b", "steps": 2}), n_prompts=8)
    assert len(half.history) == 2
    rest = optimize_direction(lm, vectors, cfg.model_copy(update={"out": tmp_path / "b"}), n_prompts=8)
    assert len(rest.history) == 4
    torch.testing.assert_close(rest.direction, whole.direction, rtol=1e-4, atol=1e-5)


def test_bad_input_gets_clear_errors(setup, tmp_path) -> None:
    lm, vectors = setup
    with pytest.raises(ValueError, match="loss is undefined"):
        RobustConfig(source="calm", out=tmp_path, safety=0, retain=0, meaning=0, modularity=0)
    with pytest.raises(KeyError, match="bliss"):
        optimize_direction(lm, vectors, RobustConfig(source="bliss", out=tmp_path / "x"))
    with pytest.raises(RobustError, match="diverged"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "d", steps=3, lr=1e30,
                                                     strength=1.0), n_prompts=8)
    optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "c", steps=1), n_prompts=8)
    with pytest.raises(RobustError, match="other settings"):
        optimize_direction(lm, vectors, RobustConfig(source="calm", out=tmp_path / "c", steps=2, lr=0.5), n_prompts=8)
