"""Studies built on extraction, steering and evaluation: stability, modularity, causal influence and the
policy-dominance study."""

from emovec.studies.effects import (
    CausalInfluence,
    Modularity,
    influence_from_values,
    modularity_from_rows,
    refusal_dose_response,
    reply_readouts,
)
from emovec.studies.incremental import MonitoringValue, SteeringValue, monitoring_value, steering_value
from emovec.studies.policy_dominance import (
    DEFAULT_MODELS,
    KEY_VECTORS,
    PRESETS,
    ModelPlan,
    ModelResult,
    Preset,
    StudyError,
    StudyReport,
    run_model,
    run_study,
)
from emovec.studies.stability import StabilityResult, corpus_stability, measure_stability, story_activations

__all__ = [
    "DEFAULT_MODELS",
    "KEY_VECTORS",
    "PRESETS",
    "CausalInfluence",
    "ModelPlan",
    "ModelResult",
    "StudyReport",
    "Modularity",
    "MonitoringValue",
    "Preset",
    "StabilityResult",
    "SteeringValue",
    "StudyError",
    "corpus_stability",
    "influence_from_values",
    "modularity_from_rows",
    "monitoring_value",
    "refusal_dose_response",
    "reply_readouts",
    "run_model",
    "run_study",
    "measure_stability",
    "steering_value",
    "story_activations",
]
