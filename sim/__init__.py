"""Fleet simulator: a cloud on moto, telemetry, fault injection with ground truth, Alertmanager alerts.

Self-contained on purpose: it never imports ``services/`` or ``agents/``; the platform reaches it
over HTTP (moto endpoint, the sim API in ``sim.server``, and the alerts it posts to the ingest URL).
"""

from sim.alerts import AlertEmitter, EmitError, fingerprint, to_alertmanager
from sim.cloud import MotoHandle, boto_client, boto_session, free_port, start_moto
from sim.faults import FAULT_KINDS, NODE_ACTIONS, SERVICE_ACTIONS, Fault, FaultInjector, FaultKind
from sim.fleet import ACTION_DOWNTIME_S, DEFAULT_SERVICES, Fleet, MitigationResult, Node
from sim.runner import Simulation
from sim.server import SimServer
from sim.stack import SimStack
from sim.telemetry import METRICS, THRESHOLDS, Telemetry

__all__ = [
    "ACTION_DOWNTIME_S",
    "AlertEmitter",
    "DEFAULT_SERVICES",
    "EmitError",
    "FAULT_KINDS",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "Fleet",
    "METRICS",
    "MitigationResult",
    "MotoHandle",
    "NODE_ACTIONS",
    "Node",
    "SERVICE_ACTIONS",
    "SimServer",
    "SimStack",
    "Simulation",
    "THRESHOLDS",
    "Telemetry",
    "boto_client",
    "boto_session",
    "fingerprint",
    "free_port",
    "start_moto",
    "to_alertmanager",
]
