from __future__ import annotations

import json

import pytest
import torch

from emovec.errors import ArtifactExistsError, IncompatibleVectorsError, IntegrityError, LayerError
from emovec.vectors import VectorSet
from tests.builders import make_model, make_set, make_tokenizer


def test_roundtrip(tiny_llama, tmp_path):
    vs = make_set(tiny_llama).with_recommended_layer(2)
    vs.save(tmp_path / "v")
    back = VectorSet.load(tmp_path / "v")
    assert back.names == vs.names and back.layers == vs.layers and back.recommended_layer == 2
    assert torch.equal(back.directions, vs.directions) and torch.equal(back.center, vs.center)
    assert back.provenance == vs.provenance
    meta = json.loads((tmp_path / "v" / "vectors.json").read_text())
    assert meta["schema_version"] == 1 and meta["provenance"]["token_selection"]["start"] == 1
    assert meta["provenance"]["model"]["fingerprint"] == tiny_llama.source.fingerprint


def test_never_overwrites_silently(tiny_llama, tmp_path):
    vs = make_set(tiny_llama)
    vs.save(tmp_path)
    with pytest.raises(ArtifactExistsError, match="overwrite"):
        vs.save(tmp_path)
    (2 * vs).save(tmp_path, overwrite=True)
    assert torch.allclose(VectorSet.load(tmp_path).directions, 2 * vs.directions)


def test_corrupt_files_are_detected(tiny_llama, tmp_path):
    make_set(tiny_llama).save(tmp_path)
    tensors = tmp_path / "vectors.safetensors"
    data = tensors.read_bytes()
    tensors.write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match="truncated"):
        VectorSet.load(tmp_path)
    tensors.write_bytes(data)
    VectorSet.load(tmp_path)
    meta = tmp_path / "vectors.json"
    meta.write_text(meta.read_text()[:-20])
    with pytest.raises(IntegrityError, match="not valid JSON"):
        VectorSet.load(tmp_path)


def test_newer_schema_and_missing_files(tiny_llama, tmp_path):
    with pytest.raises(FileNotFoundError, match="emovec extract"):
        VectorSet.load(tmp_path)
    make_set(tiny_llama).save(tmp_path)
    meta = json.loads((tmp_path / "vectors.json").read_text())
    meta["schema_version"] = 99
    (tmp_path / "vectors.json").write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="Upgrade emovec"):
        VectorSet.load(tmp_path)


def test_geometry_and_lookup(tiny_llama):
    vs = make_set(tiny_llama)
    sims = vs.cosine_similarity(2)
    assert sims.shape == (4, 4)
    torch.testing.assert_close(sims.diagonal(), torch.ones(4))
    nearest = vs.nearest("calm", layer=2, k=3)
    assert len(nearest) == 3 and "calm" not in [n for n, _ in nearest]
    assert [s for _, s in nearest] == sorted([s for _, s in nearest], reverse=True)
    # a raw vector equal to a direction finds that direction first
    assert vs.nearest(vs.vector("afraid", 2), layer=2, k=1)[0][0] == "afraid"
    with pytest.raises(KeyError, match="Did you mean 'calm'"):
        vs.index("clam")
    with pytest.raises(LayerError, match="has layers"):
        vs.vector("calm", 1)


def test_arithmetic_and_select(tiny_llama):
    a, b = make_set(tiny_llama, seed=0), make_set(tiny_llama, seed=1)
    torch.testing.assert_close((a + b).directions, a.directions + b.directions)
    torch.testing.assert_close((a - b).directions, a.directions - b.directions)
    torch.testing.assert_close((0.5 * a).directions, a.directions * 0.5)
    torch.testing.assert_close((-a).directions, -a.directions)
    assert (a + b).provenance.method == "test|add"
    sub = a.select(["happy", "calm"], [2])
    assert sub.names == ("happy", "calm") and sub.layers == (2,)
    torch.testing.assert_close(sub.vector("calm", 2), a.vector("calm", 2))
    torch.testing.assert_close(a.unit().directions.norm(dim=-1), torch.ones(2, 4))
    with pytest.raises(IncompatibleVectorsError, match="different names"):
        a + a.select(["calm"])


def test_compatibility_checks(tiny_llama, tiny):
    vs = make_set(tiny_llama)
    vs.check_compatible(tiny_llama)  # the model it was made from: no error, no warning (warnings are errors here)
    if tiny.source.fingerprint != tiny_llama.source.fingerprint:
        with pytest.raises(IncompatibleVectorsError, match="force=True"):
            vs.check_compatible(tiny)
        with pytest.warns(UserWarning, match="used anyway"):
            vs.check_compatible(tiny, force=True)
    wide = VectorSet(names=("x",), layers=(0,), directions=torch.zeros(1, 1, 64), mean_norm=torch.ones(1),
                     provenance=vs.provenance)
    with pytest.raises(IncompatibleVectorsError, match="width 64"):
        wide.check_compatible(tiny_llama, force=True)


def test_a_different_model_of_the_same_shape_is_refused_unless_forced(tiny_llama):
    from emovec import wrap_model

    other = wrap_model(make_model("llama", seed=1), make_tokenizer(), name="tiny-llama-b")
    assert (other.d_model, other.n_layers) == (tiny_llama.d_model, tiny_llama.n_layers)
    assert other.source.fingerprint != tiny_llama.source.fingerprint
    vs = make_set(tiny_llama)
    made, loaded = tiny_llama.source.fingerprint, other.source.fingerprint
    with pytest.raises(IncompatibleVectorsError, match=rf"made from 'tiny-llama' \(weights {made}\).*"
                                                       rf"'tiny-llama-b' \(weights {loaded}\).*pass force=True"):
        vs.check_compatible(other)
    with pytest.warns(UserWarning) as caught:
        vs.check_compatible(other, force=True)
    assert len(caught) == 1
    assert str(caught[0].message).endswith("used anyway because force=True") and loaded in str(caught[0].message)
    assert caught[0].filename == __file__  # the warning points at the caller, not at emovec


def test_shape_validation(tiny_llama):
    vs = make_set(tiny_llama)
    with pytest.raises(ValueError, match="n_layers"):
        VectorSet(names=("a",), layers=(0,), directions=torch.zeros(2, 1, 4), mean_norm=torch.ones(1),
                  provenance=vs.provenance)
