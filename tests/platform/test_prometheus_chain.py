"""A real chain, end to end: simulator -> Prometheus -> Alertmanager -> platform -> simulator -> resolved.

Real processes throughout: the simulator serves its fleet in Prometheus text format (``/probe``), a
real Prometheus scrapes it with the rules shipped in deploy/prometheus, a real Alertmanager routes
with deploy/alertmanager/alertmanager.yml to the platform's webhook, and the platform (API + embedded
workers over HTTP) reads its evidence back from Prometheus and acts through the simulator's runbook API.
Only timings are shortened in the generated copies (sim/alerting.py: scrape/eval 1s, ``for`` 2s, rate
ranges 10s, group wait 1s) and the addresses point at this test's ports. The test scrapes the fleet's nodes only: a disk fault also
slows the services on that node, and service alerts would open incidents of their own.

Skipped when the Debian ``prometheus`` / ``prometheus-alertmanager`` binaries are missing; ``make test``
installs them (scripts/ensure-system-packages.sh).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from sim.alerting import binaries
from tests.conftest import free_port, install_settings, wait_for

pytestmark = [
    pytest.mark.slow, pytest.mark.integration,
    pytest.mark.skipif(binaries() is None,
                       reason="needs the Debian prometheus and prometheus-alertmanager binaries "
                              "(scripts/ensure-system-packages.sh, run by `make test`)"),
]


@pytest.fixture
def chain(platform_env, moto_endpoint, tmp_path) -> Iterator[dict]:
    import uvicorn

    from services.api.app import create_app
    from services.connectors.http import HttpActions
    from services.connectors.prometheus import PrometheusTelemetry
    from services.worker import runtime
    from services.worker.embedded import stop_embedded_worker
    from sim.alerting import AlertingStack
    from sim.stack import SimStack

    stack = SimStack.start(moto_endpoint=moto_endpoint, nodes=3, seed=5)
    alerting, server = None, None
    try:
        api_url = f"http://127.0.0.1:{free_port()}"
        # the fleet's nodes only (see the module docstring); Prometheus starts empty until the API is up
        alerting = AlertingStack.start(exporter=stack.api_url.removeprefix("http://"),
                                       webhook=f"{api_url}/api/v1/alerts", workdir=tmp_path / "alerting",
                                       nodes=[n.id for n in stack.fleet.nodes])
        settings = install_settings()
        runtime.install(settings, cloud=HttpActions(stack.api_url),
                        telemetry=PrometheusTelemetry(alerting.prometheus_url, timeout_s=5, window="5s",
                                                      min_step_s=1, max_points=2000))
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1",
                                               port=int(api_url.rsplit(":", 1)[1]), log_level="warning"))
        threading.Thread(target=server.run, name="chain-api", daemon=True).start()
        wait_for(lambda: server.started, timeout=30, message="platform API started")
        yield {"stack": stack, "prom": alerting.prometheus_url, "api": api_url,
               "nodes": [n.id for n in stack.fleet.nodes]}
    finally:
        if alerting is not None:
            alerting.stop()
        if server is not None:
            server.should_exit = True
            stop_embedded_worker(timeout=5)
        stack.stop()


def _query(prom: str, query: str) -> list[dict]:
    try:
        body = httpx.get(f"{prom}/api/v1/query", params={"query": query}, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return []
    return body.get("data", {}).get("result", []) if body.get("status") == "success" else []


def _incident(api: str) -> dict | None:
    items = httpx.get(f"{api}/api/v1/incidents", timeout=5).json()["items"]
    return httpx.get(f"{api}/api/v1/incidents/{items[0]['id']}", timeout=5).json() if items else None


def test_disk_fault_goes_through_prometheus_and_alertmanager_and_resolves(chain) -> None:
    prom, api, nodes, stack = chain["prom"], chain["api"], chain["nodes"], chain["stack"]
    started = time.monotonic()
    # every node scraped through /probe, its name as the `instance` label, no disk error yet
    up = wait_for(lambda: (r := _query(prom, 'up{job="fleet-nodes"} == 1')) and len(r) == len(nodes) and r,
                  timeout=30, message="Prometheus scraping every node")
    assert sorted(item["metric"]["instance"] for item in up) == sorted(nodes)
    assert _query(prom, "node_filesystem_device_error > 0") == []
    time.sleep(6)  # a baseline for the diagnosis to compare the fault window with

    victim = nodes[1]
    fault = stack.api.injector.inject("disk_failure", victim, at=stack.fleet.now())
    # Prometheus sees the device error and fires the shipped rule for that node only
    firing = wait_for(lambda: [a for a in httpx.get(f"{prom}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                               if a["state"] == "firing"], timeout=30, message="Prometheus alert firing")
    assert {(a["labels"]["alertname"], a["labels"]["instance"]) for a in firing} == {
        ("NodeFilesystemDeviceError", victim)}
    # Alertmanager posts it to the webhook; the platform opens an incident at that node
    incident = wait_for(lambda: _incident(api), timeout=30, message="incident opened from Alertmanager")
    assert (incident["node"], incident["service"]) == (victim, None)
    alerts = httpx.get(f"{api}/api/v1/alerts", timeout=5).json()["items"]
    assert [(a["name"], a["node"], a["source"]) for a in alerts] == [
        ("NodeFilesystemDeviceError", victim, "alertmanager")]

    # the agents diagnose from what they read back from Prometheus; a high-risk repair waits for approval
    def diagnosed_or_waiting():
        body = _incident(api)
        return body if body and body["status"] in {"awaiting_approval", "resolved", "escalated"} else None

    body = wait_for(diagnosed_or_waiting, timeout=60, message="diagnosis and a plan")
    assert body["root_cause"] == "disk_failure", json.dumps(body, indent=1)[:6000]
    best = body["hypotheses"][0]
    assert (best["root_cause"], best["component"]) == ("disk_failure", victim)
    # the evidence is the disk's I/O time, read back from Prometheus through the node_exporter template
    moved = [e for e in best["evidence"] if e["kind"] == "metric" and e["metric"] == "node_disk_io_time"]
    assert moved and moved[0]["before"] < 0.1 < 0.5 < moved[0]["after"], best["evidence"]
    if body["status"] == "awaiting_approval":
        approval = httpx.get(f"{api}/api/v1/approvals", timeout=5).json()["items"][0]
        assert approval["action"] in {"send_to_repair", "replace"} and approval["target"] == victim
        decided = httpx.post(f"{api}/api/v1/approvals/{approval['id']}/decision",
                             json={"approved": True, "comment": "chain test"}, timeout=10)
        assert decided.status_code == 200

    # the simulator's ground truth: the action it was asked for cleared the fault
    wait_for(lambda: fault.resolved_at is not None, timeout=60, message="the simulator's fault recovered")
    assert fault.resolved_by in {"send_to_repair", "replace"}
    # Prometheus stops firing, Alertmanager sends the resolved notification, the platform timelines it
    wait_for(lambda: not _query(prom, 'ALERTS{alertstate="firing"}'), timeout=30, message="Prometheus alert resolved")
    detail = wait_for(lambda: (b := _incident(api)) and any(e["kind"] == "alert_resolved" for e in b["timeline"]) and b,
                      timeout=30, message="alert_resolved from Alertmanager")
    detail = wait_for(lambda: (b := _incident(api)) and b["status"] in {"resolved", "escalated"} and b,
                      timeout=30, message="incident closed")
    assert detail["status"] == "resolved"
    kinds = [e["kind"] for e in detail["timeline"]]
    for step in ("opened", "observed", "diagnosed", "executed", "verified", "resolved", "alert_resolved"):
        assert step in kinds, (step, kinds)
    assert [a["kind"] for a in detail["actions"]] == [fault.resolved_by]
    resolved_note = next(e for e in detail["timeline"] if e["kind"] == "alert_resolved")
    assert resolved_note["actor"] == "source" and resolved_note["data"]["ends_at"]
    assert [a["status"] for a in httpx.get(f"{api}/api/v1/alerts", timeout=5).json()["items"]] == ["resolved"]
    # verification read the node's health from Prometheus' `up`, which the simulator kept at 1
    assert _query(prom, f'up{{instance="{victim}"}} == 1')
    assert time.monotonic() - started < 90
