"""Small file helpers shared across layers: the cache directory, hashing and atomic writes (a reader never sees
half a file)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import platformdirs

_CHUNK = 1 << 22


def cache_root() -> Path:
    """emovec's cache directory: ``$EMOVEC_CACHE`` if set, else the platform's user cache folder.

    That folder is ``~/.cache/emovec`` on Linux (``$XDG_CACHE_HOME`` moves it), ``~/Library/Caches/emovec`` on
    macOS and ``%LOCALAPPDATA%\\emovec\\Cache`` on Windows.

    Example:
        >>> cache_root() / "models"
        PosixPath('/home/me/.cache/emovec/models')
    """
    override = os.environ.get("EMOVEC_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("emovec", appauthor=False))


def sha256_of(paths: Iterable[str | Path], sink: str | Path | None = None) -> str:
    """SHA-256 of the concatenation of ``paths``; also writes the concatenation to ``sink`` if given."""
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(sink, "wb")) if sink is not None else None
        for path in paths:
            with open(path, "rb") as handle:
                while block := handle.read(_CHUNK):
                    digest.update(block)
                    if out is not None:
                        out.write(block)
    return digest.hexdigest()


def temp_path(target: str | Path) -> Path:
    """A sibling temporary name for ``target`` (same directory, so ``os.replace`` is atomic).

    The name carries the process id and a random suffix, so two writers (processes or threads) never share one.
    """
    path = Path(target)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write(target: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``target`` through a synced temporary file and an atomic rename."""
    path = Path(target)
    tmp = temp_path(path)
    with open(tmp, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path
