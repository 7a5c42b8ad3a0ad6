"""emovec: functional emotion vectors for language models.

The public API: load a model (``load_model``), read its residual stream (``capture``), extract and validate
emotion (or any concept) vectors (``extract_emotion_vectors``, ``extract_concepts``, ``validate``), steer and
monitor it while it runs (``steering`` with a ``SteeringSpec`` of ``SteerTerm``s, ``monitoring`` into a
``MonitorTrace``, or both at once in ``generate``, which returns a ``Generation``), and export a steering for
llama.cpp (``export_gguf``). Subpackages hold the rest: ``emovec.evaluation`` (suites, judges, sweeps),
``emovec.finetune`` (LoRA fine-tuning regimes), ``emovec.studies`` (one folder per study, among them the drift
study and its ``DriftMonitor``, and the registry ``emovec study list`` reads), ``emovec.reports`` (shared plots and
HTML), ``emovec.models`` (the architecture table).

Example:
    >>> import emovec
    >>> lm = emovec.load_model()
    >>> ext = emovec.extract_emotion_vectors(lm, emovec.load_corpus(), topics=4, token_start=10)
    >>> spec = emovec.SteeringSpec([emovec.SteerTerm("calm", 0.1)], layers=[ext.vectors.default_layer])
    >>> emovec.generate(lm, ["How are you?"], vectors=ext.vectors, spec=spec, monitor=True).replies
"""

from emovec._version import __version__
from emovec.capture import CaptureResult, TokenSelection, capture
from emovec.corpus import Corpus, CorpusRecord, load_corpus
from emovec.corpus_writer import generate_corpus
from emovec.data import emotions
from emovec.errors import (
    ActivationError,
    ArtifactExistsError,
    CorpusError,
    EmovecError,
    IncompatibleVectorsError,
    IntegrityError,
    LayerError,
    MissingPackageError,
    UnknownModelError,
)
from emovec.export import export_gguf
from emovec.generation import Generation, generate
from emovec.models import BUILTIN_MODELS, DEFAULT_MODEL, LoadedModel, ModelSource, load_model, wrap_model
from emovec.models.prompts import format_prompt
from emovec.monitor import MonitorTrace, monitoring
from emovec.steer import SteeringSpec, SteerTerm, steering
from emovec.validation import ValidationReport, validate
from emovec.vectors import (
    METHODS,
    EmotionExtraction,
    LabeledActivations,
    Provenance,
    VectorSet,
    extract_concepts,
    extract_emotion_vectors,
)

__all__ = [
    "ActivationError",
    "ArtifactExistsError",
    "BUILTIN_MODELS",
    "CaptureResult",
    "Corpus",
    "CorpusError",
    "CorpusRecord",
    "DEFAULT_MODEL",
    "EmotionExtraction",
    "EmovecError",
    "Generation",
    "IncompatibleVectorsError",
    "IntegrityError",
    "LabeledActivations",
    "LayerError",
    "LoadedModel",
    "METHODS",
    "MissingPackageError",
    "ModelSource",
    "MonitorTrace",
    "Provenance",
    "SteerTerm",
    "SteeringSpec",
    "TokenSelection",
    "UnknownModelError",
    "ValidationReport",
    "VectorSet",
    "__version__",
    "capture",
    "emotions",
    "export_gguf",
    "extract_concepts",
    "extract_emotion_vectors",
    "format_prompt",
    "generate",
    "generate_corpus",
    "load_corpus",
    "load_model",
    "monitoring",
    "steering",
    "validate",
    "wrap_model",
]
