"""A sweep's identity: the content hash of its vectors, the settings that change a reply (part of every row's
key) and ``OUT/sweep.json``, checked so a folder never mixes sweeps of two models or two vector sets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from emovec._files import atomic_write
from emovec._version import __version__
from emovec.errors import ArtifactExistsError
from emovec.evaluation.judges.emotion import emotion_judge_error, load_emotion_judge
from emovec.evaluation.judges.model_judge import ModelJudge
from emovec.evaluation.suites import Suite
from emovec.evaluation.sweep_config import SweepConfig
from emovec.models.loading import LoadedModel
from emovec.vectors.vector_set import VectorSet


def vectors_hash(vectors: VectorSet) -> str:
    """A short content hash of the directions (stable across re-extractions that give the same vectors)."""
    return hashlib.sha256(vectors.directions.float().numpy().tobytes()).hexdigest()[:16]


def settings_of(config: SweepConfig, lm: LoadedModel, vectors: VectorSet, digest: str) -> dict[str, Any]:
    """What, besides the unit, changes a reply: part of every row's key."""
    limits = {"limits": dict(sorted(config.limits.items()))} if config.limits else {}
    return {"model": lm.source.fingerprint, "vectors": vectors.provenance.model.fingerprint,
            "vectors_hash": digest,
            "limit": config.limit, **limits,
            "max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "scope": config.scope,
            "prompt_template": config.prompt_template}


def sweep_manifest(config: SweepConfig, lm: LoadedModel, vectors: VectorSet, digest: str, suites: dict[str, Suite],
              judge: ModelJudge | None) -> dict[str, Any]:
    return {"emovec_version": __version__, "model": lm.source.model_dump(),
            "vectors": {"path": config.vectors, "provenance": vectors.provenance.model_dump(mode="json"),
                        "hash": digest},
            "suites": {k: s.provenance() for k, s in suites.items()},
            "judge": judge.name if judge is not None else None,
            "emotion_judge": "nade" if load_emotion_judge() is not None else emotion_judge_error(),
            "config": config.model_dump(mode="json")}


def check_manifest(out: Path, manifest: dict[str, Any], force: bool) -> None:
    path = out / "sweep.json"
    if path.exists() and not force:
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("model", {}).get("fingerprint") != manifest["model"]["fingerprint"]:
            raise ArtifactExistsError(f"{out} holds a sweep of another model ({old['model'].get('name')}); "
                                      "choose another --out, or pass --force to add to it anyway")
        if old.get("vectors", {}).get("hash") != manifest["vectors"].get("hash"):
            raise ArtifactExistsError(f"{out} holds a sweep made with other vectors; choose another --out "
                                      "or pass --force")
    atomic_write(path, json.dumps(manifest, indent=1, default=str))
