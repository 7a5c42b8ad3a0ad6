"""Research studies built on emovec, one folder each (``policy_dominance``, ``stability``, ``drift``,
``cross_model``, ``robustify``, ``paper``): a study's run, typed results, measures, report and template live
together in its folder, and study folders never import each other. What they share (the preset and result bases,
the result write, the key vectors, the default models, the layer rules, the error base) and the registry that
finds every study, here or in another package (entry-point group ``emovec.studies``), are in ``_kit``.

Example:
    >>> from emovec.studies import studies
    >>> print(sorted(studies()))
"""

from emovec.studies._kit import (
    BUILTIN_STUDIES,
    DEFAULT_MODELS,
    ENTRY_POINT_GROUP,
    KEY_VECTORS,
    Study,
    StudyError,
    StudyPreset,
    StudyResult,
    StudyRun,
    extraction_layer,
    get_study,
    pool_emotions,
    register,
    studies,
    study_layer,
    study_vectors,
    write_result,
)

__all__ = [
    "BUILTIN_STUDIES",
    "DEFAULT_MODELS",
    "ENTRY_POINT_GROUP",
    "KEY_VECTORS",
    "Study",
    "StudyError",
    "StudyPreset",
    "StudyResult",
    "StudyRun",
    "extraction_layer",
    "get_study",
    "pool_emotions",
    "register",
    "studies",
    "study_layer",
    "study_vectors",
    "write_result",
]
