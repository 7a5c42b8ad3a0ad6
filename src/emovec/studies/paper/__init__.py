"""The paper's own validation experiments (Sofroniew et al. 2026) on any model with its vector set: intensity
templates, top-activating human text, activity preferences (``preferences``) and steering that moves them.
``run`` runs them, ``results`` holds the preset, the typed result and its findings, ``report`` draws the page."""

from emovec.studies.paper.results import (
    MIN_PARAPHRASES,
    PRESETS,
    EmotionPreference,
    PaperError,
    PaperPreset,
    PaperResult,
    TemplateResult,
    findings,
)
from emovec.studies.paper.run import STUDY, run_paper_study

__all__ = ["MIN_PARAPHRASES", "PRESETS", "STUDY", "EmotionPreference", "PaperError", "PaperPreset", "PaperResult",
           "TemplateResult", "findings", "run_paper_study"]
