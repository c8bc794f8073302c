"""The learning loop's pages: episodes (what happened), knowledge (what was learned from them) and
the causal models (what the node-mitigation policy was trained on and whether its gate passed).

Read-only and read straight from SQL: listing needs neither the vector store nor the embedding
model, so these pages stay up when Chroma is down and load without warming a model.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from memory.models import EpisodeRow, RunbookRow, SemanticEntryRow
from services.api.deps import page_of
from services.storage.base import session_scope

PER_PAGE = 50
KNOWLEDGE_STATUSES = ("candidate", "promoted", "demoted")


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def episodes(database_url: str, *, q: str = "", outcome: str = "", page: int = 1) -> dict[str, Any]:
    with session_scope(database_url) as session:
        query = select(EpisodeRow)
        if q.strip():
            pattern = _like(q.strip())
            query = query.where(or_(EpisodeRow.title.ilike(pattern, escape="\\"),
                                    EpisodeRow.root_cause.ilike(pattern, escape="\\"),
                                    EpisodeRow.incident_id == q.strip().lstrip("#")))
        if outcome:
            query = query.where(EpisodeRow.outcome == outcome)
        result = page_of(session, query, order_by=(EpisodeRow.created_at.desc(), EpisodeRow.id), page=page,
                         per_page=PER_PAGE, view=_episode)
        outcomes = sorted(session.scalars(select(EpisodeRow.outcome).distinct()).all())
    return {"result": result, "outcomes": outcomes}


def _episode(row: EpisodeRow) -> dict[str, Any]:
    actions = [a for a in row.actions or [] if isinstance(a, dict)]
    return {"id": row.id, "incident_id": row.incident_id, "title": row.title, "root_cause": row.root_cause,
            "outcome": row.outcome, "time_to_recover_s": row.time_to_recover_s, "created_at": row.created_at,
            "actions": [f"{a.get('action')} on {a.get('target')}" + ("" if a.get("succeeded") else " (failed)")
                        for a in actions],
            "hypotheses": [str(h.get("root_cause")) for h in (row.hypotheses or [])[:3] if isinstance(h, dict)],
            "linkable": str(row.incident_id).isdigit()}


def knowledge(database_url: str, *, q: str = "", status: str = "", page: int = 1) -> dict[str, Any]:
    with session_scope(database_url) as session:
        query = select(SemanticEntryRow)
        if q.strip():
            pattern = _like(q.strip())
            query = query.where(or_(SemanticEntryRow.signature.ilike(pattern, escape="\\"),
                                    SemanticEntryRow.root_cause.ilike(pattern, escape="\\"),
                                    SemanticEntryRow.mitigation.ilike(pattern, escape="\\")))
        if status:
            query = query.where(SemanticEntryRow.status == status)
        result = page_of(session, query, order_by=(SemanticEntryRow.updated_at.desc(), SemanticEntryRow.id),
                         page=page, per_page=PER_PAGE, view=_entry)
        runbooks = [{"name": r.name, "chunks": r.chunks, "updated_at": r.updated_at}
                    for r in session.scalars(select(RunbookRow).order_by(RunbookRow.name)).all()]
    return {"result": result, "runbooks": runbooks}


def _entry(row: SemanticEntryRow) -> dict[str, Any]:
    tried = row.success_count + row.failure_count
    return {"id": row.id, "signature": row.signature, "root_cause": row.root_cause, "mitigation": row.mitigation,
            "status": row.status, "success": row.success_count, "failure": row.failure_count,
            "rate": row.success_count / tried if tried else None, "last_seen_at": row.last_seen_at}


def models(database_url: str) -> list[dict[str, Any]]:
    """Model cards, newest first: metrics, data window, the refutation gate's verdict per contrast."""
    from services.mitigation.registry import model_registry

    cards = []
    for item in reversed(model_registry(database_url).list()):
        meta = dict(item.meta)
        refutation = meta.get("refutation") or {}
        cards.append({"version": item.version, "active": item.active, "created_at": meta.get("created_at", ""),
                      "metrics": _flat(meta.get("metrics") or {}), "window": _flat(meta.get("data_window") or {}),
                      "gate": refutation.get("passed") if isinstance(refutation, dict) else None,
                      "gate_summary": _flat({k: v for k, v in refutation.items() if k != "passed"})
                      if isinstance(refutation, dict) else [],
                      "extra": _flat({k: v for k, v in meta.items()
                                      if k not in {"metrics", "data_window", "refutation", "created_at"}})})
    return cards


def _flat(data: dict[str, Any], *, prefix: str = "", depth: int = 0, limit: int = 40) -> list[tuple[str, str]]:
    """Nested metadata as (dotted key, short value) rows a card can list; long lists are summarised."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 2:
            rows.extend(_flat(value, prefix=f"{name}.", depth=depth + 1, limit=limit))
        elif isinstance(value, float):
            rows.append((name, f"{value:.4g}"))
        elif isinstance(value, list | dict):
            text = str(value)
            rows.append((name, text if len(text) <= 120 else f"{text[:117]}…"))
        else:
            rows.append((name, str(value)))
        if len(rows) >= limit:
            rows.append(("…", "more fields in GET /api/v1/causal/models/{version}"))
            break
    return rows[: limit + 1]
