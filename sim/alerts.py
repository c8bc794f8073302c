"""Alerts as Prometheus Alertmanager would send them (webhook payload version 4), and an HTTP emitter.

Why the real wire format: the platform's ingest must accept what a real Alertmanager posts, so
the simulator speaks exactly that (same keys, group key syntax, RFC 3339 times with the zero
``endsAt`` of firing alerts, and fingerprints computed the way Prometheus' ``model.LabelSet``
computes them). Alerts carry symptoms only (alert name, where, measured values); the fault kind
stays in the simulator's ground truth.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from sim.faults import FAULT_KINDS, Fault

if TYPE_CHECKING:
    from sim.fleet import Fleet
    from sim.telemetry import Telemetry

log = logging.getLogger(__name__)

ZERO_TIME = "0001-01-01T00:00:00Z"

# The alerting rule each alert name stands for (shown in generatorURL, as Prometheus does).
RULES = {
    "NodeDiskIOErrors": "rate(node_disk_io_errors_total[5m]) > 5",
    "NodeHeartbeatMissing": 'absent_over_time(up{job="node"}[1m]) or up{job="node"} == 0',
    "ServiceHighMemory": "container_memory_working_set_bytes / container_spec_memory_limit_bytes > 0.92",
    "ServiceHighErrorRate": (
        'sum by (service, instance) (rate(http_requests_total{code=~"5.."}[5m]))'
        " / sum by (service, instance) (rate(http_requests_total[5m])) > 0.05"
    ),
    "ServiceHighLatency": (
        "histogram_quantile(0.99, sum by (service, instance, le) (rate(http_request_duration_seconds_bucket[5m]))) > 1.5"
    ),
    "NodeMemoryHighUtilization": "100 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100) > 92",
    "NodeNetworkReceiveErrs": "rate(node_network_receive_drop_total[2m]) > 50",
    "NodeCPUStealHigh": 'avg by (instance) (rate(node_cpu_seconds_total{mode="steal"}[5m])) * 100 > 20',
}
# the summary a service alert carries when a fault elsewhere surfaces on it (a cascade)
SERVICE_SUMMARIES = {
    "ServiceHighMemory": "{service} memory usage keeps growing",
    "ServiceHighErrorRate": "{service} error rate above 5%",
    "ServiceHighLatency": "{service} p99 latency above SLO",
}

# The metric each alert's description quotes.
_QUOTED_METRIC = {
    "NodeDiskIOErrors": "disk_io_errors",
    "NodeHeartbeatMissing": "heartbeat",
    "ServiceHighMemory": "mem",
    "ServiceHighErrorRate": "error_rate",
    "ServiceHighLatency": "latency_p99_ms",
    "NodeMemoryHighUtilization": "mem",
    "NodeNetworkReceiveErrs": "net_rx_drops",
    "NodeCPUStealHigh": "cpu_steal",
}

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def fingerprint(labels: dict[str, str]) -> str:
    """Prometheus ``model.LabelSet.Fingerprint()``: FNV-1a 64 over sorted name/value pairs, as 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), bytes([_SEPARATOR]), str(labels[name]).encode(), bytes([_SEPARATOR])):
            for byte in chunk:
                h ^= byte
                h = (h * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ts: float) -> str:
    """Alertmanager's time format (Go's RFC3339Nano in UTC)."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def _label_set_string(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def to_alertmanager(
    fault: Fault,
    *,
    fleet: Fleet,
    status: str | None = None,
    telemetry: Telemetry | None = None,
    receiver: str = "aiops-platform",
    external_url: str = "http://alertmanager.sim.local:9093",
) -> dict[str, Any]:
    """The webhook v4 payload Alertmanager would post for ``fault`` (firing, or resolved once it is).

    A node fault gives one alert for the node; a service fault gives one alert per node running
    the service (the rules aggregate ``by (service, instance)``), grouped into one notification.
    """
    spec = FAULT_KINDS[fault.kind]
    status = status or ("resolved" if fault.resolved_at is not None else "firing")
    if status not in ("firing", "resolved"):
        raise ValueError("status must be 'firing' or 'resolved'")
    alertname, severity, level = spec.alertname, spec.severity, fault.level
    if fault.alert_service and spec.cascade_alert:  # a cascade: the dependent service is what alerts
        alertname, severity, level = spec.cascade_alert, "warning", "service"
        hosts = ([fleet.node(fault.target)] if fault.level == "node"
                 else [fleet.node(n) for n in fleet.services.get(fault.alert_service, [])])
        group_by = ("alertname", "cluster", "service")
        summary = SERVICE_SUMMARIES[alertname].format(service=fault.alert_service)
    elif fault.level == "node":
        hosts = [fleet.node(fault.target)]
        group_by = ("alertname", "cluster", "node")
        summary = spec.summary.format(node=fault.node or "", service=fault.service or fault.target)
    else:
        hosts = [fleet.node(n) for n in fleet.services.get(fault.target, [])]
        group_by = ("alertname", "cluster", "service")
        summary = spec.summary.format(node=fault.node or "", service=fault.service or fault.target)
    ends_at = rfc3339(fault.resolved_at) if status == "resolved" and fault.resolved_at else ZERO_TIME
    alerts: list[dict[str, Any]] = []
    for node in hosts:
        service = fault.alert_service or fault.service or (node.services[0] if node.services else "")
        labels = {
            "alertname": alertname,
            "severity": severity,
            "cluster": fleet.cluster,
            "instance": f"{node.private_ip}:{9100 if level == 'node' else 8080}",
            "instance_id": node.instance_id,
            "job": "node" if level == "node" else service,
            "node": node.id,
            "service": service,
        }
        labels = {k: v for k, v in labels.items() if v}  # Prometheus drops empty labels
        description = _describe(
            alertname, node=node.id, service=service, telemetry=telemetry, fault=fault
        )
        expr = RULES.get(alertname, "")
        alerts.append(
            {
                "status": status,
                "labels": labels,
                "annotations": {
                    "summary": summary,
                    "description": description,
                    "runbook_url": f"https://runbooks.sim.local/alerts/{alertname}",
                },
                "startsAt": rfc3339(fault.started_at),
                "endsAt": ends_at,
                "generatorURL": f"http://prometheus.sim.local:9090/graph?g0.expr={quote(expr)}&g0.tab=1",
                "fingerprint": fingerprint(labels),
            }
        )
    common_labels = {
        k: v for k, v in alerts[0]["labels"].items() if all(a["labels"].get(k) == v for a in alerts)
    }
    group_labels = {k: common_labels[k] for k in group_by if k in common_labels}
    common_annotations = {
        k: v for k, v in alerts[0]["annotations"].items() if all(a["annotations"].get(k) == v for a in alerts)
    }
    return {
        "receiver": receiver,
        "status": status,
        "alerts": alerts,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": external_url,
        "version": "4",
        "groupKey": "{}:" + _label_set_string(group_labels),
        "truncatedAlerts": 0,
    }


def _describe(alertname: str, *, node: str, service: str, telemetry: Telemetry | None, fault: Fault) -> str:
    metric = _QUOTED_METRIC.get(alertname, "")
    value = ""
    if telemetry is not None and metric:
        series = telemetry.metrics(node, minutes=1, now=max(fault.started_at + 1, telemetry.fleet.now()))[
            metric
        ]
        if series:
            value = f" (current {metric}={series[-1][1]})"
    where = f"{node}" + (f" / {service}" if service else "")
    texts = {
        "NodeDiskIOErrors": f"{where} reports disk I/O errors above 5/min{value}.",
        "NodeHeartbeatMissing": f"{where} missed node_exporter heartbeats in the last minute{value}.",
        "ServiceHighMemory": f"{service} on {node} uses more than 92% of its memory limit{value}.",
        "ServiceHighErrorRate": f"{service} on {node} answers more than 5% of requests with 5xx{value}.",
        "ServiceHighLatency": f"{service} on {node} has p99 latency above 1.5s{value}.",
        "NodeMemoryHighUtilization": f"{where} has less than 8% of its memory available{value}.",
        "NodeNetworkReceiveErrs": f"{where} drops more than 50 received packets/s{value}.",
        "NodeCPUStealHigh": f"{where} loses more than 20% of CPU time to steal{value}.",
    }
    return texts.get(alertname, f"{alertname} on {where}{value}.")


class EmitError(RuntimeError):
    """The platform did not accept an alert after every retry."""


class AlertEmitter:
    """POSTs Alertmanager payloads to the platform's ingest URL, retrying like Alertmanager does.

    Retries cover connection errors, timeouts, 429 and 5xx, with exponential backoff; a 4xx other
    than 429 is the receiver rejecting the payload and is raised at once.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.25,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.retries = retries
        self.backoff_s = backoff_s
        self._client = httpx.Client(
            timeout=timeout_s,
            headers={"User-Agent": "Alertmanager/0.27.0 (aiops-sim)", **(headers or {})},
        )
        self.sent = 0
        self.failed = 0

    def emit(self, payload: dict[str, Any]) -> httpx.Response:
        last: str = ""
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    self.sent += 1
                    return response
                if response.status_code != 429 and response.status_code < 500:
                    self.failed += 1
                    raise EmitError(
                        f"{self.url} rejected the alert: {response.status_code} {response.text[:200]}"
                    )
                last = f"HTTP {response.status_code}"
            if attempt < self.retries:
                time.sleep(self.backoff_s * (2**attempt))
        self.failed += 1
        raise EmitError(f"could not deliver the alert to {self.url} after {self.retries + 1} tries: {last}")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AlertEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
