"""HTTP connectors: telemetry from a metrics/logs API and mitigations through a runbook-automation API.

The simulator serves both (``sim/server.py``); in production they front Prometheus/Loki and a
runbook runner. Each call has a timeout, and a failure is an answer ("cannot tell"), not a crash.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


class HttpTelemetry:
    """``GET /metrics|/logs|/health?target=...`` (the simulator's probe API; ``/health`` answers
    ``{"target", "healthy", "breaches": [...], ...}``), plus the optional
    ``/topology``, ``/traces?target=`` and ``/changes`` where the source serves them."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def _get(self, path: str, target: str, **params: Any) -> dict[str, Any] | None:
        try:
            response = self.client.get(path, params={"target": target, **params})
        except httpx.HTTPError as exc:
            log.warning("telemetry %s for %s failed: %s", path, target, exc)
            return None
        return response.json() if response.status_code == 200 else None

    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]:
        body = self._get("/metrics", target, minutes=minutes) or {}
        return {name: [(float(t), float(v)) for t, v in points] for name, points in body.get("series", {}).items()}

    def logs(self, target: str, *, minutes: int = 15) -> list[str]:
        return list((self._get("/logs", target, minutes=minutes) or {}).get("lines", []))

    def health(self, target: str) -> bool | None:
        """``healthy`` of ``GET /health``, and unhealthy while ``breaches`` lists anything.

        WHY both: the contract's ``breaches`` are the thresholds the component still breaks (a disk
        or CPU limit); a source whose ``healthy`` only means "answers" would otherwise report a live
        node with a failing disk as healthy. No ``healthy`` field is "cannot tell".
        """
        body = self._get("/health", target)
        if body is None:
            return None
        if body.get("breaches"):
            return False
        healthy = body.get("healthy")
        return None if healthy is None else bool(healthy)

    # optional kinds: an endpoint the source does not have (404) answers "cannot tell", i.e. empty
    def topology(self) -> dict[str, Any]:
        body = self._get("/topology", "") or {}
        return {k: body[k] for k in ("edges", "placement", "components") if k in body}

    def traces(self, target: str, *, minutes: int = 15) -> list[dict[str, Any]]:
        return list((self._get("/traces", target, minutes=minutes) or {}).get("edges", []))

    def changes(self, *, minutes: int = 60) -> list[dict[str, Any]]:
        return list((self._get("/changes", "", minutes=minutes) or {}).get("changes", []))


class HttpActions:
    """``POST /mitigate {target, action}``: the automation endpoint runs the cloud calls and reports back."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def execute(self, action: str, target: str, *, params: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/mitigate", json={"target": target, "action": action})
        if response.status_code != 200:
            raise RuntimeError(f"mitigation endpoint answered {response.status_code}: {response.text[:300]}")
        body = response.json()
        if not body.get("ok", True):
            raise RuntimeError(body.get("message", "mitigation failed"))
        # keep what the platform may know (calls made, downtime) and not the simulator's private verdict
        return {k: body[k] for k in ("cloud_calls", "expected_downtime_s", "message") if k in body}

    def describe(self, target: str) -> dict[str, Any]:
        response = self.client.get("/health", params={"target": target})
        return response.json() if response.status_code == 200 else {"healthy": None}
