"""Change events from the shapes CI/CD tools post: generic JSON, GitHub deployment/deployment_status,
Argo CD notification webhooks. Anything else is an ``Invalid`` naming what is missing.

Generic: ``{"component", "kind"?, "at"?, "version"?, "status"?, "environment"?, "detail"?, "id"?}``,
a list of them, or ``{"changes": [...]}``; ``service`` is accepted for ``component``.

GitHub (``X-GitHub-Event: deployment`` / ``deployment_status``): the component is
``deployment.payload.component`` (or ``.service``) when the workflow sets it, else the repository's name.

Argo CD posts whatever body its notification template renders; two are understood: the webhook
template in README "Connect your fleet" (``{"source": "argocd", "app", "revision", "phase", ...}``)
and the catalog's ``app-deployed`` attachments (title = application, fields Sync Status/Revision).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.errors import Invalid

KINDS = {"deploy", "rollback", "config", "scale", "infra", "feature_flag", "restart", "other"}
MAX_EVENTS = 500


@dataclass
class Change:
    component: str
    at: datetime
    kind: str = "deploy"
    source: str = "generic"
    status: str | None = None
    version: str | None = None
    environment: str | None = None
    detail: str = ""
    dedup_key: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _text(value: Any, *, name: str, limit: int = 300, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise Invalid(f"{name} is required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise Invalid(f"{name} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if "\x00" in text:
        raise Invalid(f"{name} contains a NUL character")
    if len(text) > limit:
        raise Invalid(f"{name} is longer than {limit} characters")
    return text


def parse_time(value: Any, *, name: str = "at") -> datetime:
    """ISO 8601 (``Z`` allowed) or epoch seconds/milliseconds; missing means now."""
    if value in (None, ""):
        return datetime.now(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise Invalid(f"{name}: {value} is not a time") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(f"{name}: {value[:40]!r} is not an ISO 8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise Invalid(f"{name} must be an ISO 8601 string or epoch seconds")


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:40]


def _generic(item: Any, index: int) -> Change:
    if not isinstance(item, dict):
        raise Invalid(f"changes[{index}] must be an object")
    component = _text(item.get("component") or item.get("service"), name=f"changes[{index}].component",
                      required=True)
    kind = (_text(item.get("kind"), name=f"changes[{index}].kind", limit=32) or "deploy").lower()
    if kind not in KINDS:
        raise Invalid(f"changes[{index}].kind {kind!r} is not one of {', '.join(sorted(KINDS))}")
    change = Change(component=component or "", at=parse_time(item.get("at") or item.get("timestamp"),
                                                              name=f"changes[{index}].at"),
                    kind=kind, source=_text(item.get("source"), name="source", limit=32) or "generic",
                    status=_text(item.get("status"), name=f"changes[{index}].status", limit=32),
                    version=_text(item.get("version"), name=f"changes[{index}].version", limit=200),
                    environment=_text(item.get("environment"), name=f"changes[{index}].environment", limit=200),
                    detail=_text(item.get("detail") or item.get("description"), name=f"changes[{index}].detail",
                                 limit=2000) or "")
    ident = _text(item.get("id"), name=f"changes[{index}].id", limit=150)
    change.dedup_key = f"{change.source}:{ident}" if ident else _key(
        change.source, component, kind, item.get("at") or item.get("timestamp"), change.version, change.status,
        change.detail)
    return change


def _github(payload: dict[str, Any], event: str | None) -> Change:
    deployment = payload.get("deployment")
    if not isinstance(deployment, dict):
        raise Invalid("a GitHub deployment event needs a 'deployment' object")
    repo: dict[str, Any] = payload["repository"] if isinstance(payload.get("repository"), dict) else {}
    extra: dict[str, Any] = deployment["payload"] if isinstance(deployment.get("payload"), dict) else {}
    component = _text(extra.get("component") or extra.get("service") or repo.get("name"),
                      name="deployment.payload.component (or repository.name)", required=True)
    status = payload.get("deployment_status")
    sha = _text(deployment.get("sha"), name="deployment.sha", limit=200)
    env = _text(deployment.get("environment"), name="deployment.environment", limit=200)
    task = (_text(deployment.get("task"), name="deployment.task", limit=64) or "deploy")
    kind = "rollback" if "rollback" in task.lower() else "deploy"
    repo_name = repo.get("full_name") or repo.get("name") or "?"
    if isinstance(status, dict) or event == "deployment_status":
        if not isinstance(status, dict):
            raise Invalid("a GitHub deployment_status event needs a 'deployment_status' object")
        state = _text(status.get("state"), name="deployment_status.state", limit=32, required=True)
        return Change(component=component or "", at=parse_time(status.get("created_at"),
                                                                name="deployment_status.created_at"),
                      kind=kind, source="github", status=state, version=sha, environment=env,
                      detail=f"GitHub deployment {deployment.get('id')} of {repo_name}@{(sha or '?')[:12]} "
                             f"to {env or '?'}: {state}",
                      dedup_key=f"github:status:{status.get('id') or _key(deployment.get('id'), state)}",
                      data={"deployment_id": deployment.get("id"), "ref": deployment.get("ref"), "task": task})
    return Change(component=component or "", at=parse_time(deployment.get("created_at"), name="deployment.created_at"),
                  kind=kind, source="github", status="created", version=sha, environment=env,
                  detail=f"GitHub deployment {deployment.get('id')} of {repo_name}@{(sha or '?')[:12]} "
                         f"({deployment.get('ref')}) to {env or '?'} created",
                  dedup_key=f"github:deployment:{deployment.get('id') or _key(sha, env)}",
                  data={"deployment_id": deployment.get("id"), "ref": deployment.get("ref"), "task": task})


ARGO_STATUS = {"Succeeded": "success", "Failed": "failure", "Error": "error", "Running": "in_progress"}


def _argocd(payload: dict[str, Any]) -> Change:
    app = payload.get("app")
    if isinstance(app, dict):  # an Application object
        meta, status = app.get("metadata") or {}, app.get("status") or {}
        op = status.get("operationState") or {}
        payload = {"app": meta.get("name"), "namespace": meta.get("namespace"),
                   "revision": (status.get("sync") or {}).get("revision"), "phase": op.get("phase"),
                   "finishedAt": op.get("finishedAt"), "syncStatus": (status.get("sync") or {}).get("status"),
                   "healthStatus": (status.get("health") or {}).get("status"), "trigger": payload.get("trigger")}
    name = _text(payload.get("app"), name="app", required=True)
    revision = _text(payload.get("revision"), name="revision", limit=200)
    phase = _text(payload.get("phase"), name="phase", limit=32)
    sync = _text(payload.get("syncStatus"), name="syncStatus", limit=32)
    health = _text(payload.get("healthStatus"), name="healthStatus", limit=32)
    at = parse_time(payload.get("finishedAt") or payload.get("at"), name="finishedAt")
    status = ARGO_STATUS.get(phase or "", (phase or sync or "").lower() or None)
    trigger = _text(payload.get("trigger"), name="trigger", limit=64)
    return Change(component=name or "", at=at, kind="deploy", source="argocd", status=status, version=revision,
                  environment=_text(payload.get("namespace"), name="namespace", limit=200),
                  detail=f"Argo CD sync of {name} to {(revision or '?')[:12]}: {phase or sync or '?'}"
                         + (f", health {health}" if health else "") + (f" ({trigger})" if trigger else ""),
                  # a body without a time is keyed without one: a redelivery of it is the same event
                  dedup_key=f"argocd:{_key(name, revision, phase, sync, trigger, payload.get('finishedAt') or payload.get('at'))}",
                  data={"sync": sync, "health": health, "trigger": trigger})


def _argocd_catalog(payload: dict[str, Any]) -> Change:
    attachment = payload["attachments"][0] if payload.get("attachments") else {}
    if not isinstance(attachment, dict) or not attachment.get("title"):
        raise Invalid("an Argo CD attachment needs a title (the application name)")
    fields = {str(f.get("title")): f.get("value") for f in attachment.get("fields") or [] if isinstance(f, dict)}
    return _argocd({"app": attachment["title"], "revision": fields.get("Revision"),
                    "syncStatus": fields.get("Sync Status"), "trigger": "app-deployed"})


def normalize(payload: Any, *, github_event: str | None = None) -> list[Change]:
    """The change events in ``payload``; ``Invalid`` names the first thing that is wrong."""
    if isinstance(payload, dict) and (github_event in {"deployment", "deployment_status"}
                                      or ("deployment" in payload and "repository" in payload)):
        return [_github(payload, github_event)]
    if github_event and github_event not in {"deployment", "deployment_status", "ping"}:
        raise Invalid(f"GitHub event {github_event!r} is not a change; subscribe the webhook to deployment "
                      "and deployment_status only")
    if github_event == "ping":
        return []
    if isinstance(payload, dict) and payload.get("source") == "argocd":
        return [_argocd(payload)]
    if isinstance(payload, dict) and isinstance(payload.get("attachments"), list):
        return [_argocd_catalog(payload)]
    items = payload.get("changes") if isinstance(payload, dict) and "changes" in payload else payload
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise Invalid("a change event is a JSON object (or a list of them, or {\"changes\": [...]})")
    if not items:
        raise Invalid("no change event in the body")
    if len(items) > MAX_EVENTS:
        raise Invalid(f"{len(items)} change events in one body; at most {MAX_EVENTS}")
    return [_generic(item, i) for i, item in enumerate(items)]
