"""Health: which servers may take traffic, from active probes and from real traffic.

:class:`HealthTracker` is the component; its private parts are the probe
schedule (``_probes``) and the passive-ejection arithmetic (``_ejection``).
"""

from .tracker import HealthState, HealthTracker

__all__ = ["HealthState", "HealthTracker"]
