"""Validation of an emotion vector set: topic-held-out classification with a permutation baseline, the corpus
diagnostic, geometry, implicit emotion, logit lens, and valence on human-rated text."""

from emovec.validation.crossval import READOUTS, Readout, Recipe, cross_validated_ranks, permutation_baseline
from emovec.validation.diagnostic import PairCosines, pair_cosines
from emovec.validation.external import ExternalDataMissing, nrc_polarity, vader_snippets, valence_axis
from emovec.validation.geometry import ImplicitResult, classify, implicit_emotion, logit_lens, pca_geometry
from emovec.validation.validator import (
    ExternalChecks,
    LayerCV,
    NestedCV,
    PermutationBaseline,
    ValidationReport,
    stories_from_corpus,
    validate,
)

__all__ = [
    "READOUTS",
    "ExternalChecks",
    "ExternalDataMissing",
    "ImplicitResult",
    "LayerCV",
    "NestedCV",
    "PairCosines",
    "PermutationBaseline",
    "Readout",
    "Recipe",
    "ValidationReport",
    "classify",
    "cross_validated_ranks",
    "implicit_emotion",
    "logit_lens",
    "nrc_polarity",
    "pair_cosines",
    "pca_geometry",
    "permutation_baseline",
    "stories_from_corpus",
    "validate",
    "vader_snippets",
    "valence_axis",
]
