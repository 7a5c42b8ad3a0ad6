"""Statistics every layer may use: estimates with intervals, resampling, correlations (a leaf: numpy, scipy).

Example:
    >>> from emovec.metrics import Estimate, cluster_bootstrap
"""

from emovec.metrics.intervals import Estimate, cluster_bootstrap, pearson_estimate, percentile

__all__ = ["Estimate", "cluster_bootstrap", "pearson_estimate", "percentile"]
