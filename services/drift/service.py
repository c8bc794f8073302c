"""IaC reconciliation, wired: configured workspaces, watermarks, stored proposals, review.

``iac/`` finds drift and writes patches; this module runs it per workspace from the last
watermark, stores each proposal once, notifies, and applies the reviewer's verdict (a commit on a
new branch, or a recorded reason), teaching the knowledge base either way.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update

from iac.kb import KnowledgeBase
from iac.models import Change, Intent, Proposal, TraceRecord, Workspace
from services.config import Settings
from services.connectors.cloud import boto3_session
from services.drift.models import DriftProposal, IacWorkspaceState
from services.drift.workspace import push_branch, sync, workspace_from_spec
from services.episodes.service import agent_memory
from services.errors import Conflict, DomainError, Invalid, NotFound, OperationFailed
from services.llm import llm_from_settings
from services.notify.service import notify_event
from services.storage.base import rows_matched, session_scope, utcnow

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- domain errors
# services/api/errors.py maps them by their base type (never by message text): not found -> 404,
# already reviewed -> 409, invalid review -> 422, the git work failed -> 500 with the proposal pending again.
class DriftError(DomainError):
    """Base of the drift domain's errors."""


class WorkspaceNotFound(DriftError, NotFound):
    """No configured workspace has this name."""


class ProposalNotFound(DriftError, NotFound):
    """No drift proposal has this id."""


class AlreadyReviewed(DriftError, Conflict):
    """The proposal is not pending: another reviewer approved, rejected, or is applying it."""


class ReviewError(DriftError, Invalid):
    """The review request itself is invalid (a rejection without reason, a workspace gone)."""


class ApplyFailed(DriftError, OperationFailed):
    """Committing the approved patch (or recording the verdict) failed; the proposal is pending again."""


# a claim older than this is a reviewer process that died mid-apply: the proposal may be claimed again
CLAIM_STALE_AFTER = timedelta(minutes=15)


def workspace_specs(settings: Settings) -> dict[str, dict[str, Any]]:
    """``AIOPS_IAC_WORKSPACES`` by name: {name, trace_source, repo_url + state_url | terraform_dir + state_file, ...}."""
    return {spec["name"]: dict(spec) for spec in settings.iac_workspaces}


def workspaces(settings: Settings) -> dict[str, Workspace]:
    """The configured workspaces (remote ones at this process's checkout path, not yet fetched)."""
    return {name: workspace_from_spec(settings, spec) for name, spec in workspace_specs(settings).items()}


def is_simulator(settings: Settings, name: str) -> bool:
    """moto's dummy credentials for this workspace? Only when the settings or its spec say so
    (``"simulator": true``, written by ``sim.drift``); otherwise boto3's default credential chain."""
    spec = next((s for s in settings.iac_workspaces if s.get("name") == name), {})
    return bool(settings.cloud_is_simulator or spec.get("simulator", False))


def knowledge_base(settings: Settings) -> KnowledgeBase:
    """The reconciliation knowledge base in the platform's Chroma, with the memory's embeddings.

    Opening it is cheap (the collection handle); the Chroma client and the model are shared.
    """
    memory = agent_memory(settings)
    return KnowledgeBase(memory.chroma, embedding_function=memory.embedding)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _relative(path: Any, root: Path | None) -> str:
    if root is not None:
        try:
            return str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def proposal_payload(proposal: Proposal, *, root: Path | None = None) -> dict[str, Any]:
    """Everything approval needs later, as JSON: files to write, intents and records for the KB.

    File paths are stored relative to the repository ``root``, because the process that approves
    has its own checkout somewhere else.
    """
    return {
        "proposal": _jsonable(proposal.to_dict()),
        "files": {_relative(path, root): text for path, text in proposal.files.items()},
        "intents": [{"kind": i.kind, "address": i.address, "resource_type": i.resource_type, "attribute": i.attribute,
                     "value": _jsonable(i.value), "resource_id": i.resource_id, "source": i.source}
                    for i in proposal.intents],
    }


def proposal_from_payload(payload: dict[str, Any], *, root: Path | None = None) -> Proposal:
    """The stored proposal with its files anchored in ``root`` (absolute stored paths stay as they are)."""
    data = payload["proposal"]
    records = [TraceRecord(event_id=r["eventID"], event_time=datetime.fromisoformat(r["eventTime"]),
                           event_source=r["eventSource"], event_name=r["eventName"], region=r.get("awsRegion", ""),
                           user_agent=r.get("userAgent", ""), principal_arn=r.get("principalArn", ""),
                           error_code=r.get("errorCode", ""), request=r.get("requestParameters") or {},
                           response=r.get("responseElements") or {})
               for r in data.get("records", [])]
    return Proposal(
        id=data["id"], addresses=list(data["addresses"]), diff=data["diff"],
        changes=[Change(**c) for c in data.get("changes", [])], records=records,
        files={str(root / path) if root is not None else path: text for path, text in payload["files"].items()},
        instructions=list(data.get("instructions", [])), needs_person=list(data.get("needs_person", [])),
        intents=[Intent(**i) for i in payload.get("intents", [])], verification=dict(data.get("verification", {})),
        llm_tokens=int(data.get("llm_tokens", 0)),
    )


def reconcile_workspace(settings: Settings, name: str, *, session=None) -> dict[str, Any]:
    """Reconcile one workspace from its watermark; store new proposals; advance the watermark."""
    from iac.reconcile import reconcile

    specs = workspace_specs(settings)
    if name not in specs:
        raise WorkspaceNotFound(f"no workspace named {name!r}; configured: {', '.join(specs) or 'none'}")
    workspace = workspace_from_spec(settings, specs[name])
    with session_scope(settings.database_url) as db:
        state = db.get(IacWorkspaceState, name)
        watermark = state.watermark if state else None
        state_result = dict(state.last_result) if state else {}
    if session is None:  # live verification compares the patched config with the cloud
        session = boto3_session(region=workspace.region, simulator=is_simulator(settings, name))
    workspace = sync(settings, specs[name], session=session)
    llm = None
    client = llm_from_settings(settings)
    if client is not None:  # intent inference for calls no rule and no past reconciliation explains
        from iac.llm import LLMInference

        llm = LLMInference(complete=client)
    # CloudTrail times have one-second precision: read the watermark's second again and drop the
    # records already handled there, so a change made in the same second is never skipped
    from iac.traces import TraceReadReport, TraceSourceError, read_source

    boundary = set(state_result.get("boundary_event_ids", [])) if watermark else set()
    read = TraceReadReport()
    try:
        records = read_source(workspace.trace_source, since=watermark - timedelta(seconds=1) if watermark else None,
                              session=session, endpoint_url=workspace.endpoint_url, report=read)
    except TraceSourceError as exc:  # said on the workspace (API, console), the watermark stays where it was
        log.warning("workspace %s: %s", name, exc)
        with session_scope(settings.database_url) as db:
            failed = db.get(IacWorkspaceState, name) or IacWorkspaceState(name=name, watermark=watermark)
            failed.last_run_at, failed.last_result = utcnow(), {**state_result, "error": str(exc)}
            db.merge(failed)
        return {"error": str(exc)}
    records = [r for r in records if r.event_id not in boundary]
    result = reconcile(workspace, kb=knowledge_base(settings), session=session, llm=llm, records=records)
    new_mark = max((r.event_time for r in records), default=watermark)
    seen_now = {r.event_id for r in records if new_mark is not None and r.event_time > new_mark - timedelta(seconds=1)}
    boundary_ids = sorted(seen_now | boundary) if new_mark == watermark else sorted(seen_now)
    created: list[int] = []
    events: list[dict[str, Any]] = []
    with session_scope(settings.database_url) as db:
        for proposal in result.proposals:
            exists = db.scalar(select(DriftProposal.id).where(DriftProposal.workspace == name,
                                                              DriftProposal.external_id == proposal.id))
            if exists:
                continue
            row = DriftProposal(
                workspace=name, external_id=proposal.id, status="pending",
                title=f"{len(proposal.changes)} change(s) to {', '.join(proposal.addresses)[:250]}",
                diff=proposal.diff, explanation=[c.explanation for c in proposal.changes],
                records=[_jsonable(r.to_dict()) for r in proposal.records],
                verification=_jsonable(proposal.verification), instructions=list(proposal.instructions),
                needs_person=list(proposal.needs_person), payload=proposal_payload(proposal, root=workspace.repo_dir or workspace.terraform_dir),
            )
            db.add(row)
            db.flush()
            created.append(row.id)
            events.append({"title": row.title, "data": {"proposal_id": row.id},
                           "message": f"drift in {name}: " + "; ".join(row.explanation)[:500]})
        state = db.get(IacWorkspaceState, name) or IacWorkspaceState(name=name)
        summary = {k: v for k, v in result.to_dict().items() if k != "proposals"}
        summary["proposals_created"] = created
        summary["boundary_event_ids"] = boundary_ids
        # nothing dropped silently: damaged trace input is counted with its file and where it broke
        summary["trace_read"] = {"files": read.files, "malformed": dict(read.malformed)}
        state.watermark = new_mark
        state.last_run_at, state.last_result = utcnow(), _jsonable(summary)
        db.merge(state)
    _changes_from(result.proposals, settings=settings)
    for event in events:
        notify_event(settings, incident_id=0, kind="drift_proposed", priority=6, **event)
    return summary


# request parameters that name the changed resource, in the order AWS APIs use them most
_ID_KEYS = ("instanceId", "groupId", "bucketName", "functionName", "dBInstanceIdentifier", "autoScalingGroupName",
            "loadBalancerName", "roleName", "userName", "keyId", "queueUrl", "topicArn", "vpcId", "subnetId")


def _changed_resource(record, *, fallback: str) -> str:
    """The cloud id a diagnosis would know the resource by (``i-…``, ``sg-…``, a bucket), else the address."""
    request = record.request or {}
    for key in _ID_KEYS:
        value = request.get(key)
        if isinstance(value, str) and value:
            return value
    items = ((request.get("instancesSet") or {}).get("items") or []) if isinstance(request.get("instancesSet"), dict) else []
    if items and isinstance(items[0], dict) and items[0].get("instanceId"):
        return str(items[0]["instanceId"])
    for resource in record.resources or []:
        arn = str(resource.get("ARN") or resource.get("resourceName") or "")
        if arn:
            return arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return fallback


def _changes_from(proposals, *, settings: Settings) -> None:
    """Out-of-band cloud changes become change events: a diagnosis on the changed resource sees them.

    Why here: the reconciler is where a CloudTrail call is known to have changed managed
    configuration; the same change explains an incident on that instance or group minutes later.
    """
    from services.changes.normalize import Change
    from services.changes.service import store_changes

    changes = []
    for proposal in proposals:
        address = ", ".join(proposal.addresses)[:200]
        for record in proposal.records:
            who = (record.principal_arn or "unknown principal").rsplit("/", 1)[-1]
            changes.append(Change(
                component=_changed_resource(record, fallback=proposal.addresses[0] if proposal.addresses else "cloud")[:300],
                at=record.event_time, kind="infra", source="cloudtrail", status="out_of_band",
                detail=f"out-of-band {record.event_name} by {who} on {address}"[:2000],
                dedup_key=f"cloudtrail:{record.event_id}",
                data={"event_name": record.event_name, "principal": record.principal_arn, "addresses": proposal.addresses,
                      "proposal": proposal.id, "user_agent": record.user_agent}))
    if not changes:
        return
    try:
        with session_scope(settings.database_url) as db:
            store_changes(db, changes)
    except Exception:  # a change feed is evidence for later incidents; the proposals are already stored
        log.exception("could not store %d out-of-band change(s) as change events", len(changes))


def review(settings: Settings, proposal_id: int, *, approved: bool, reviewer: str, comment: str = "") -> DriftProposal:
    """Approve (commit to a new branch, never main) or reject (with a reason); the KB learns both.

    Why a claim: the git commit cannot share a database transaction, so "is it pending?" and "mark
    it reviewed" would be two transactions with the commit between, and two concurrent approvals
    would both commit. Instead a compare-and-set (``UPDATE ... SET status='applying' WHERE
    status='pending'``, one row or none, on SQLite and PostgreSQL alike) lets exactly one reviewer
    in; the others get ``AlreadyReviewed``. If the git work fails the row goes back to pending
    with the error in ``review_comment``, so it can be reviewed again.
    """
    from iac.review import approve, reject

    if not approved and not comment.strip():
        raise ReviewError("a rejection needs a reason in 'comment'")
    with session_scope(settings.database_url) as db:
        row = db.get(DriftProposal, proposal_id)
        if row is None:
            raise ProposalNotFound(f"drift proposal {proposal_id} does not exist")
        workspace_name = row.workspace
    specs = workspace_specs(settings)
    if approved and workspace_name not in specs:
        raise ReviewError(f"workspace {workspace_name!r} is no longer configured")
    payload = _claim(settings, proposal_id, reviewer=reviewer)
    try:
        workspace = None
        if approved:
            spec = specs[workspace_name]
            session = boto3_session(region=spec.get("region", settings.cloud_region),
                                    simulator=is_simulator(settings, workspace_name))
            workspace = sync(settings, spec, session=session)
        root = (workspace.repo_dir or workspace.terraform_dir) if workspace is not None else None
        proposal = proposal_from_payload(payload, root=root)
        kb = knowledge_base(settings)
        branch = None
        if approved:
            assert workspace is not None, "synced above when approved"
            branch = approve(proposal, workspace, kb=kb, reviewer=reviewer)
            push_branch(settings, specs[workspace_name], branch)
        else:
            reject(proposal, reason=comment, kb=kb, reviewer=reviewer)
    except Exception as exc:
        _release(settings, proposal_id, reviewer=reviewer, approved=approved, error=f"{type(exc).__name__}: {exc}")
        raise ApplyFailed(f"drift proposal {proposal_id}: {'approval' if approved else 'rejection'} failed "
                          f"({type(exc).__name__}: {exc}); it is pending again") from exc
    return _finish(settings, proposal_id, approved=approved, reviewer=reviewer, comment=comment, branch=branch)


def _claim(settings: Settings, proposal_id: int, *, reviewer: str) -> dict[str, Any]:
    """Compare-and-set pending -> applying in its own committed transaction; the payload to apply."""
    now = utcnow()
    with session_scope(settings.database_url) as db:
        claimed = rows_matched(db,
            update(DriftProposal)
            .where(DriftProposal.id == proposal_id,
                   or_(DriftProposal.status == "pending",
                       (DriftProposal.status == "applying") & (DriftProposal.reviewed_at < now - CLAIM_STALE_AFTER)))
            .values(status="applying", reviewer=reviewer, reviewed_at=now)
            .execution_options(synchronize_session=False))
        row = db.get(DriftProposal, proposal_id)
        if row is None:
            raise ProposalNotFound(f"drift proposal {proposal_id} does not exist")
        if claimed != 1:
            doing = "is already being reviewed" if row.status == "applying" else f"was already {row.status}"
            raise AlreadyReviewed(f"drift proposal {proposal_id} {doing} by {row.reviewer}")
        return dict(row.payload)


def _release(settings: Settings, proposal_id: int, *, reviewer: str, approved: bool, error: str) -> None:
    """Put a claimed proposal back to pending, the failure recorded on it and in the audit log."""
    from services.audit.service import record

    log.warning("drift proposal %s: review by %s failed: %s", proposal_id, reviewer, error)
    with session_scope(settings.database_url) as db:
        db.execute(update(DriftProposal)
                   .where(DriftProposal.id == proposal_id, DriftProposal.status == "applying",
                          DriftProposal.reviewer == reviewer)
                   .values(status="pending", reviewer=None, reviewed_at=None,
                           review_comment=f"{'approval' if approved else 'rejection'} by {reviewer} failed: {error}"[:2000])
                   .execution_options(synchronize_session=False))
        record(db, actor=reviewer, action="drift.review_failed", subject=f"drift:{proposal_id}",
               data={"approved": approved, "error": error[:1000]})


def _finish(settings: Settings, proposal_id: int, *, approved: bool, reviewer: str, comment: str,
            branch: str | None) -> DriftProposal:
    from services.audit.service import record

    with session_scope(settings.database_url) as db:
        row = db.get(DriftProposal, proposal_id)
        assert row is not None, "_claim found the row and proposals are not deleted"
        row.status = "approved" if approved else "rejected"
        row.reviewer, row.review_comment, row.reviewed_at, row.branch = reviewer, comment, utcnow(), branch
        record(db, actor=reviewer, action=f"drift.{row.status}", subject=f"drift:{proposal_id}",
               data={"branch": branch, "comment": comment})
        if approved:
            supersede_overlapping(db, row, reviewer=reviewer)
        db.flush()
        db.expunge(row)
    return row


def _addresses(row: DriftProposal) -> set[str]:
    return set(((row.payload or {}).get("proposal") or {}).get("addresses") or [])


def supersede_overlapping(db, approved: DriftProposal, *, reviewer: str) -> list[int]:
    """Close the pending proposals of the same workspace that change a resource the approved one changed.

    They were written against the configuration before the approved patch; applying one of them
    now would patch the same lines twice. Each is marked ``superseded`` (with the approved id in
    its review comment) and audited; the next reconciliation proposes again whatever is still drift.
    """
    from services.audit.service import record

    mine = _addresses(approved)
    if not mine:
        return []
    closed = []
    others = db.scalars(select(DriftProposal).where(DriftProposal.workspace == approved.workspace,
                                                    DriftProposal.status == "pending",
                                                    DriftProposal.id != approved.id)).all()
    for other in others:
        overlap = sorted(mine & _addresses(other))
        if not overlap:
            continue
        other.status, other.reviewer, other.reviewed_at = "superseded", reviewer, utcnow()
        other.review_comment = f"superseded by #{approved.id}, approved first, which changes {', '.join(overlap)[:1500]}"
        record(db, actor=reviewer, action="drift.superseded", subject=f"drift:{other.id}",
               data={"by": approved.id, "addresses": overlap})
        closed.append(other.id)
    return closed
