"""The configured telemetry source plus what the platform itself receives: change events posted to
``/api/v1/changes`` and spans exported to ``/api/v1/otlp/v1/traces``.

``metrics``/``logs``/``health`` are the source's. ``changes``, ``traces`` and ``topology`` merge the
source's answer (when it has the method) with the database's; a failing side is "cannot tell", never
an error, so diagnosis goes on with what the other side knows.
"""

from __future__ import annotations

import logging
from typing import Any

from agents.protocols import Telemetry
from services.changes.service import recent_changes
from services.traces.service import trace_edges, trace_topology

log = logging.getLogger(__name__)


class StoredSignals:
    def __init__(self, inner: Telemetry, *, database_url: str, topology_minutes: int = 60) -> None:
        self.inner, self.database_url, self.topology_minutes = inner, database_url, topology_minutes

    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]:
        return self.inner.metrics(target, minutes=minutes)

    def logs(self, target: str, *, minutes: int = 15) -> list[str]:
        return self.inner.logs(target, minutes=minutes)

    def health(self, target: str) -> bool | None:
        return self.inner.health(target)

    def _theirs(self, name: str, *args: Any, default: Any, **kwargs: Any) -> Any:
        method = getattr(self.inner, name, None)
        if method is None:
            return default
        try:
            return method(*args, **kwargs) or default
        except Exception:  # the source's optional kind failing is "cannot tell"
            log.warning("telemetry source %s.%s failed", type(self.inner).__name__, name, exc_info=True)
            return default

    def _ours(self, fn: Any, *args: Any, default: Any, **kwargs: Any) -> Any:
        try:
            return fn(self.database_url, *args, **kwargs)
        except Exception:
            log.warning("stored %s unavailable", fn.__name__, exc_info=True)
            return default

    def changes(self, *, minutes: int = 60) -> list[dict[str, Any]]:
        return [*self._ours(recent_changes, minutes=minutes, default=[]),
                *self._theirs("changes", minutes=minutes, default=[])]

    def traces(self, target: str, *, minutes: int = 15) -> list[dict[str, Any]]:
        ours = self._ours(trace_edges, target, minutes=minutes, default=[])
        seen = {(e["caller"], e["callee"]) for e in ours}
        theirs = [e for e in self._theirs("traces", target, minutes=minutes, default=[])
                  if (e.get("caller"), e.get("callee")) not in seen]
        return [*ours, *theirs]

    def topology(self) -> dict[str, Any]:
        ours = self._ours(trace_topology, minutes=self.topology_minutes, default={})
        theirs = self._theirs("topology", default={})
        if not ours or not theirs:
            return ours or theirs
        edges = {tuple(e) for e in theirs.get("edges", [])} | {tuple(e) for e in ours.get("edges", [])}
        return {"edges": [list(e) for e in sorted(edges)],
                "placement": {**ours.get("placement", {}), **theirs.get("placement", {})},
                "components": {**ours.get("components", {}), **theirs.get("components", {})}}
