"""The causal model registry in the platform database (causal.registry.RegistryStore over SQL).

A model trained by a jobs worker is visible to the actor on an agents worker and to the API the
moment its transaction commits; promotion is one row update, so every process agrees on the
active version. `active_policy` polls only that pointer row and reloads the artifact when it moves.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from causal.registry import ModelRegistry, RegistryError, StoredVersion, version_name
from services.mitigation.models import CausalModelPointer, CausalModelVersion
from services.storage.base import session_scope
from services.storage.upsert import upsert

log = logging.getLogger(__name__)

ACTIVE_SLOT = "active"


class SqlRegistryStore:
    """Versions as rows (artifact in a LargeBinary column), the active version as a pointer row."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def put(self, blob: bytes, *, meta: dict[str, Any]) -> StoredVersion:
        for _ in range(20):  # two trainers racing for the next number: the loser retries with the next one
            try:
                with session_scope(self.database_url) as session:
                    number = (session.scalar(select(func.max(CausalModelVersion.number))) or 0) + 1
                    row = CausalModelVersion(number=number, version=version_name(number), meta=meta, artifact=blob,
                                             sha256=hashlib.sha256(blob).hexdigest(), size_bytes=len(blob))
                    session.add(row)
                    session.flush()
                return StoredVersion(row.version, meta, location=self._location(row.version))
            except IntegrityError:
                continue
        raise RegistryError("could not allocate a model version number (too many concurrent trainers)")

    def get(self, version: str) -> bytes:
        with session_scope(self.database_url) as session:
            blob = session.scalar(select(CausalModelVersion.artifact).where(CausalModelVersion.version == version))
        if blob is None:
            raise RegistryError(f"unknown model version {version!r}")
        return bytes(blob)

    def list(self) -> list[StoredVersion]:
        with session_scope(self.database_url) as session:
            active = self._active(session)
            rows = session.execute(select(CausalModelVersion.version, CausalModelVersion.meta)
                                   .order_by(CausalModelVersion.number)).all()
        return [StoredVersion(version, meta, active=version == active, location=self._location(version))
                for version, meta in rows]

    def set_active(self, version: str, *, info: dict[str, Any]) -> None:
        with session_scope(self.database_url) as session:
            if session.scalar(select(CausalModelVersion.number).where(CausalModelVersion.version == version)) is None:
                raise RegistryError(f"unknown model version {version!r}")
            promoted_at = datetime.fromisoformat(info["promoted_at"]) if "promoted_at" in info else None
            values: dict[str, Any] = {"slot": ACTIVE_SLOT, "version": version, "info": info}
            if promoted_at is not None:
                values["promoted_at"] = promoted_at
            upsert(session, CausalModelPointer, values=values, keys=["slot"])

    def active_version(self) -> str | None:
        with session_scope(self.database_url) as session:
            return self._active(session)

    def active_fingerprint(self) -> tuple[str, str] | None:
        """(version, artifact sha256) of the active model: one indexed join, no artifact read."""
        with session_scope(self.database_url) as session:
            row = session.execute(
                select(CausalModelPointer.version, CausalModelVersion.sha256)
                .join(CausalModelVersion, CausalModelVersion.version == CausalModelPointer.version)
                .where(CausalModelPointer.slot == ACTIVE_SLOT)).first()
        return None if row is None else (row[0], row[1])

    @staticmethod
    def _active(session) -> str | None:
        return session.scalar(select(CausalModelPointer.version).where(CausalModelPointer.slot == ACTIVE_SLOT))

    @staticmethod
    def _location(version: str) -> str:
        return f"db:causal_models/{version}"


def model_registry(database_url: str) -> ModelRegistry:
    """The platform's registry: the causal library's rules over the database store."""
    return ModelRegistry(SqlRegistryStore(database_url))


@dataclass
class PolicyCache:
    """Loaded policies keyed by (database, version, artifact hash).

    WHY a key with the hash: every call re-reads the pointer (one small query) so a promotion made
    by another process is seen on the next recommendation, while the artifact is unpickled once per
    version; the hash keeps two databases that both have a "v0001" apart.
    """

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entries: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def get(self, database_url: str) -> Any | None:
        """The active model wrapped in its MitigationPolicy, or None when nothing is promoted."""
        from causal.policy import MitigationPolicy, PolicyConfig

        store = SqlRegistryStore(database_url)
        fingerprint = store.active_fingerprint()
        if fingerprint is None:
            return None
        key = (database_url, *fingerprint)
        with self._lock:
            policy = self._entries.get(key)
            if policy is None:
                registry = ModelRegistry(store)
                version = fingerprint[0]
                meta = registry.get(version).meta
                if meta.get("schema"):
                    # trained on an operator's declared features, which the actor does not observe
                    log.warning("active causal model %s was trained with a declared schema; the actor serves "
                                "models on the built-in node features only", version)
                    return None
                config = PolicyConfig(**(meta.get("policy_config") or {}))
                policy = MitigationPolicy(registry.load(version), config=config, model_version=version)
                # keep only the newest policy per database: older versions are not asked for again
                for stale in [k for k in self._entries if k[0] == database_url]:
                    del self._entries[stale]
                self._entries[key] = policy
            return policy
