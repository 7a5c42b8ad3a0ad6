"""A sweep's identity: the content hash of its vectors, the settings that change a reply (part of every row's
key) and ``OUT/sweep.json``, checked so a folder never mixes sweeps of two models or two vector sets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from emovec._files import atomic_write
from emovec._version import __version__
from emovec.errors import ArtifactExistsError
from emovec.evaluation.judges.emotion import emotion_judge_error, load_emotion_judge
from emovec.evaluation.judges.model_judge import ModelJudge
from emovec.evaluation.suites import Suite
from emovec.evaluation.sweep_config import SweepConfig
from emovec.evaluation.sweep_refusal import RefusalJudgeRecord, refusal_judge_record
from emovec.models.loading import LoadedModel, ModelSource
from emovec.vectors.vector_set import Provenance, VectorSet


class SuiteRecord(BaseModel):
    """Where a suite's prompts came from."""

    suite: str
    source: str
    licence: str
    n: int


class VectorsRecord(BaseModel):
    """The vector set a sweep steered with: its folder, provenance and content hash."""

    path: str
    provenance: Provenance
    hash: str


class SweepManifest(BaseModel):
    """``OUT/sweep.json``: what a sweep ran (model, vectors, suites, judges, the whole config) and, when the model
    judge could not be reached, its status. ``refusal_judge`` says which judge filled ``refusal_label`` (None in
    manifests written before it was recorded)."""

    emovec_version: str
    model: ModelSource
    vectors: VectorsRecord
    suites: dict[str, SuiteRecord]
    judge: str | None
    emotion_judge: str | None
    config: SweepConfig
    judge_status: str | None = None
    refusal_judge: RefusalJudgeRecord | None = None

    def judge_line(self) -> str:
        """The model judge's status in words."""
        return self.judge_status or (f"configured: {self.judge}" if self.judge else "not configured")

    def write(self, out: Path) -> None:
        atomic_write(out / "sweep.json", self.model_dump_json(indent=1))

    @classmethod
    def read(cls, out: Path) -> SweepManifest:
        """The manifest of the sweep in ``out``; a clear error when there is none or it is from another version."""
        path = out / "sweep.json"
        if not path.is_file():
            raise ArtifactExistsError(f"{out} holds no sweep (no sweep.json): run the sweep first")
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ArtifactExistsError(f"{path} is not a sweep manifest this emovec reads ({str(exc)[:200]}); rerun "
                                      "the sweep into a new folder") from exc


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
                   judge: ModelJudge | None) -> SweepManifest:
    return SweepManifest(
        emovec_version=__version__, model=lm.source,
        vectors=VectorsRecord(path=config.vectors, provenance=vectors.provenance, hash=digest),
        suites={k: SuiteRecord(**s.provenance()) for k, s in suites.items()},
        judge=judge.name if judge is not None else None,
        emotion_judge="nade" if load_emotion_judge() is not None else emotion_judge_error(), config=config,
        refusal_judge=refusal_judge_record(config.refusal_judge))


def _check_refusal_judge(out: Path, old: dict[str, Any], manifest: SweepManifest) -> None:
    """Refuse to mix rows whose ``refusal_label`` two refusal judges filled (a manifest without the key: rules)."""
    before = (old.get("refusal_judge") or {}).get("method", "rules")
    now = manifest.refusal_judge.method if manifest.refusal_judge is not None else "rules"
    if before != now:
        raise ArtifactExistsError(f"{out} holds a sweep judged with refusal_judge {before!r}, this config says "
                                  f"{now!r}; set refusal_judge: {before} to continue it, choose another --out, or "
                                  "pass --force")


def check_manifest(out: Path, manifest: SweepManifest, force: bool) -> None:
    """Refuse to add to a folder holding a sweep of another model or other vectors (unless ``force``), then write
    ``manifest``. The old file is read as plain JSON, so a sweep of an older emovec is still recognised."""
    path = out / "sweep.json"
    if path.exists() and not force:
        old: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if old.get("model", {}).get("fingerprint") != manifest.model.fingerprint:
            raise ArtifactExistsError(f"{out} holds a sweep of another model ({old['model'].get('name')}); "
                                      "choose another --out, or pass --force to add to it anyway")
        if old.get("vectors", {}).get("hash") != manifest.vectors.hash:
            raise ArtifactExistsError(f"{out} holds a sweep made with other vectors; choose another --out "
                                      "or pass --force")
        _check_refusal_judge(out, old, manifest)
    manifest.write(out)
