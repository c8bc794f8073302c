"""Knowledge base of past reconciliations (Chroma): trace pattern, patch, reviewer's verdict.

Used twice: to explain API calls the rule table does not know (an approved template for the same
call shape), and to rank a proposal's alternative patches (strategies reviewers approved for
similar patterns first, rejected ones last). Updated on every approve/reject.

iac/ may not import memory/, so the Chroma client and the embedding function are parameters;
chromadb's default embedding function is never used (it downloads a model).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from iac.models import Intent, Proposal, TraceRecord
from iac.templates import apply_template, pattern_text


def proposal_pattern(proposal: Proposal) -> str:
    names = " ".join(f"{r.service}:{r.event_name}" for r in proposal.records)
    types = " ".join(sorted({i.resource_type for i in proposal.intents}))
    attrs = " ".join(sorted({f"{i.kind}:{i.attribute}" for i in proposal.intents}))
    return f"{names} | {types} | {attrs}"


class KnowledgeBase:
    def __init__(self, client: Any, *, embedding_function: Any, collection: str = "nsync_reconciliations",
                 max_distance: float = 0.35):
        if embedding_function is None:
            raise ValueError("pass an embedding_function (chromadb's default downloads a model)")
        self.collection = client.get_or_create_collection(
            name=collection, embedding_function=embedding_function, metadata={"hnsw:space": "cosine"})
        self.max_distance = max_distance

    def count(self) -> int:
        return self.collection.count()

    # ------------------------------------------------------------------ learning
    def record_verdict(self, proposal: Proposal, *, approved: bool, reason: str = "",
                       templates: list[dict[str, Any]] | None = None) -> str:
        """Store one reviewed reconciliation (approved or rejected, and why)."""
        doc = proposal_pattern(proposal)
        strategies = sorted({c.strategy for c in proposal.changes})
        doc_id = hashlib.sha1(f"{proposal.id}:{approved}:{doc}".encode()).hexdigest()
        meta = {
            "verdict": "approved" if approved else "rejected", "reason": reason[:500],
            "strategies": ",".join(strategies), "rank_note": proposal.rank_note or "primary",
            "events": ",".join(sorted({r.event_name for r in proposal.records})),
            "templates": json.dumps(templates or [])[:8000], "diff": proposal.diff[:4000],
        }
        self.collection.upsert(ids=[doc_id], documents=[doc], metadatas=[meta])
        return doc_id

    def add_template(self, template: dict[str, Any], *, approved: bool = True, reason: str = "") -> str:
        """A reviewed mapping for a call the rules do not know (from a person or an LLM proposal)."""
        doc = f"{template.get('service', '')} {template.get('event', '')} template"
        doc_id = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()
        self.collection.upsert(ids=[doc_id], documents=[doc], metadatas=[{
            "verdict": "approved" if approved else "rejected", "reason": reason, "strategies": "",
            "rank_note": "template", "events": str(template.get("event", "")),
            "templates": json.dumps([template]), "diff": ""}])
        return doc_id

    # ------------------------------------------------------------------ using it
    def suggest(self, record: TraceRecord) -> list[Intent] | None:
        """Intents for an unknown call from the closest approved template for the same event."""
        if self.collection.count() == 0:
            return None
        res = self.collection.query(query_texts=[pattern_text(record)], n_results=min(5, self.collection.count()),
                                    where={"verdict": "approved"})
        for meta in (res.get("metadatas") or [[]])[0]:
            if record.event_name not in (meta.get("events") or "").split(","):
                continue
            for template in json.loads(meta.get("templates") or "[]"):
                intents = apply_template(template, record, source="kb")
                if intents:
                    return intents
        return None

    def rank(self, proposals: list[Proposal]) -> list[Proposal]:
        """Order alternatives: strategies approved for similar patterns up, rejected ones down."""
        if len(proposals) < 2 or self.collection.count() == 0:
            return proposals
        doc = proposal_pattern(proposals[0])
        res = self.collection.query(query_texts=[doc], n_results=min(10, self.collection.count()))
        votes: dict[str, float] = {}
        for meta, dist in zip((res.get("metadatas") or [[]])[0], (res.get("distances") or [[]])[0], strict=False):
            if dist is None or dist > self.max_distance:
                continue
            weight = 1.0 - dist
            sign = 1.0 if meta.get("verdict") == "approved" else -1.0
            votes[meta.get("rank_note") or "primary"] = votes.get(meta.get("rank_note") or "primary", 0.0) + sign * weight
        order = sorted(range(len(proposals)), key=lambda i: (-votes.get(proposals[i].rank_note or "primary", 0.0), i))
        return [proposals[i] for i in order]
