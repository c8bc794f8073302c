"""NSync: reconcile out-of-band cloud changes (CloudTrail) into minimal Terraform patches.

Plain library: services/ schedules ``reconcile`` and serves its ``ReconcileResult``; agents/
may call it as a tool. Nothing here imports memory/, causal/, agents/ or services/.
"""

from iac.models import Change, Intent, Proposal, ReconcileResult, TraceRecord, Workspace
from iac.reconcile import reconcile

__all__ = ["Change", "Intent", "Proposal", "ReconcileResult", "TraceRecord", "Workspace", "reconcile"]
