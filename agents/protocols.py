"""What the agents need from the outside world, stated as small Protocols.

``services/`` supplies the implementations (SQL store, boto3 or simulator cloud, telemetry), so the
agents stay testable with no server and never import ``services/``.
"""

from __future__ import annotations

from typing import Any, Protocol


class IncidentStore(Protocol):
    def add_event(self, incident_id: int, *, kind: str, actor: str, message: str,
                  data: dict[str, Any] | None = None, dedup_key: str | None = None) -> None: ...

    def update_incident(self, incident_id: int, **fields: Any) -> None: ...

    def save_hypotheses(self, incident_id: int, hypotheses: list[dict[str, Any]]) -> None: ...

    def request_approval(self, incident_id: int, *, action: str, target: str, risk: str, reason: str,
                         round: int = 0) -> int:
        """Idempotent per (action, target, round): the approving node runs again on resume. ``round`` > 0
        asks again after the earlier request went stale (it is passed only then)."""
        ...

    def begin_action(self, key: str, *, incident_id: int, kind: str, target: str, risk: str,
                     params: dict[str, Any]) -> dict[str, Any] | None:
        """Record an action as started; return the earlier result if this key already finished."""
        ...

    def finish_action(self, key: str, *, status: str, result: dict[str, Any]) -> None: ...

    def actions_in_last_hour(self) -> int: ...

    def source_status(self, incident_id: int) -> dict[str, Any]:
        """``{firing, resolved, ended_at}`` of the incident's alerts at their source (optional for a store:
        without it the actor never learns that the world moved on)."""
        ...


class Telemetry(Protocol):
    """Read-only probes. ``metrics``/``logs``/``health`` are required; the kinds below are optional.

    Optional kinds (the observer calls them through ``getattr`` and treats a missing method, an
    error or an empty answer as "this source cannot tell"):

    * ``topology() -> {"edges": [[caller, callee], ...], "placement": {service: node},
      "components": {name: kind}}`` - the call graph and where services run;
    * ``traces(target, *, minutes) -> [{"caller", "callee", "latency": [(t, v)], "errors": [(t, v)]}]``
      - per-edge latency and error-share series for edges touching ``target``;
    * ``changes(*, minutes) -> [{"at", "component", "kind", "detail"}]`` - deploys, config and
      out-of-band cloud changes.

    ``metrics`` takes any component name (service, node, database, ...), not only the alerted ones.
    """

    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]: ...

    def logs(self, target: str, *, minutes: int = 15) -> list[str]: ...

    def health(self, target: str) -> bool | None:
        """True healthy, False unhealthy, None when this source cannot tell."""
        ...


class CloudActions(Protocol):
    def execute(self, action: str, target: str, *, params: dict[str, Any]) -> dict[str, Any]: ...

    def describe(self, target: str) -> dict[str, Any]: ...


class NullTelemetry:
    """Used where no telemetry source is configured: probes return nothing, so diagnosis relies on the alert."""

    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]:
        return {}

    def logs(self, target: str, *, minutes: int = 15) -> list[str]:
        return []

    def health(self, target: str) -> bool | None:
        return None

    def topology(self) -> dict[str, Any]:
        return {}

    def traces(self, target: str, *, minutes: int = 15) -> list[dict[str, Any]]:
        return []

    def changes(self, *, minutes: int = 60) -> list[dict[str, Any]]:
        return []
