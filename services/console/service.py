"""What the console pages show, read in one transaction per page: no HTML here, only data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.actions.models import Action, Approval
from services.alerts.models import Alert
from services.console import evidence
from services.drift.models import DriftProposal, IacWorkspaceState
from services.errors import NotFound
from services.incidents.models import Hypothesis, Incident, TimelineEvent
from services.storage.base import session_scope

HIGH_RISK = ("high", "critical")


def incident_page(database_url: str, incident_id: int) -> dict[str, Any]:
    """The incident with its alerts, hypotheses (evidence items), timeline, approvals and actions."""
    with session_scope(database_url) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} does not exist")
        alerts = session.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id)).all()
        hypotheses = session.scalars(select(Hypothesis).where(Hypothesis.incident_id == incident_id)
                                     .order_by(Hypothesis.rank)).all()
        timeline = session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id,
                                                               TimelineEvent.kind != "task")
                                   .order_by(TimelineEvent.at, TimelineEvent.id)).all()
        approvals = session.scalars(select(Approval).where(Approval.incident_id == incident_id)
                                    .order_by(Approval.id)).all()
        actions = session.scalars(select(Action).where(Action.incident_id == incident_id).order_by(Action.id)).all()
        session.expunge_all()
    top = max((h.confidence for h in hypotheses), default=0.0) or 1.0
    observed = next((e.data for e in timeline if e.kind == "observed" and isinstance(e.data, dict)), {}) or {}
    split_at = observed.get("split_at")
    plots = [p for p in (evidence.plot(s, split_at=split_at) for s in observed.get("series") or []) if p]
    by_key = {(p["component"], p["metric"]): p for p in plots}
    context = str(observed.get("context") or "")
    planned = next((e.data for e in reversed(timeline) if e.kind == "planned" and isinstance(e.data, dict)), {}) or {}
    rows = []
    for h in hypotheses:
        items = [evidence_item(e) for e in h.evidence or []]
        for item in items:
            item["plot"] = by_key.get((item["component"], item.get("metric", "")))
        rows.append({"row": h, "width": round(100 * h.confidence / top), "evidence": items,
                     "logs": evidence.log_lines(context, component=h.component)[:30] if h.component else []})
    best = hypotheses[0] if hypotheses else None
    topology = observed.get("topology") or {}
    graph = (evidence.topology_view(topology, root=best.component, root_kind=best.component_kind or "")
             if best and best.component else None)
    return {"incident": incident, "alerts": alerts, "timeline": timeline, "approvals": approvals,
            "actions": actions, "hypotheses": rows, "plots": plots, "graph": graph, "observed": bool(observed),
            "context_lines": evidence.log_lines(context), "planned_blast": planned.get("blast") or {},
            "root_component": best.component if best else ""}


def evidence_item(item: Any) -> dict[str, Any]:
    """An evidence entry as (kind, component, detail), whether the diagnoser wrote a string or a dict."""
    if isinstance(item, dict):
        extra = {k: v for k, v in item.items() if k not in {"kind", "component", "detail", "points"}}
        detail = str(item.get("detail") or "")
        if extra and not detail:  # the diagnoser's sentence says it; the raw fields are for items without one
            detail = (detail + " " if detail else "") + ", ".join(f"{k}={v}" for k, v in extra.items())
        return {"kind": str(item.get("kind") or "evidence"), "component": str(item.get("component") or ""),
                "detail": detail, "metric": str(item.get("metric") or "")}
    return {"kind": "evidence", "component": "", "detail": str(item)}


def pending_approvals(database_url: str) -> list[dict[str, Any]]:
    with session_scope(database_url) as session:
        rows = session.execute(select(Approval, Incident.title).join(Incident, Incident.id == Approval.incident_id)
                               .where(Approval.status == "pending").order_by(Approval.id.desc()).limit(200)).all()
        session.expunge_all()
    return [{"approval": a, "title": title} for a, title in rows]


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count(Approval.id)).where(Approval.status == "pending")) or 0


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, text) per line of a unified diff: add, del, hunk, file or ctx."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out


def changed_by(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Who made the cloud calls behind a proposal: one row per call, oldest first."""
    rows = [{"time": str(r.get("eventTime") or ""), "call": f"{r.get('eventSource', '')} {r.get('eventName', '')}",
             "principal": str(r.get("principalArn") or "unknown"), "user_agent": str(r.get("userAgent") or ""),
             "source_ip": str(r.get("sourceIPAddress") or ""), "region": str(r.get("awsRegion") or "")}
            for r in records or []]
    return sorted(rows, key=lambda r: r["time"])


def drift_page(database_url: str, *, status: str | None, workspace: str | None, limit: int = 50) -> dict[str, Any]:
    with session_scope(database_url) as session:
        query = select(DriftProposal)
        if status:
            query = query.where(DriftProposal.status == status)
        if workspace:
            query = query.where(DriftProposal.workspace == workspace)
        rows = session.scalars(query.order_by(DriftProposal.id.desc()).limit(limit)).all()
        names = session.scalars(select(DriftProposal.workspace).distinct()).all()
        states = session.scalars(select(IacWorkspaceState).order_by(IacWorkspaceState.name)).all()
        runs = [reconcile_summary(st.name, st.last_run_at, st.last_result or {}) for st in states
                if not workspace or st.name == workspace]
        session.expunge_all()
    return {"workspaces": sorted(names), "runs": runs, "proposals": [
        {"row": p, "diff": diff_lines(p.diff), "who": changed_by(p.records)} for p in rows]}


# Order and wording of the outcomes every drift-relevant trace record ends in (iac.drift.DriftReport.outcomes).
OUTCOMES = [("proposal", "proposal"), ("no_config_effect", "no config effect"), ("unsupported", "unsupported"),
            ("unmatched_resource", "unmatched resource"), ("netted_out", "set and set back"),
            ("already_managed", "already managed"), ("retry_collapsed", "retries"), ("unexplained", "unexplained")]


def reconcile_summary(name: str, at: Any, result: dict[str, Any]) -> dict[str, Any]:
    """A workspace's last reconciliation as the console shows it: counts per outcome with the event names,
    and why each no-config-effect call was dropped (nothing is dropped without saying so)."""
    outcomes = result.get("outcomes") or {}
    reasons = result.get("no_config_reasons") or {}
    rows = []
    for key, label in OUTCOMES:
        names = outcomes.get(key) or {}
        if names:
            rows.append({"outcome": label, "count": sum(names.values()),
                         "names": [f"{n} ×{c}" if c > 1 else n for n, c in sorted(names.items())],
                         "reasons": {n: reasons[n] for n in sorted(names) if n in reasons} if key == "no_config_effect" else {}})
    return {"name": name, "at": at, "records": result.get("records_read", 0), "rows": rows}


def change_version(database_url: str) -> str:
    """A cheap fingerprint of what the console shows; the event stream sends an update when it changes."""
    with session_scope(database_url) as session:
        parts = (
            session.scalar(select(func.max(TimelineEvent.id))),
            session.scalar(select(func.max(Incident.updated_at))),
            session.scalar(select(func.count(Incident.id))),
            pending_count(session),
            session.scalar(select(func.max(DriftProposal.id))),
            session.scalar(select(func.max(DriftProposal.reviewed_at))),
        )
    return "|".join(str(p) for p in parts)
