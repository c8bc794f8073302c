"""The simulator's HTTP API: what the platform's read-only probes and service-level actions call.

Why HTTP: the platform must not import ``sim/`` (it would then only ever work against the
simulator); it probes telemetry and acts over the network, as it would against Prometheus, a
log store and a deploy tool. Routes (JSON):

  GET  /healthz                             liveness of the simulator itself
  GET  /topology                            cluster, moto endpoint, nodes, services, placement, call edges
  GET  /traces?target=...&minutes=15         per call edge of target: the callee's latency and error series
  GET  /changes?minutes=60                   deploys and config pushes
  GET  /metrics?target=T&minutes=15         {"target", "series": {metric: [[ts, value], ...]}}
  GET  /logs?target=T&minutes=15            {"target", "lines": [...]}
  GET  /health?target=T                     {"target", "healthy", "breaches", "latest", "ts"}
  GET  /probe?target=T                      T's metrics in Prometheus text format; 503 when T is down
  GET  /targets                             the fleet as Prometheus file_sd / http_sd target groups
  POST /mitigate {"target", "action"}       MitigationResult (the simulator performs the boto3 call)
  POST /inject {"kind"?, "target"?, "onset_lead_s"?=30}   injects a fault that began lead seconds ago
  GET  /ground-truth                        every fault with injected/resolved times (scoring only)
  GET  /summary                             Simulation.summary() when a simulation is attached

Node actions done with plain boto3 against moto (stop/start, terminate) are also noticed by
``Fleet.sync_from_cloud``; reboots and service actions must come through ``/mitigate``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from sim.exposition import Down, Exposition
from sim.faults import FaultInjector
from sim.fleet import Fleet
from sim.telemetry import Telemetry

if TYPE_CHECKING:
    from sim.runner import Simulation

log = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class Text(str):
    """A payload sent as Prometheus text exposition instead of JSON."""


class SimServer:
    """A small threaded HTTP server over one fleet; ``url`` is its base address."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        telemetry: Telemetry | None = None,
        simulation: Simulation | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
    ) -> None:
        self.fleet = fleet
        self.telemetry = telemetry or Telemetry(fleet, seed=seed)
        self.simulation = simulation
        self.injector = simulation.injector if simulation else FaultInjector(fleet, seed=seed + 7)
        self.exposition = Exposition(self.telemetry)
        handler = _make_handler(self)
        self._httpd = _QuietServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str), "an AF_INET server's address"
        return f"http://{host}:{port}"

    def start(self) -> SimServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="sim-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # The routes, as plain methods returning (status, body) so they are easy to read and test.
    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path == "/healthz":
            return 200, {"ok": True, "cluster": self.fleet.cluster}
        if method == "GET" and path == "/topology":  # the fleet's inventory plus the call graph and placement
            return 200, {**self.fleet.topology(), **self.telemetry.topology()}
        if method == "GET" and path == "/changes":
            try:
                return 200, {"changes": self.telemetry.changes(minutes=float(query.get("minutes", "60")))}
            except ValueError as exc:
                return 400, {"error": str(exc)}
        if method == "GET" and path == "/ground-truth":
            return 200, {"cluster": self.fleet.cluster, "faults": self.fleet.ground_truth()}
        if method == "GET" and path == "/summary":
            if self.simulation is None:
                return 404, {"error": "no simulation attached"}
            return 200, self.simulation.summary()
        if method == "GET" and path == "/targets":
            return 200, self.exposition.targets()
        if method == "GET" and path == "/probe":
            try:
                return 200, Text(self.exposition.probe(query.get("target", "")))
            except KeyError as exc:
                return 404, Text(f"unknown target {exc}\n")
            except Down as exc:
                return 503, Text(f"{exc}\n")
        if method == "GET" and path in ("/metrics", "/logs", "/health", "/traces"):
            target = query.get("target", "")
            if not target:
                return 400, {"error": "target is required"}
            try:
                minutes = float(query.get("minutes", "15"))
                if path == "/metrics":
                    series = self.telemetry.metrics(target, minutes=minutes)
                    return 200, {
                        "target": target,
                        "series": {k: [list(p) for p in v] for k, v in series.items()},
                    }
                if path == "/logs":
                    return 200, {"target": target, "lines": self.telemetry.logs(target, minutes=minutes)}
                if path == "/traces":
                    edges = self.telemetry.traces(target, minutes=minutes)
                    return 200, {"target": target, "edges": [
                        {**e, "latency": [list(p) for p in e["latency"]], "errors": [list(p) for p in e["errors"]]}
                        for e in edges]}
                return 200, self.telemetry.status(target)
            except KeyError as exc:
                return 404, {"error": str(exc)}
            except ValueError as exc:
                return 400, {"error": str(exc)}
        if method == "POST" and path == "/mitigate":
            try:
                result = self.fleet.apply_mitigation(str(body["target"]), str(body["action"]))
            except KeyError as exc:
                return 404, {"error": f"unknown target or missing field: {exc}"}
            except ValueError as exc:
                return 400, {"error": str(exc)}
            return 200, result.to_dict()
        if method == "POST" and path == "/inject":
            try:
                lead = float(body.get("onset_lead_s", 30.0))
                fault = self.injector.inject(body.get("kind"), body.get("target"), at=self.fleet.now() - lead,
                                             cascade=bool(body.get("cascade", False)))
            except (KeyError, ValueError, TypeError, RuntimeError) as exc:
                return 400, {"error": str(exc)}
            return 201, fault.to_dict()
        return 404, {"error": f"no route {method} {path}"}


# a client that went away mid-request (a probe that timed out, a closed browser tab, Prometheus
# giving up on a scrape): nothing to report, the next request is unaffected
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _QuietServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that notes a vanished client in one debug line instead of a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _GONE):
            log.debug("sim API: client %s went away: %s", client_address, exc)
            return
        super().handle_error(request, client_address)


def _make_handler(server: SimServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _dispatch(self, method: str) -> None:
            parsed = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
            body: dict[str, Any] = {}
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": "body is not JSON"})
                    return
            try:
                status, payload = server.handle(method, parsed.path.rstrip("/") or "/", query, body)
            except Exception as exc:  # report, do not kill the server thread
                log.exception("sim API %s %s failed", method, self.path)
                status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
            self._send(status, payload)

        def _send(self, status: int, payload: Any) -> None:
            text = isinstance(payload, Text)
            data = payload.encode() if text else json.dumps(payload, default=str).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", PROMETHEUS_TEXT if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except _GONE as exc:
                self.close_connection = True
                log.debug("sim API: client went away before the answer to %s: %s", self.path, exc)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("sim API: " + format, *args)

    return Handler
