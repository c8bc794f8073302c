"""The simulator's Prometheus exposition (``GET /probe``, ``GET /targets``), parsed with prometheus_client."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sim.fleet import Fleet
from sim.server import SimServer


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def test_probe_serves_node_exporter_and_otel_names_and_reflects_faults(fleet: Fleet) -> None:
    server = SimServer(fleet, seed=3).start()
    try:
        node, other = fleet.nodes[0].id, fleet.nodes[1].id
        service = next(s for s, hosts in fleet.services.items() if hosts)
        groups = httpx.get(f"{server.url}/targets").json()
        assert {g["labels"]["kind"]: sorted(g["targets"]) for g in groups} == {
            "node": sorted(n.id for n in fleet.nodes), "service": sorted(fleet.releases)}

        first = httpx.get(f"{server.url}/probe", params={"target": node})
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain; version=0.0.4")
        httpx.get(f"{server.url}/probe", params={"target": service})
        time.sleep(0.5)
        before = _samples(httpx.get(f"{server.url}/probe", params={"target": node}).text)
        assert _value(before, "node_filesystem_device_error") == 0
        mem = 1 - _value(before, "node_memory_MemAvailable_bytes") / _value(before, "node_memory_MemTotal_bytes")
        assert 0.3 < mem < 0.8
        idle, total = _value(before, "node_cpu_seconds_total", mode="idle"), _value(before, "node_cpu_seconds_total")
        assert 0 < idle < total  # counters grew over the half second between scrapes
        svc = _samples(httpx.get(f"{server.url}/probe", params={"target": service}).text)
        total = _value(svc, "http_server_request_duration_seconds_count", service_name=service)
        errors = _value(svc, "http_server_request_duration_seconds_count", http_response_status_code="500")
        assert total > 0 and 0 < errors / total < 0.05

        server.injector.inject("disk_failure", node)
        time.sleep(0.3)
        failing = _samples(httpx.get(f"{server.url}/probe", params={"target": node}).text)
        assert _value(failing, "node_filesystem_device_error") == 1
        assert _value(failing, "node_disk_io_time_seconds_total") > _value(before, "node_disk_io_time_seconds_total")
        # a hung node cannot be scraped: Prometheus' `up` of it drops to 0
        server.injector.inject("kernel_hang", other)
        down = httpx.get(f"{server.url}/probe", params={"target": other})
        assert down.status_code == 503 and "heartbeat missing" in down.text
        assert httpx.get(f"{server.url}/probe", params={"target": "no-such-node"}).status_code == 404
    finally:
        server.stop()
