from __future__ import annotations

import dataclasses

import pytest
import torch

from emovec.capture import capture
from emovec.errors import IntegrityError
from emovec.export import additions, export_gguf, export_lm_eval, hookpoint, import_gguf
from emovec.steer import SteeringError, SteeringSpec, SteerTerm, steering
from tests.builders import make_set


def test_gguf_round_trip_reproduces_the_steering(tiny_llama, tmp_path):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    spec = SteeringSpec([SteerTerm("calm", 0.3), SteerTerm("afraid", -0.1)], layers={1: 1.0, 2: 0.5})
    path = export_gguf(spec, vs, tmp_path / "calm.gguf")
    back = import_gguf(path, vs)
    expected = additions(spec, vs)
    assert set(back) == {1, 2}
    for layer in back:
        torch.testing.assert_close(back[layer], expected[layer])
    # steering with the imported raw vectors (strength 1 per unit of norm) moves activations the same way
    texts = ["the cat sat on the mat"]
    with steering(tiny_llama, spec, vs):
        a = capture(tiny_llama, texts, [2]).means
    raw = SteeringSpec([SteerTerm(back[1], float(back[1].norm() / vs.mean_norm[1]))], layers=[1])
    raw2 = SteeringSpec([SteerTerm(back[2], float(back[2].norm() / vs.mean_norm[2]))], layers=[2])
    with steering(tiny_llama, raw, vs), steering(tiny_llama, raw2, vs):
        b = capture(tiny_llama, texts, [2]).means
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_lm_eval_file(tiny_llama, tmp_path):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    spec = SteeringSpec([SteerTerm("calm", 0.2)], layers=[1])
    path = export_lm_eval(spec, vs, tmp_path / "calm.pt")
    config = torch.load(path, weights_only=True)  # as lm-evaluation-harness reads it
    assert list(config) == ["layers.1"] and hookpoint(vs, 1) == "layers.1"
    entry = config["layers.1"]
    assert entry["action"] == "add" and entry["steering_coefficient"] == 1.0 and entry["bias"] is None
    torch.testing.assert_close(entry["steering_vector"], additions(spec, vs)[1])
    # the module lm-eval hooks is the block emovec steers
    assert dict(tiny_llama.model.base_model.named_modules())["layers.1"] is tiny_llama.blocks[1]


def test_export_refusals(tiny_llama, tmp_path):
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    with pytest.raises(SteeringError, match="layer 0"):
        export_gguf(SteeringSpec([SteerTerm("calm", 0.2)], [0]), vs, tmp_path / "x.gguf")
    with pytest.raises(SteeringError, match="only 'add'"):
        export_gguf(SteeringSpec([SteerTerm("calm", 0.2, "clamp")], [1]), vs, tmp_path / "x.gguf")
    with pytest.raises(SteeringError, match="unconditional"):
        export_lm_eval(SteeringSpec([SteerTerm("calm", 0.2)], [1], scope="generated"), vs, tmp_path / "x.pt")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(IntegrityError):
        import_gguf(bad)
    assert not (tmp_path / "x.gguf").exists()


def test_a_family_without_an_architecture_row_has_no_hookpoint_and_says_what_to_add(tiny_llama) -> None:
    vs = make_set(tiny_llama, layers=(0, 1, 2))
    source = vs.provenance.model.model_copy(update={"family": "falcon"})
    other = dataclasses.replace(vs, provenance=vs.provenance.model_copy(update={"model": source}))
    with pytest.raises(SteeringError, match=r"'falcon' has no row in emovec\.models\.architectures\.ARCHITECTURES"):
        hookpoint(other, 1)
