"""The simulation loop: inject faults on a schedule, send their alerts, send "resolved" when they clear.

Why a loop of small ``step()`` calls: the demo runs it in a thread beside the platform for a
fixed time, tests drive it step by step, and benchmarks run it without any HTTP at all
(``emit_url=None``). Alerts that cannot be delivered (the platform is still starting) are kept
and retried at the next step rather than lost, as Alertmanager would.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from typing import Any

from sim.alerts import AlertEmitter, EmitError, to_alertmanager
from sim.faults import FAULT_KINDS, Fault, FaultInjector
from sim.fleet import Fleet
from sim.telemetry import Telemetry

log = logging.getLogger(__name__)


class Simulation:
    """Drives faults and alerts on a ``Fleet``; the platform's mitigations clear the faults."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        seed: int = 0,
        fault_interval_s: float = 20.0,
        emit_url: str | None = None,
        first_fault_after_s: float = 2.0,
        max_active_faults: int = 3,
        kinds: tuple[str, ...] | None = None,
        telemetry: Telemetry | None = None,
        emitter: AlertEmitter | None = None,
        watch_cloud: bool = True,
        onset_lead_s: float = 30.0,
        cascade_share: float = 0.3,
        cascade_first: bool = False,
    ) -> None:
        self.fleet = fleet
        self.seed = seed
        self.fault_interval_s = fault_interval_s
        self.max_active_faults = max_active_faults
        self.telemetry = telemetry or Telemetry(fleet, seed=seed)
        self.injector = FaultInjector(fleet, seed=seed, kinds=kinds)
        self.emitter = emitter or (AlertEmitter(emit_url, retries=2, backoff_s=0.2) if emit_url else None)
        self.watch_cloud = watch_cloud
        self.onset_lead_s = onset_lead_s
        self.cascade_share = cascade_share  # share of faults whose alert fires on a dependent service
        # the first fault cascades (when its kind can): a demo then always shows an alert whose cause is upstream
        self.cascade_first = cascade_first
        self._injected = 0
        self.events: list[dict[str, Any]] = []
        self._first_fault_after_s = first_fault_after_s
        self._next_fault_at: float | None = None
        self._firing: dict[str, Fault] = {}
        self._seen: set[str] = {f.id for f in fleet.all_faults()}
        self._pending: list[tuple[Fault, str]] = []
        self._lock = threading.Lock()

    def step(self) -> list[dict[str, Any]]:
        """One tick: notice out-of-band actions, send resolved alerts, inject a fault if one is due."""
        with self._lock:
            now = self.fleet.now()
            if self._next_fault_at is None:
                self._next_fault_at = now + self._first_fault_after_s
            new_events: list[dict[str, Any]] = []
            if self.watch_cloud:
                try:
                    for result in self.fleet.sync_from_cloud():
                        new_events.append({"type": "observed_action", "at": now, **result.to_dict()})
                except Exception as exc:  # the cloud being briefly unreachable must not stop the loop
                    log.warning("sync_from_cloud failed: %s", exc)
            for fault_id, fault in list(self._firing.items()):
                if not fault.active:
                    del self._firing[fault_id]
                    new_events.append({"type": "resolved", "at": now, "fault": fault.to_dict()})
                    self._pending.append((fault, "resolved"))
            if now >= self._next_fault_at:
                self._next_fault_at = now + self.fault_interval_s
                if len(self.fleet.active_faults()) < self.max_active_faults:
                    try:
                        # the fault began onset_lead_s ago: alerting rules fire after a "for:" period,
                        # so by the time the alert arrives metrics and logs already hold evidence
                        kind = self.injector.rng.choice(self.injector.kinds)
                        opening = self.cascade_first and self._injected == 0
                        cascade = (FAULT_KINDS[kind].cascade_alert is not None
                                   and (self.injector.rng.random() < self.cascade_share or opening))
                        self._injected += 1
                        try:
                            self.injector.inject(kind, at=now - self.onset_lead_s, cascade=cascade)
                        except RuntimeError:  # nothing to cascade to from a free target: a direct fault
                            self.injector.inject(kind, at=now - self.onset_lead_s)
                    except RuntimeError as exc:  # no free target right now
                        log.info("no fault injected: %s", exc)
            # every new fault fires, whoever injected it (this loop, a test, the /inject endpoint)
            for fault in self.fleet.all_faults():
                if fault.id in self._seen:
                    continue
                self._seen.add(fault.id)
                new_events.append({"type": "injected", "at": now, "fault": fault.to_dict()})
                self._pending.append((fault, "firing"))
                if fault.active:
                    self._firing[fault.id] = fault
                else:
                    self._pending.append((fault, "resolved"))
            new_events += self._flush()
            self.events += new_events
            return new_events

    def _flush(self) -> list[dict[str, Any]]:
        """Send queued alerts; keep the ones that fail for the next step."""
        if self.emitter is None:
            self._pending.clear()
            return []
        events, keep = [], []
        for fault, status in self._pending:
            payload = to_alertmanager(fault, fleet=self.fleet, status=status, telemetry=self.telemetry)
            try:
                response = self.emitter.emit(payload)
            except EmitError as exc:
                log.warning("alert for %s not delivered yet: %s", fault.id, exc)
                keep.append((fault, status))
                continue
            events.append(
                {
                    "type": "alert_sent",
                    "at": self.fleet.now(),
                    "fault_id": fault.id,
                    "status": status,
                    "http_status": response.status_code,
                    "groupKey": payload["groupKey"],
                }
            )
        self._pending = keep
        return events

    def run(
        self, duration_s: float, stop_event: threading.Event | None = None, *, tick_s: float = 0.5
    ) -> dict[str, Any]:
        """Step every ``tick_s`` until ``duration_s`` has passed or ``stop_event`` is set; return ``summary()``."""
        stop_event = stop_event or threading.Event()
        deadline = time.monotonic() + duration_s
        while not stop_event.is_set() and time.monotonic() < deadline:
            self.step()
            stop_event.wait(min(tick_s, max(0.0, deadline - time.monotonic())))
        self.step()  # deliver the resolved alerts of the last mitigations
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """Faults injected and resolved, mean time to recover, and how mitigations fared against ground truth."""
        faults = self.fleet.all_faults()
        resolved = [f for f in faults if f.resolved_at is not None]
        ttr = [f.time_to_recover_s for f in resolved if f.time_to_recover_s is not None]
        attempts = [a for f in faults for a in f.attempts]
        by_kind: dict[str, dict[str, int]] = {}
        for f in faults:
            row = by_kind.setdefault(f.kind, {"injected": 0, "resolved": 0})
            row["injected"] += 1
            row["resolved"] += int(f.resolved_at is not None)
        return {
            "cluster": self.fleet.cluster,
            "faults_injected": len(faults),
            "faults_resolved": len(resolved),
            "faults_active": len(faults) - len(resolved),
            "mean_time_to_recover_s": statistics.fmean(ttr) if ttr else None,
            "max_time_to_recover_s": max(ttr) if ttr else None,
            "mitigation_attempts": len(attempts),
            "wrong_mitigations": sum(1 for a in attempts if not a.get("fixed")),
            # every action the fleet saw, and those on a component that had an active fault then (the right one)
            "actions_executed": len(self.fleet.mitigation_log),
            "actions_on_a_faulty_component": sum(1 for a in self.fleet.mitigation_log if a["on_faulty"]),
            "actions_that_fixed": sum(1 for a in self.fleet.mitigation_log if a["fixed"]),
            # faults whose alert fired on a dependent: the incident is right only when diagnosed to ``target``
            "cascades": [{"target": f.target, "node": f.node, "service": f.service, "alert_service": f.alert_service,
                          "kind": f.kind, "started_at": f.started_at, "resolved_by": f.resolved_by}
                         for f in faults if f.alert_service],
            "alerts_sent": self.emitter.sent if self.emitter else 0,
            "alerts_failed": self.emitter.failed if self.emitter else 0,
            "alerts_pending": len(self._pending),
            "by_kind": by_kind,
        }

    def close(self) -> None:
        if self.emitter is not None:
            self.emitter.close()
