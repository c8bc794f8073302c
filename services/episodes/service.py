"""The agents' memory, wired: working memory per incident, episodic recall, semantic knowledge.

``memory/`` is the library; this module picks its backends from settings (Redis or in-process
working memory, Chroma directory or server, the platform database) and adapts it to the agents'
hooks (``compress``, ``recall``, ``on_resolved``).
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from memory.episodic import Episode, EpisodicMemory
from memory.semantic import SemanticMemory
from memory.vectors import chroma_client, embedding_function
from memory.working import InProcessStore, RedisStore, Role, WorkingMemory
from services.config import Settings
from services.llm import llm_from_settings
from services.storage.base import engine_for

log = logging.getLogger(__name__)
RECALL_MIN_SIMILARITY = 0.5


class AgentMemory:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        store = (RedisStore(settings.broker_url, ttl_seconds=24 * 3600)
                 if settings.broker_url.startswith(("redis://", "rediss://")) else InProcessStore())
        # optional pass over the deterministic compression, with its own fallback; None without an endpoint
        llm = llm_from_settings(settings)
        self.working = WorkingMemory(store, budget_tokens=settings.context_budget_tokens, llm=llm)
        self._lock = threading.Lock()

    @cached_property
    def embedding(self) -> EmbeddingFunction[Documents]:
        """One embedding model per configuration, shared by episodes, knowledge and the drift KB."""
        return embedding_function(self.settings.embedding)

    @cached_property
    def chroma(self):
        if self.settings.chroma_host:
            return chroma_client(host=self.settings.chroma_host, port=self.settings.chroma_port)
        return chroma_client(path=self.settings.chroma_path)

    @cached_property
    def episodic(self) -> EpisodicMemory:
        return EpisodicMemory(engine_for(self.settings.database_url), chroma_client=self.chroma,
                              embedding=self.embedding)

    @cached_property
    def semantic(self) -> SemanticMemory:
        return SemanticMemory(engine_for(self.settings.database_url), chroma_client=self.chroma,
                              embedding=self.embedding)

    # --- hooks handed to the agents -------------------------------------------------------------
    def compress(self, incident_id: int, lines: list[str]) -> str:
        """Probes write raw lines, the compressor folds them; the observer reads the result."""
        key = str(incident_id)
        self.working.as_role(Role.PROBE).write_raw(key, source="probe", text="\n".join(lines))
        self.working.as_role(Role.COMPRESSOR).compress(key)
        return self.working.as_role(Role.OBSERVER).read_compressed(key)

    def recall(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """Similar resolved episodes and promoted knowledge, as votes for the diagnoser."""
        alert = state.get("alert", {})
        query = "\n".join([alert.get("name", ""), alert.get("summary", ""), state.get("context", "")])
        votes: list[dict[str, Any]] = []
        with self._lock:
            for hit in self.episodic.recall(query, k=5, min_similarity=RECALL_MIN_SIMILARITY):
                if hit.outcome in {"resolved", "recovered", "mitigated", "success"} and hit.root_cause:
                    votes.append({"source": "episode", "root_cause": hit.root_cause, "similarity": hit.similarity,
                                  "component": hit.component, "component_kind": hit.component_kind,
                                  "what_worked": hit.what_worked, "time_to_recover_s": hit.time_to_recover_s,
                                  "incident_id": hit.incident_id})
            for entry in self.semantic.lookup(query, k=3).learned:
                if entry.status == "promoted" and entry.similarity >= RECALL_MIN_SIMILARITY:
                    votes.append({"source": "knowledge", "root_cause": entry.root_cause, "similarity": entry.similarity,
                                  "mitigation": entry.mitigation})
        return votes

    def on_resolved(self, state: dict[str, Any]) -> None:
        """Remember the trajectory (episodic), distil it (semantic), drop the scratchpad (working)."""
        from services.incidents.models import Incident
        from services.storage.base import session_scope, utcnow

        incident_id = state["incident_id"]
        plan = state.get("plan") or {}
        with session_scope(self.settings.database_url) as session:
            incident = session.get(Incident, incident_id)
            assert incident is not None, "an episode is recorded for an incident that exists"
            opened, title = incident.opened_at, incident.title
        ttr = (utcnow() - opened).total_seconds()
        alert = state.get("alert", {})
        episode = Episode(
            incident_id=str(incident_id), title=title,
            signals=[alert.get("name", ""), alert.get("summary", "")],
            compressed_context=state.get("context", ""),
            hypotheses=[{k: h[k] for k in ("root_cause", "confidence", "fault", "component", "component_kind") if k in h}
                        | {"evidence": [e.get("detail", "") for e in h.get("evidence", [])[:5] if isinstance(e, dict)]}
                        for h in state.get("hypotheses", [])],
            actions=[{"action": plan.get("action"), "target": plan.get("target"), "succeeded": bool(state.get("recovered"))}]
            if plan else [],
            root_cause=plan.get("root_cause", "") if state.get("recovered") else "",
            outcome=state.get("outcome", "unknown"), time_to_recover_s=ttr, started_at=opened,
        )
        try:
            with self._lock:
                episode_id = self.episodic.record(episode)
                if episode.root_cause:
                    self.semantic.learn_from_episode(episode, episode_id=episode_id)
        finally:
            self.working.as_role(Role.OBSERVER).expire(str(incident_id))


_instances: dict[str, AgentMemory] = {}
_lock = threading.Lock()


def agent_memory(settings: Settings) -> AgentMemory:
    """One per process and configuration: the embedding model loads once."""
    key = f"{settings.database_url}|{settings.chroma_path}|{settings.chroma_host}|{settings.broker_url}"
    with _lock:
        if key not in _instances:
            _instances[key] = AgentMemory(settings)
        return _instances[key]
