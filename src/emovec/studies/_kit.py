"""What every study shares, and the registry that finds them.

A study is one folder under ``emovec/studies/`` (or a module of another package): its run, typed results,
measures, report and template together, and one ``Study`` entry that names it, states its question, lists its
presets and says how to run it and draw its report. ``emovec study list`` prints every registered study and
``emovec study run NAME`` runs any of them.

Shared here:

- ``StudyPreset`` and ``StudyResult``: the pydantic bases of every preset and every result file (a result
  carries its ``schema_version``; ``write_result`` writes it atomically, NaN kept as NaN);
- ``StudyError``: the base of every study's error;
- ``KEY_VECTORS``, ``DEFAULT_MODELS``: the key emotion vectors and the three packaged models studies read;
- the layer rules: ``study_layer`` (readouts, two thirds of the depth) and ``extraction_layer`` (vectors a study
  extracts itself, half the depth), and ``study_vectors``, which extracts and caches those vectors;
- the registry: ``Study``, ``StudyRun``, ``register``, ``studies`` and ``get_study``. The built-in studies are
  named in ``BUILTIN_STUDIES`` the way a third-party package names its own in the entry-point group
  ``emovec.studies``::

      [project.entry-points."emovec.studies"]
      my-study = "my_package.my_study:STUDY"

Example:
    >>> for study in studies().values():
    ...     print(study.name, study.question)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, model_validator

from emovec._files import atomic_write
from emovec.corpus import load_corpus
from emovec.data import default_corpus_path
from emovec.errors import EmovecError
from emovec.executors import ExecutorOptions
from emovec.metrics import Estimate
from emovec.models.loading import LoadedModel
from emovec.vectors.extract import extract_emotion_vectors
from emovec.vectors.vector_set import VectorSet

log = logging.getLogger(__name__)


class StudyError(EmovecError, ValueError):
    """A study that cannot run as asked (every study's own error derives from it)."""


class StudyPreset(BaseModel):
    """A named set of a study's settings (``quick``, ``full``, ...); each study adds its own fields."""

    name: str


class StudyResult(BaseModel):
    """A study's typed result file: written once (``write_result``), read back by everything after it with
    ``model_validate_json``. ``schema_version`` rises when a field changes meaning or shape."""

    schema_version: int = 1

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """An older file's fields in this schema's shape; a result with older schemas overrides it."""
        return data

    @model_validator(mode="before")
    @classmethod
    def _read_older(cls, data: Any) -> Any:
        """A file of an older schema (every such file names its version) read through ``upgrade``."""
        current = cls.model_fields["schema_version"].default
        if isinstance(data, dict) and data.get("schema_version", current) < current:
            return cls.upgrade(data)
        return data


# Said by every interval rebuilt from an older result file, which kept only its bounds (not its count or method).
FROM_OLDER_FILE = "read from an older result file"


def older_estimate(value: float | None, low: float | None, high: float | None, method: str,
                   n: int = 0) -> Estimate | None:
    """An interval an older result file kept as loose numbers, as a ``metrics.Estimate`` (``None`` stays ``None``;
    a missing bound is NaN); its method says it was read back.

    Example:
        >>> older_estimate(0.6, 0.1, 1.1, "Student-t interval over the paraphrases").method
        'Student-t interval over the paraphrases (read from an older result file)'
    """
    if value is None:
        return None
    nan = float("nan")
    return Estimate(value=value, low=nan if low is None else low, high=nan if high is None else high, n=n,
                    method=f"{method} ({FROM_OLDER_FILE})")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.floating | np.integer):
        return value.item()
    return str(value)  # paths and the like


def write_result(path: str | Path, result: BaseModel) -> Path:
    """Write ``result`` as indented JSON, atomically (NaN figures stay NaN, so they read back as floats).

    Example:
        >>> write_result("runs/study/report.json", report)
        PosixPath('runs/study/report.json')
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, json.dumps(result.model_dump(), indent=1, default=_json_default))


# The key vectors of the safety studies, each by the emotion word of the 171 that stands for it.
KEY_VECTORS: dict[str, str] = {
    "concern": "worried", "eagerness to help": "eager", "self-doubt": "self-critical",
    "calm": "calm", "desperate": "desperate", "afraid": "afraid",
}
# The packaged models a study reads by default: a base, an instruction-tuned and a safety-tuned model.
DEFAULT_MODELS: tuple[str, ...] = ("gemma-3-270m", "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct")

READOUT_DEPTH = 2 / 3  # where the paper reads emotions
EXTRACTION_DEPTH = 0.5  # the demo's nested topic-held-out choice on SmolLM2 was 14 of 30
EXTRACTION_MAX_LENGTH = 192  # tokens read per story (the recipe reads from token 50 on)


def study_layer(lm: LoadedModel, vectors: VectorSet | None = None) -> int:
    """The layer a study reads: the vector set's default layer, else two thirds of the depth.

    Example:
        >>> study_layer(lm)  # 20 for a 30-layer model
    """
    if vectors is not None:
        return vectors.default_layer
    return min(lm.n_layers - 1, round(READOUT_DEPTH * lm.n_layers))


def extraction_layer(lm: LoadedModel) -> int:
    """The layer a study extracts its own vectors at: half the depth (at least 1)."""
    return max(1, round(EXTRACTION_DEPTH * lm.n_layers))


def pool_emotions(corpus_emotions: Sequence[str], keys: Sequence[str], background: int, seed: int) -> list[str]:
    """The key emotions and ``background`` others drawn with ``seed``: every emotion read, whose mean centres
    the vectors.

    Example:
        >>> pool_emotions(load_corpus().emotions(), list(KEY_VECTORS.values()), 10, seed=0)[:2]
        ['worried', 'eager']
    """
    rest = [e for e in corpus_emotions if e not in keys]
    rng = np.random.default_rng(seed)
    return [*keys, *[rest[i] for i in sorted(rng.choice(len(rest), size=min(background, len(rest)), replace=False))]]


def study_vectors(lm: LoadedModel, folder: str | Path, *, topics: int = 4, layer: int | None = None,
                  show_progress: bool = False) -> VectorSet:
    """All 171 emotion vectors at ``layer`` (default ``extraction_layer``) from ``topics`` topics of the shipped
    corpus by emovec's recipe, cached in ``folder`` (reused when it holds vectors of this model);
    ``show_progress`` reports the ``capture`` stage.

    Example:
        >>> vectors = study_vectors(lm, "runs/drift/vectors", topics=4)
    """
    path = Path(folder)
    if (path / "vectors.json").exists():
        cached = VectorSet.load(path)
        cached.check_compatible(lm)
        return cached
    chosen = layer if layer is not None else extraction_layer(lm)
    lm.check_layers([chosen])
    ext = extract_emotion_vectors(lm, load_corpus(default_corpus_path()), layers=[chosen], topics=topics,
                                  max_length=EXTRACTION_MAX_LENGTH, show_progress=show_progress)
    vectors = ext.vectors.with_recommended_layer(chosen)
    vectors.save(path)
    return vectors


def _silent(_line: str) -> None:
    return None


@dataclass(frozen=True)
class StudyRun:
    """What ``emovec study run`` hands any study: the preset, the output folder and the common options. A study
    reads those it needs and says which others it ignores.

    Attributes:
        preset: the chosen preset (one of the study's ``presets``).
        out: the study's output folder.
        models: models to study (none: the study's defaults).
        vectors: a vector set folder, for studies that read a given set.
        seed: the study's seed.
        executor: where batches run (``None``: this process).
        say: gets a line as each part starts.
        show_progress: report stages (a bar in a terminal, else one line each).
    """

    preset: StudyPreset
    out: Path
    models: tuple[str, ...] = ()
    vectors: Path | None = None
    seed: int = 0
    executor: ExecutorOptions | None = None
    say: Callable[[str], None] = _silent
    show_progress: bool = False


R = TypeVar("R", bound=StudyResult)


@dataclass(frozen=True)
class Study(Generic[R]):
    """One study, as the registry and the command line see it.

    Attributes:
        name: the command-line name (``emovec study run NAME``), lower case with dashes.
        question: the question the study answers, in one sentence.
        presets: its presets by name, ``quick`` first.
        run: runs it and writes its result file into ``StudyRun.out``.
        report: draws the result's page into a folder and returns its path (``None``: no page).
        answer: the lines the command prints when it is done (default: none).
        result: the result's type (reads a result file back).

    Example:
        >>> STUDY = Study(name="tiny", question="Does it run?", presets={"quick": TinyPreset(name="quick")},
        ...               run=run_tiny, result=TinyResult)
    """

    name: str
    question: str
    presets: Mapping[str, StudyPreset]
    run: Callable[[StudyRun], R]
    result: type[R]
    report: Callable[[Path, R], Path] | None = None
    answer: Callable[[R], list[str]] = field(default=lambda _r: [])

    def preset(self, name: str) -> StudyPreset:
        """The preset called ``name``; an error naming the others."""
        if name not in self.presets:
            raise StudyError(f"study {self.name!r} has no preset {name!r}; choose {' or '.join(self.presets)}")
        return self.presets[name]


ENTRY_POINT_GROUP = "emovec.studies"
# The built-in studies, named the way an entry point names a third-party one ("module:attribute").
BUILTIN_STUDIES: tuple[str, ...] = (
    "emovec.studies.policy_dominance.run:STUDY",
    "emovec.studies.stability.run:STUDY",
    "emovec.studies.drift.study:STUDY",
    "emovec.studies.cross_model.run:STUDY",
    "emovec.studies.robustify.run:STUDY",
    "emovec.studies.paper.run:STUDY",
)
_REGISTERED: dict[str, Study[Any]] = {}


def register(study: Study[Any]) -> Study[Any]:
    """Add a study to the registry (a later one of the same name replaces it); returns it.

    Example:
        >>> register(STUDY)
    """
    _REGISTERED[study.name] = study
    return study


def _load(reference: str) -> Study[Any]:
    module, _, attribute = reference.partition(":")
    found = getattr(import_module(module), attribute)
    if not isinstance(found, Study):
        raise StudyError(f"{reference} is not an emovec Study (it is a {type(found).__name__})")
    return found


def studies() -> dict[str, Study[Any]]:
    """Every study: the built-in ones, those third-party packages register in the entry-point group
    ``emovec.studies``, then those added with ``register``. A plug-in that fails to load is logged and left out.

    Example:
        >>> sorted(studies())[:2]
        ['cross-model', 'drift']
    """
    found = {s.name: s for s in (_load(ref) for ref in BUILTIN_STUDIES)}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            study = _load(point.value)
        except Exception as exc:  # a broken plug-in must not take the built-in studies down with it
            log.warning("study plug-in %s (%s) did not load: %s", point.name, point.value, exc)
            continue
        found[study.name] = study
    return {**found, **_REGISTERED}


def get_study(name: str) -> Study[Any]:
    """The registered study called ``name``; an error listing the others.

    Example:
        >>> get_study("policy-dominance").question
    """
    every = studies()
    if name not in every:
        raise StudyError(f"no study called {name!r}; registered: {', '.join(sorted(every))}")
    return every[name]
