"""The stability study: split-half cosine, its null and the held-out readout AUC of the key vectors at several
counts of stories per emotion. The measures themselves are ``emovec.validation.stability`` (the policy-dominance
study reads them too)."""

from emovec.studies.stability.curve import CountRow, StabilityCurve, stability_curve, write_curve
from emovec.studies.stability.run import PRESETS, STUDY, StabilityPreset, run_stability_study

__all__ = ["PRESETS", "STUDY", "CountRow", "StabilityCurve", "StabilityPreset", "run_stability_study",
           "stability_curve", "write_curve"]
