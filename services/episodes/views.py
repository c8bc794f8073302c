"""Memory API: operator runbooks in, knowledge and similar episodes out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile

from services.api.deps import SafeStr, app_settings
from services.audit.service import record
from services.auth.deps import require
from services.config import Settings
from services.episodes.service import agent_memory
from services.storage.base import session_scope

router = APIRouter(prefix="/api/v1/memory", tags=["memory"])
MAX_RUNBOOK = 1_000_000


@router.post("/runbooks", status_code=201, summary="Upload a Markdown runbook; its sections are indexed")
async def upload_runbook(file: UploadFile = File(...), user: str = Depends(require("operator")),
                         settings: Settings = Depends(app_settings)) -> dict:
    raw = await file.read()
    if len(raw) > MAX_RUNBOOK:
        raise HTTPException(413, f"runbook of {len(raw)} bytes exceeds {MAX_RUNBOOK} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(415, "runbooks must be UTF-8 text (Markdown)") from None
    if not text.strip():
        raise HTTPException(422, "the runbook is empty")
    name = file.filename or "runbook.md"
    chunks = agent_memory(settings).semantic.index_runbook(name, text)
    with session_scope(settings.database_url) as session:
        record(session, actor=user, action="memory.runbook", subject=name, data={"chunks": chunks})
    return {"name": name, "chunks": chunks}


@router.get("/knowledge", summary="Learned knowledge and runbook sections for a fault signature")
def knowledge(user: str = Depends(require("viewer")),
              q: SafeStr = Query(..., min_length=2, max_length=4000, description="symptoms, alert text or log lines"),
              k: int = Query(5, ge=1, le=50), settings: Settings = Depends(app_settings)) -> dict:
    found = agent_memory(settings).semantic.lookup(q, k=k)

    def view(item) -> dict:
        return {"kind": item.kind, "similarity": round(item.similarity, 4), "text": item.text,
                "root_cause": item.root_cause, "mitigation": item.mitigation, "status": item.status,
                "success_count": item.success_count, "failure_count": item.failure_count,
                "episode_ids": item.episode_ids, "runbook": item.runbook}

    return {"learned": [view(x) for x in found.learned], "runbooks": [view(x) for x in found.runbooks]}


@router.get("/episodes", summary="Past incidents similar to a description")
def similar_episodes(user: str = Depends(require("viewer")),
                     q: SafeStr = Query(..., min_length=2, max_length=4000), k: int = Query(5, ge=1, le=50),
                     settings: Settings = Depends(app_settings)) -> dict:
    hits = agent_memory(settings).episodic.recall(q, k=k)
    return {"items": [{"incident_id": h.incident_id, "similarity": round(h.similarity, 4), "title": h.title,
                       "root_cause": h.root_cause, "outcome": h.outcome, "what_worked": h.what_worked,
                       "what_failed": h.what_failed, "time_to_recover_s": h.time_to_recover_s} for h in hits]}
