"""Prometheus telemetry: the agents' ``Telemetry`` Protocol over the Prometheus HTTP API.

WHY: most fleets already keep their metrics in Prometheus (node_exporter on hosts, cAdvisor and
kube-state-metrics on Kubernetes, OpenTelemetry SDK metrics through the collector). Reading them
through PromQL templates lets the observer and diagnoser see a real fleet with no agent installed.

* ``metrics(target)`` runs every template as ``/api/v1/query_range`` over the window; a template
  that matches nothing for this target (a container query on a host) simply yields no series.
* ``health(target)`` is ``up`` of the target's scrape jobs (``None`` when nothing is scraped).
* ``topology()`` and ``traces(target)`` come from service-graph metrics when present: the
  OpenTelemetry collector ``servicegraph`` connector (``traces_service_graph_request_total{client,
  server}``) or Istio (``istio_requests_total{source_workload, destination_workload}``).
* ``logs`` is empty: Prometheus holds no log lines.

Templates are PromQL with placeholders: ``{target}`` (the name as a PromQL string-literal body),
``{target_re}`` (the same, regex-escaped for ``=~``) and ``{window}`` (a range such as ``5m``).
Placeholders are replaced textually, so PromQL's own braces need no doubling.

Every request has a timeout; an unreachable or failing server means "evidence unavailable": the
call returns empty/``None`` and logs once per outage, never raising into the agents.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

log = logging.getLogger(__name__)

_NODE = '{instance=~"{target_re}(:[0-9]+)?"}'
_NODE_SEL = 'instance=~"{target_re}(:[0-9]+)?"'
_CONTAINER_SEL = 'container!="", container!="POD", pod=~"{target_re}(-[a-z0-9]+){0,2}"'
_OTEL_SEL = 'service_name="{target}"'

DEFAULT_TEMPLATES: dict[str, str] = {
    # node_exporter, target = instance host name (port optional)
    "node_cpu_utilization": f'1 - avg(rate(node_cpu_seconds_total{{mode="idle", {_NODE_SEL}}}[{{window}}]))',
    "node_memory_utilization": (f"1 - sum(node_memory_MemAvailable_bytes{_NODE})"
                                f" / sum(node_memory_MemTotal_bytes{_NODE})"),
    "node_disk_io_time": f"sum(rate(node_disk_io_time_seconds_total{_NODE}[{{window}}]))",
    # node_exporter has no I/O error counter; a filesystem it cannot stat or remounted read-only is the sign
    "node_filesystem_device_errors": f"max(node_filesystem_device_error{_NODE})",
    "node_filesystem_readonly": f"max(node_filesystem_readonly{_NODE})",
    # node_exporter's EDAC collector: memory-controller error counters since boot (absent without EDAC)
    "node_edac_correctable_errors": f"sum(node_edac_correctable_errors_total{_NODE})",
    "node_edac_uncorrectable_errors": f"sum(node_edac_uncorrectable_errors_total{_NODE})",
    "node_network_receive_bytes": f'sum(rate(node_network_receive_bytes_total{{device!="lo", {_NODE_SEL}}}[{{window}}]))',
    "node_network_transmit_bytes": f'sum(rate(node_network_transmit_bytes_total{{device!="lo", {_NODE_SEL}}}[{{window}}]))',
    "node_network_errors": (f'sum(rate(node_network_receive_errs_total{{device!="lo", {_NODE_SEL}}}[{{window}}]))'
                            f' + sum(rate(node_network_transmit_errs_total{{device!="lo", {_NODE_SEL}}}[{{window}}]))'),
    # cAdvisor and kube-state-metrics, target = workload (pod name prefix)
    "container_cpu_usage": f"sum(rate(container_cpu_usage_seconds_total{{{_CONTAINER_SEL}}}[{{window}}]))",
    "container_cpu_throttled": f"sum(rate(container_cpu_cfs_throttled_periods_total{{{_CONTAINER_SEL}}}[{{window}}]))",
    "container_memory_working_set": f"sum(container_memory_working_set_bytes{{{_CONTAINER_SEL}}})",
    "container_restarts": ('sum(increase(kube_pod_container_status_restarts_total{pod=~"{target_re}(-[a-z0-9]+){0,2}"}'
                           "[{window}]))"),
    "container_oom_killed": 'sum(kube_pod_container_status_last_terminated_reason{reason="OOMKilled", '
                            'pod=~"{target_re}(-[a-z0-9]+){0,2}"})',
    # OpenTelemetry semantic conventions (http.server.request.duration, seconds), target = service.name
    "http_server_latency_p99": ("histogram_quantile(0.99, sum by (le) "
                                f"(rate(http_server_request_duration_seconds_bucket{{{_OTEL_SEL}}}[{{window}}])))"),
    "http_server_request_rate": f"sum(rate(http_server_request_duration_seconds_count{{{_OTEL_SEL}}}[{{window}}]))",
    "http_server_error_rate": (
        f'sum(rate(http_server_request_duration_seconds_count{{{_OTEL_SEL}, http_response_status_code=~"5.."}}'
        "[{window}]))"
        f" / sum(rate(http_server_request_duration_seconds_count{{{_OTEL_SEL}}}[{{window}}]))"),
}

HEALTH_TEMPLATE = ('min(up{instance=~"{target_re}(:[0-9]+)?"} or up{job="{target}"} '
                   'or up{service="{target}"} or up{service_name="{target}"})')

# (metric, caller label, callee label) of the service-graph sources, first present wins
SERVICE_GRAPHS = (
    ("traces_service_graph_request_total", "client", "server"),
    ("istio_requests_total", "source_workload", "destination_workload"),
)

_REGEX_SPECIALS = set(r"\.+*?()|[]{}^$")


def escape_label_value(value: str) -> str:
    """The body of a PromQL double-quoted string: a target name can never close the quote."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_regex(value: str) -> str:
    """``value`` as an RE2 literal, then as a string-literal body (for ``=~`` matchers)."""
    return escape_label_value("".join("\\" + c if c in _REGEX_SPECIALS else c for c in value))


def render(template: str, *, target: str, window: str = "5m") -> str:
    """Fill a template's placeholders; textual replace keeps PromQL's own braces intact."""
    return (template.replace("{target_re}", escape_regex(target))
            .replace("{target}", escape_label_value(target))
            .replace("{window}", window))


class PrometheusTelemetry:
    """Telemetry from a Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, templates: dict[str, str] | None = None,
                 window: str = "5m", topology_window: str = "1h", min_step_s: float = 15.0,
                 max_points: int = 240) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self.timeout_s = timeout_s
        # operator templates extend or replace the defaults; an empty string switches a default off
        merged = {**DEFAULT_TEMPLATES, **(templates or {})}
        self.templates = {name: query for name, query in merged.items() if query}
        self.window, self.topology_window = window, topology_window
        # the step of range queries: the scrape interval is the finest resolution worth asking for, and
        # a window is read in at most ``max_points`` points per series
        self.min_step_s, self.max_points = min_step_s, max_points
        self._unavailable = False

    # --- the HTTP API -------------------------------------------------------------------------
    def _query(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        """``data.result`` of one API call, or ``None`` when the source cannot answer."""
        params = {**params, "timeout": f"{self.timeout_s:g}s"}
        try:
            response = self.client.post(path, data=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self._mark_unavailable(f"{type(exc).__name__}: {exc}")
            return None
        if body.get("status") != "success":
            # a bad template is the operator's to fix; it is not an outage
            log.warning("prometheus rejected %r: %s %s", params.get("query"), body.get("errorType"), body.get("error"))
            return None
        if self._unavailable:
            log.info("prometheus at %s answers again", self.client.base_url)
            self._unavailable = False
        return list(body.get("data", {}).get("result", []))

    def _mark_unavailable(self, reason: str) -> None:
        if not self._unavailable:
            log.warning("prometheus at %s unavailable, evidence from it is missing: %s", self.client.base_url, reason)
        self._unavailable = True

    def _range(self, query: str, *, minutes: int) -> list[dict[str, Any]] | None:
        end = time.time()
        step = max(self.min_step_s, minutes * 60 // self.max_points)
        return self._query("/api/v1/query_range", {"query": query, "start": f"{end - minutes * 60:.3f}",
                                                   "end": f"{end:.3f}", "step": f"{step:g}"})

    # --- Telemetry Protocol ---------------------------------------------------------------------
    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]:
        series: dict[str, list[tuple[float, float]]] = {}
        for name, template in self.templates.items():
            result = self._range(render(template, target=target, window=self.window), minutes=minutes)
            if result is None and self._unavailable:
                return {}  # the server is gone: do not wait out one timeout per template
            for item in result or []:
                points = _points(item.get("values", []))
                if points:
                    series[_series_name(name, item.get("metric", {}), several=len(result or []) > 1)] = points
        return series

    def logs(self, target: str, *, minutes: int = 15) -> list[str]:
        return []

    def health(self, target: str) -> bool | None:
        result = self._query("/api/v1/query", {"query": render(HEALTH_TEMPLATE, target=target)})
        if not result:
            return None
        if not all(_number(item.get("value", [0, "nan"])[1]) >= 1 for item in result):
            return False
        # "up" only says the exporter answers; a component with an alert still firing in Prometheus
        # (its own ALERTS series) is not healthy, whatever its liveness says (a disk with I/O errors is up)
        name = escape_label_value(target)
        firing = self._query("/api/v1/query", {"query": f'ALERTS{{alertstate="firing", instance="{name}"}} '
                                                        f'or ALERTS{{alertstate="firing", service="{name}"}}'})
        return not firing

    def topology(self) -> dict[str, Any]:
        for metric, caller, callee in SERVICE_GRAPHS:
            query = f"sum by ({caller}, {callee}) (increase({metric}[{self.topology_window}])) > 0"
            result = self._query("/api/v1/query", {"query": query})
            if result is None and self._unavailable:
                return {}
            pairs = sorted({(item["metric"].get(caller, ""), item["metric"].get(callee, ""))
                            for item in result or []})
            edges = [[a, b] for a, b in pairs if a and b and "unknown" not in (a, b)]
            if edges:
                components = {name: "service" for edge in edges for name in edge}
                return {"edges": edges, "components": components}
        return {}

    def traces(self, target: str, *, minutes: int = 15) -> list[dict[str, Any]]:
        """Per-edge p99 latency and error share from the OpenTelemetry servicegraph connector."""
        edges = [edge for edge in self.topology().get("edges", []) if target in edge]
        out = []
        for caller, callee in edges:
            sel = f'client="{escape_label_value(caller)}", server="{escape_label_value(callee)}"'
            latency = self._range("histogram_quantile(0.99, sum by (le) (rate("
                                  f"traces_service_graph_request_server_seconds_bucket{{{sel}}}[{self.window}])))",
                                  minutes=minutes)
            errors = self._range(f"sum(rate(traces_service_graph_request_failed_total{{{sel}}}[{self.window}]))"
                                 f" / sum(rate(traces_service_graph_request_total{{{sel}}}[{self.window}]))",
                                 minutes=minutes)
            out.append({"caller": caller, "callee": callee,
                        "latency": _points((latency or [{}])[0].get("values", [])),
                        "errors": _points((errors or [{}])[0].get("values", []))})
        return out


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _points(values: list[list[Any]]) -> list[tuple[float, float]]:
    """``[[t, "v"], ...]`` to ``[(t, v)]``, dropping NaN/Inf (empty divisions, no traffic)."""
    out = []
    for t, v in values:
        value = _number(v)
        if value == value and abs(value) != float("inf"):
            out.append((float(t), value))
    return out


def _series_name(name: str, labels: dict[str, str], *, several: bool) -> str:
    """The template name; a template that returns several series gets their labels appended."""
    if not several:
        return name
    suffix = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{suffix}}}" if suffix else name
