"""Imports every table so Alembic and ``Base.metadata`` see the whole schema."""

from services.actions.models import Action, Approval
from services.alerts.models import Alert
from services.audit.models import AuditEntry
from services.auth.models import ApiToken, ConsoleSession, User
from services.changes.models import ChangeEvent
from services.drift.models import DriftProposal, IacWorkspaceState
from services.incidents.models import Hypothesis, Incident, IncidentComponent, TimelineEvent
from services.mitigation.models import CausalModelPointer, CausalModelVersion, MitigationEvent
from services.notify.models import Silence, SlackThread, WebhookDelivery
from services.storage.base import Base
from services.traces.models import TraceSpan
from services.worker.models import BeatEntryState

__all__ = [
    "Action", "Alert", "ApiToken", "Approval", "AuditEntry", "Base", "BeatEntryState", "CausalModelPointer", "ConsoleSession",
    "CausalModelVersion", "ChangeEvent", "DriftProposal", "Hypothesis", "IacWorkspaceState", "Incident", "IncidentComponent",
    "MitigationEvent",
    "Silence", "SlackThread", "TimelineEvent", "TraceSpan", "User", "WebhookDelivery",
]
