"""The policy-dominance study: how the stability, modularity and causal influence of key emotion vectors change
from base to instruction-tuned to safety-tuned models, and when emotion steering and monitoring stop adding safety
value over non-emotional controls. ``run`` runs it, ``results`` holds its typed results and verdict, ``effects``
and ``incremental`` its measures, ``report`` its page and ``ladder`` the within-family ladder it can study.

Example:
    >>> from emovec.studies.policy_dominance import ModelPlan, run_study
    >>> result = run_study([ModelPlan("smollm2-135m-instruct")], "quick", "runs/study")
"""

from emovec.studies.policy_dominance.effects import (
    CausalInfluence,
    Modularity,
    influence_from_values,
    modularity_from_rows,
    refusal_dose_response,
    reply_readouts,
)
from emovec.studies.policy_dominance.incremental import (
    MonitoringValue,
    SteeringValue,
    monitoring_value,
    steering_value,
)
from emovec.studies.policy_dominance.report import write_study_report
from emovec.studies.policy_dominance.results import ModelResult, StudyReport
from emovec.studies.policy_dominance.run import (
    PRESETS,
    STUDY,
    ModelPlan,
    Preset,
    StudyOutcome,
    run_model,
    run_study,
)

__all__ = [
    "PRESETS",
    "STUDY",
    "CausalInfluence",
    "ModelPlan",
    "ModelResult",
    "Modularity",
    "MonitoringValue",
    "Preset",
    "SteeringValue",
    "StudyOutcome",
    "StudyReport",
    "influence_from_values",
    "modularity_from_rows",
    "monitoring_value",
    "refusal_dose_response",
    "reply_readouts",
    "run_model",
    "run_study",
    "steering_value",
    "write_study_report",
]
