"""Health: which servers may take traffic, from active probes and from real traffic.

:class:`HealthTracker` is the component; its private parts are the probe
schedule (``_probes``) and the passive-ejection arithmetic (``_ejection``);
the outlier detectors (``outliers``) are public.
"""

from .outliers import FailurePercentageEjection, OutlierDetector, SuccessRateEjection
from .tracker import HealthState, HealthTracker

__all__ = [
    "FailurePercentageEjection",
    "HealthState",
    "HealthTracker",
    "OutlierDetector",
    "SuccessRateEjection",
]
