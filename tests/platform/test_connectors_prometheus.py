"""PrometheusTelemetry against a real Prometheus server scraping a tiny exporter.

The exporter (prometheus_client) serves node_exporter-, OpenTelemetry- and servicegraph-shaped
metrics; Prometheus scrapes it every second; the connector reads them back through the HTTP API.
Skipped when the ``prometheus`` binary is not installed (``apt-get install prometheus``).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from services.connectors.prometheus import PrometheusTelemetry, escape_regex, render
from sim.cloud import free_port

PROMETHEUS = shutil.which("prometheus")


def test_render_escapes_target_in_string_and_regex_matchers() -> None:
    query = render('up{job="{target}", instance=~"{target_re}"}[{window}]', target='a"b\\c.d}', window="1m")
    assert query == 'up{job="a\\"b\\\\c.d}", instance=~"a\\"b\\\\\\\\c\\\\.d\\\\}"}[1m]'
    assert escape_regex("10.0.0.1") == "10\\\\.0\\\\.0\\\\.1"


def _exporter() -> tuple[int, threading.Event]:
    """Serve the fleet's metrics; a thread keeps counters moving so rates and increases are non-zero."""
    registry = CollectorRegistry()
    cpu = Counter("node_cpu_seconds", "cpu", ["cpu", "mode"], registry=registry)
    mem_total = Gauge("node_memory_MemTotal_bytes", "total", registry=registry)
    mem_avail = Gauge("node_memory_MemAvailable_bytes", "available", registry=registry)
    duration = Histogram("http_server_request_duration_seconds", "otel http server duration",
                         ["service_name", "http_response_status_code"], registry=registry)
    graph = Counter("traces_service_graph_request", "servicegraph", ["client", "server"], registry=registry)
    failed = Counter("traces_service_graph_request_failed", "servicegraph", ["client", "server"], registry=registry)
    graph_seconds = Histogram("traces_service_graph_request_server_seconds", "servicegraph",
                              ["client", "server"], registry=registry)
    mem_total.set(8e9)
    mem_avail.set(2e9)
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.1):
            cpu.labels(cpu="0", mode="idle").inc(0.02)
            cpu.labels(cpu="0", mode="user").inc(0.08)  # ~80% busy
            duration.labels(service_name="checkout", http_response_status_code="200").observe(0.2)
            duration.labels(service_name="checkout", http_response_status_code="503").observe(0.9)
            graph.labels(client="frontend", server="checkout").inc()
            failed.labels(client="frontend", server="checkout").inc(0.5)
            graph_seconds.labels(client="frontend", server="checkout").observe(0.3)

    threading.Thread(target=tick, daemon=True).start()
    return port, stop


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(Prometheus URL, the exporter's ``instance`` host) once a scrape with moving counters is stored."""
    assert PROMETHEUS, "prometheus (Debian package) is installed by `make test` (scripts/ensure-system-packages.sh)"
    exporter_port, stop = _exporter()
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: fleet\n    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n")
    port = free_port()
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                body = httpx.get(f"{url}/api/v1/query",
                                 params={"query": "increase(traces_service_graph_request_total[1m]) > 0"}).json()
                if body["data"]["result"]:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail("prometheus did not scrape the exporter within 60s")
        yield url, "127.0.0.1"
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=20)


def test_metrics_from_node_exporter_and_otel_templates(prometheus) -> None:
    url, host = prometheus
    telemetry = PrometheusTelemetry(url, timeout_s=5, window="30s")
    node = telemetry.metrics(host, minutes=2)
    assert 0.5 < node["node_cpu_utilization"][-1][1] <= 1.0
    assert node["node_memory_utilization"][-1][1] == pytest.approx(0.75)
    assert not any(name.startswith("http_server") for name in node)  # OTel templates match services only
    service = telemetry.metrics("checkout", minutes=2)
    assert 0.2 < service["http_server_error_rate"][-1][1] < 0.8
    assert service["http_server_latency_p99"][-1][1] > 0.5
    assert service["http_server_request_rate"][-1][1] > 0
    assert telemetry.metrics("no-such-thing", minutes=2) == {}
    assert telemetry.logs(host) == []


def test_health_topology_and_traces(prometheus) -> None:
    url, host = prometheus
    telemetry = PrometheusTelemetry(url, timeout_s=5, window="30s", topology_window="5m")
    assert telemetry.health(host) is True
    assert telemetry.health("fleet") is True  # the job name
    assert telemetry.health("no-such-thing") is None
    topology = telemetry.topology()
    assert topology["edges"] == [["frontend", "checkout"]]
    assert topology["components"] == {"frontend": "service", "checkout": "service"}
    [edge] = telemetry.traces("checkout", minutes=2)
    assert (edge["caller"], edge["callee"]) == ("frontend", "checkout")
    assert edge["latency"] and edge["latency"][-1][1] > 0
    assert 0.2 < edge["errors"][-1][1] < 0.8


def test_operator_templates_and_hostile_target_names(prometheus) -> None:
    url, host = prometheus
    telemetry = PrometheusTelemetry(url, timeout_s=5, window="30s", templates={
        "scrape_duration": 'scrape_duration_seconds{instance=~"{target_re}:[0-9]+"}',
        "node_cpu_utilization": "",  # switched off
    })
    series = telemetry.metrics(host, minutes=1)
    assert "scrape_duration" in series and "node_cpu_utilization" not in series
    # a name that would break out of the matcher is only ever a (non-matching) label value
    assert telemetry.metrics('x"} or vector(1) or up{job="', minutes=1) == {}
    assert telemetry.health('.*') is None


def test_unreachable_source_is_unavailable_evidence_logged_once(caplog) -> None:
    telemetry = PrometheusTelemetry(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with caplog.at_level(logging.WARNING, logger="services.connectors.prometheus"):
        assert telemetry.metrics("web-1") == {}
        assert telemetry.health("web-1") is None
        assert telemetry.topology() == {}
        assert telemetry.traces("web-1") == []
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1


def test_settings_choose_prometheus_over_telemetry_url(monkeypatch) -> None:
    from agents.protocols import NullTelemetry
    from services.config import Settings
    from services.connectors.http import HttpTelemetry
    from services.worker.runtime import telemetry_from_settings

    monkeypatch.setenv("AIOPS_PROMETHEUS_TEMPLATES", '{"queue_depth": "sum(queue_depth{service=\\"{target}\\"})"}')
    chosen = telemetry_from_settings(Settings(prometheus_url="http://prom:9090", telemetry_url="http://probe",
                                              prometheus_timeout_s=3))
    assert isinstance(chosen, PrometheusTelemetry) and chosen.timeout_s == 3
    assert "queue_depth" in chosen.templates and "node_cpu_utilization" in chosen.templates
    assert isinstance(telemetry_from_settings(Settings(telemetry_url="http://probe")), HttpTelemetry)
    assert isinstance(telemetry_from_settings(Settings()), NullTelemetry)
