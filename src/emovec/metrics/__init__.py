"""Statistics every layer may use: estimates with intervals, resampling, rates, classification scores, KL,
the readout and alignment estimators (a leaf: numpy, scipy, scikit-learn, torch).

Example:
    >>> from emovec.metrics import Estimate, bootstrap, wilson
"""

from emovec.metrics.classification import auc_estimate, balanced_accuracy, balanced_rate
from emovec.metrics.divergence import kl_logprobs
from emovec.metrics.intervals import (
    Estimate,
    bootstrap,
    cluster_bootstrap,
    fisher_mean,
    index_bootstrap,
    pearson_estimate,
    percentile,
    permuted_within,
    stratified_bootstrap,
    stratified_indices,
    vector_index_bootstrap,
)
from emovec.metrics.rates import finite_mean, wilson
from emovec.metrics.readout import readout, readout_weights, target_share

__all__ = [
    "Estimate", "auc_estimate", "balanced_accuracy", "balanced_rate", "bootstrap", "cluster_bootstrap", "finite_mean",
    "fisher_mean", "index_bootstrap", "kl_logprobs", "pearson_estimate", "percentile", "permuted_within", "readout",
    "readout_weights", "stratified_bootstrap", "stratified_indices", "target_share", "vector_index_bootstrap", "wilson",
]
