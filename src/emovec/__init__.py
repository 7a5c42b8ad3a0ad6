"""emovec: functional emotion vectors for language models.

The public API: load a model, read its residual stream, extract and validate emotion (or any concept)
vectors. Subpackages hold the rest (``emovec.reports`` for plots and HTML, ``emovec.models`` for the
architecture table).
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
from emovec.generation import Generation, format_prompt, generate
from emovec.models import BUILTIN_MODELS, DEFAULT_MODEL, LoadedModel, ModelSource, load_model, wrap_model
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
