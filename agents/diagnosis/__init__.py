"""Diagnosis that works on incidents it has never seen: rank (component, fault) pairs with evidence.

``case`` gathers what a person would look at through the Telemetry protocol, ``evidence`` turns raw
telemetry into citable items, ``propagate`` separates the root cause from its victims on the
topology, ``faults`` types the fault from which signal kinds moved, ``rank`` puts it together.
"""

from agents.diagnosis.case import gather_case
from agents.diagnosis.rank import rank_case

__all__ = ["gather_case", "rank_case"]
