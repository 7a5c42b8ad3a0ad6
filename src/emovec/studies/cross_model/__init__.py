"""The cross-model emotion basis study: is there a small shared basis of emotion-related directions whose readings
predict tone-masked safety failures on a model it never saw? ``data`` reads each model, ``fit`` leaves each out in
turn, ``transfer`` steers along carried directions, ``run`` runs it all and ``report`` draws its page."""

from emovec.studies.cross_model.fit import AUC, CrossModelResult, HeldOut, PairAlignment, TransferShift
from emovec.studies.cross_model.run import PRESETS, STUDY, CrossModelError, CrossPreset, run_cross_model_study

__all__ = ["AUC", "PRESETS", "STUDY", "CrossModelError", "CrossModelResult", "CrossPreset", "HeldOut",
           "PairAlignment", "TransferShift", "run_cross_model_study"]
