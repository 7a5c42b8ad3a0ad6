"""Statistics every layer may use: estimates with intervals, resampling, rates, correlations, the readout and
alignment estimators (a leaf: numpy, scipy, torch).

Example:
    >>> from emovec.metrics import Estimate, cluster_bootstrap, wilson
"""

from emovec.metrics.intervals import Estimate, cluster_bootstrap, pearson_estimate, percentile
from emovec.metrics.rates import finite_mean, wilson
from emovec.metrics.readout import readout

__all__ = ["Estimate", "cluster_bootstrap", "finite_mean", "pearson_estimate", "percentile", "readout", "wilson"]
