"""The simulated fleet in Prometheus text format, one component per scrape (the blackbox-exporter pattern).

WHY: a real Prometheus should scrape the simulator the way it scrapes a fleet, and the platform
should read it back with the same PromQL it runs against node_exporter and OpenTelemetry metrics.
``GET /probe?target=<component>`` answers with that component's current values under those names:

* a node: ``node_cpu_seconds_total{cpu, mode}`` (counters integrated from the CPU share),
  ``node_memory_MemTotal_bytes`` / ``node_memory_MemAvailable_bytes``,
  ``node_disk_io_time_seconds_total`` of its data disk, ``node_filesystem_device_error`` /
  ``node_filesystem_readonly`` of its volume (node_exporter's signs of a failing disk);
* a service: the OpenTelemetry ``http.server.request.duration`` histogram
  (``http_server_request_duration_seconds{service_name, http_response_status_code}``), whose
  counts grow at a steady request rate with the service's current error share and p99 latency.

A component that is down (instance stopped, no heartbeat: a hung kernel, a partition) answers 503, so
Prometheus' own ``up`` of that target drops to 0, as it does for an exporter that cannot be reached.
``targets()`` lists the components as file_sd / http_sd target groups.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sim.telemetry import THRESHOLDS

if TYPE_CHECKING:
    from sim.telemetry import Telemetry

MEM_TOTAL_BYTES = 16 * 1024**3
CPUS = 2
REQUESTS_PER_S = 20.0
# OpenTelemetry's default explicit bucket boundaries for http.server.request.duration, in seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
DATA_VOLUME = {"device": "/dev/nvme1n1p1", "mountpoint": "/data", "fstype": "ext4"}


class Down(Exception):
    """The component cannot be scraped right now (the reason is the 503 body)."""


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                    for k, v in labels.items())
    return "{" + body + "}"


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{int(value)}"


class Exposition:
    """Counters that keep growing between scrapes, integrated from the telemetry's current samples."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.fleet = telemetry.fleet
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, ...], float] = {}
        self._last: dict[str, float] = {}

    def targets(self) -> list[dict[str, Any]]:
        """Target groups (the file_sd / http_sd JSON shape): nodes and services, labelled by kind."""
        nodes = [n.id for n in self.fleet.nodes]
        return [{"targets": nodes, "labels": {"kind": "node", "cluster": self.fleet.cluster}},
                {"targets": sorted(self.fleet.releases), "labels": {"kind": "service", "cluster": self.fleet.cluster}}]

    def probe(self, target: str) -> str:
        """The target's metrics in text format; ``KeyError`` for an unknown target, ``Down`` when down."""
        status = self.telemetry.status(target)
        latest: dict[str, dict[str, float]] = status["latest"]
        is_service = target in self.fleet.releases
        nodes = [self.fleet.node(node_id) for node_id in latest]
        alive = [n for n in nodes if n.state == "running" and latest[n.id]["heartbeat"] >= 1.0]
        if not alive:
            raise Down(f"{target}: " + ("; ".join(str(b) for b in status["breaches"]) or "not reporting"))
        with self._lock:
            now = float(status["ts"])
            dt = max(0.0, now - self._last.get(target, now))
            self._last[target] = now
            if is_service:
                return self._service(target, [latest[n.id] for n in alive], dt)
            return self._node(target, latest[nodes[0].id], dt)

    def _add(self, key: tuple[str, ...], amount: float) -> float:
        self._counters[key] = self._counters.get(key, 0.0) + amount
        return self._counters[key]

    def _node(self, target: str, s: dict[str, float], dt: float) -> str:
        busy = min(1.0, max(0.0, s["cpu"] / 100.0))
        failing = 1 if s["disk_io_errors"] > THRESHOLDS["disk_io_errors"] else 0
        lines = ["# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.",
                 "# TYPE node_cpu_seconds_total counter"]
        for cpu in range(CPUS):
            for mode, share in (("idle", 1.0 - busy), ("user", busy * 0.8), ("system", busy * 0.2)):
                value = self._add((target, "cpu", str(cpu), mode), dt * share)
                lines.append(f"node_cpu_seconds_total{_labels({'cpu': str(cpu), 'mode': mode})} {_num(value)}")
        available = MEM_TOTAL_BYTES * (1.0 - min(100.0, s["mem"]) / 100.0)
        # a failing disk keeps its queue busy with retried, timing-out requests: I/O time near 100%
        io_busy = 0.97 if failing else 0.02 + 0.002 * (s["cpu"] % 10)
        io_time = self._add((target, "io_time"), dt * io_busy)
        lines += [
            "# TYPE node_memory_MemTotal_bytes gauge", f"node_memory_MemTotal_bytes {MEM_TOTAL_BYTES}",
            "# TYPE node_memory_MemAvailable_bytes gauge", f"node_memory_MemAvailable_bytes {_num(round(available))}",
            "# HELP node_disk_io_time_seconds_total Total seconds spent doing I/Os.",
            "# TYPE node_disk_io_time_seconds_total counter",
            f"node_disk_io_time_seconds_total{_labels({'device': 'nvme1n1'})} {_num(io_time)}",
            "# HELP node_filesystem_device_error Whether an error occurred while getting statistics for the device.",
            "# TYPE node_filesystem_device_error gauge",
            f"node_filesystem_device_error{_labels(DATA_VOLUME)} {failing}",
            "# TYPE node_filesystem_readonly gauge",
            f"node_filesystem_readonly{_labels(DATA_VOLUME)} {failing}",
        ]
        return "\n".join(lines) + "\n"

    def _service(self, service: str, samples: list[dict[str, float]], dt: float) -> str:
        """Requests since the last scrape: 98% fast (a third of p99), 2% at p99; the error share as 500s."""
        p99_s = max(s["latency_p99_ms"] for s in samples) / 1000.0
        error_share = min(1.0, sum(s["error_rate"] for s in samples) / len(samples))
        n = REQUESTS_PER_S * dt
        lines = ["# HELP http_server_request_duration_seconds Duration of HTTP server requests.",
                 "# TYPE http_server_request_duration_seconds histogram"]
        for code, share in (("200", 1.0 - error_share), ("500", error_share)):
            for latency, part in ((p99_s / 3.0, 0.98), (p99_s, 0.02)):
                count = n * share * part
                self._add((service, code, "sum"), count * latency)
                self._add((service, code, "count"), count)
                for le in BUCKETS:
                    if latency <= le:
                        self._add((service, code, str(le)), count)
            labels = {"service_name": service, "http_response_status_code": code}
            for le in BUCKETS:
                value = self._counters.get((service, code, str(le)), 0.0)
                lines.append(f"http_server_request_duration_seconds_bucket{_labels({**labels, 'le': str(le)})}"
                             f" {_num(value)}")
            total = self._counters.get((service, code, "count"), 0.0)
            lines.append(f"http_server_request_duration_seconds_bucket{_labels({**labels, 'le': '+Inf'})}"
                         f" {_num(total)}")
            lines.append(f"http_server_request_duration_seconds_sum{_labels(labels)} "
                         f"{_num(self._counters.get((service, code, 'sum'), 0.0))}")
            lines.append(f"http_server_request_duration_seconds_count{_labels(labels)} {_num(total)}")
        return "\n".join(lines) + "\n"
