"""The observer's look reaches back before the alert's start, however late the incident is picked up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.observer import covering_minutes, observe
from agents.tools import AgentTools

START = 1_800_000_000.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


class Store:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add_event(self, incident_id, *, kind, actor, message, data=None, dedup_key=None):
        self.events.append({"kind": kind, "message": message, "data": data or {}})

    def update_incident(self, incident_id, **fields):
        pass


class Telemetry:
    """One node whose packet drops rose at START; ``metrics`` answers the last ``minutes`` before ``now``."""

    def __init__(self, now: float) -> None:
        self.now, self.asked = now, []

    def metrics(self, target, *, minutes=15):
        self.asked.append(minutes)
        if target != "node-1":
            return {}
        points = [(t, 900.0 if t >= START else 2.0 + (t // 60) % 3)
                  for t in range(int(START - 7200), int(self.now) + 1, 60) if t >= self.now - minutes * 60]
        return {"net_rx_drops": points}

    def logs(self, target, *, minutes=15):
        return []


def test_an_incident_looked_at_on_time_keeps_the_scopes_window():
    assert covering_minutes({"starts_at": iso(START)}, minutes=30, now=START + 120) == 30
    assert covering_minutes({}, minutes=30, now=START + 7200) == 30  # no start known: nothing to reach back to


def test_a_late_incident_looks_back_past_the_alerts_start():
    minutes = covering_minutes({"starts_at": iso(START)}, minutes=30, now=START + 3600)
    assert minutes == 60 + 20  # the hour since the start and two thirds of the window before it


def test_the_observer_finds_the_shift_of_an_incident_picked_up_an_hour_late():
    now = START + 3600
    telemetry = Telemetry(now)
    tools = AgentTools(store=Store(), cloud=None, telemetry=telemetry, clock=lambda: now)  # type: ignore[arg-type]
    alert = {"name": "NodeNetworkReceiveErrs", "node": "node-1", "service": None, "labels": {"job": "node"},
             "summary": "node-1 drops packets", "starts_at": iso(START)}
    out = observe({"incident_id": 1, "alert": alert}, tools=tools)
    moved = out["signals"]["case"]["components"]["node-1"]["metrics"]
    assert telemetry.asked and min(telemetry.asked) > 60
    assert any(e["metric"] == "net_rx_drops" and e["after"] > e["before"] for e in moved)
