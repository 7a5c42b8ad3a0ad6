"""The robustify study: directions optimised (``emovec.robust``) for safety under red-teaming and for keeping their
emotional meaning, against naive emotion steering, controls and metric-only directions at a matched side-effect
budget, on held-out suites. ``run`` runs it, ``evaluate`` reads each arm's replies, ``results`` holds the preset
and the typed results, ``report`` draws its page."""

from emovec.studies.robustify.results import PRESETS, ArmResult, RobustifyError, RobustifyResult, RobustPreset
from emovec.studies.robustify.run import STUDY, run_robustify_study

__all__ = ["PRESETS", "STUDY", "ArmResult", "RobustPreset", "RobustifyError", "RobustifyResult",
           "run_robustify_study"]
