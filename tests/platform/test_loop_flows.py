"""The world moves on, through the embedded pipeline: resolved alerts, stale approvals, short act tasks."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ec2_node, wait_for


def _closed(client: TestClient, incident_id: int):
    body = client.get(f"/api/v1/incidents/{incident_id}").json()
    return body if body["status"] in {"resolved", "escalated"} else None


def _has(client: TestClient, incident_id: int, kind: str):
    body = client.get(f"/api/v1/incidents/{incident_id}").json()
    return body if any(e["kind"] == kind for e in body["timeline"]) else None


def test_resolved_alert_makes_the_pending_approval_stale_and_the_incident_self_recovered(platform_env):
    from services.api.app import create_app

    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    alert = {"name": "DiskErrors", "severity": "critical", "node": node,
             "summary": "EXT4-fs error: I/O error on /dev/nvme1n1, SMART failing"}
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json=alert)
        approval = wait_for(lambda: client.get("/api/v1/approvals").json()["items"], timeout=60,
                            message="approval requested")[0]
        incident_id = approval["incident_id"]
        resolved = client.post("/api/v1/alerts", json={**alert, "status": "resolved", "ends_at": "2026-11-30T17:00:00Z"})
        assert resolved.status_code == 202 and len(resolved.json()["resolved"]) == 1
        detail = wait_for(lambda: _closed(client, incident_id), timeout=60, message="incident closed")
        late = client.post(f"/api/v1/approvals/{approval['id']}/decision", json={"approved": True})
        stored = client.get("/api/v1/alerts", params={"status": "resolved"}).json()["items"]
    assert late.status_code == 409  # a stale approval cannot be approved any more
    assert detail["status"] == "resolved" and detail["mitigation"] is None
    assert detail["actions"] == []
    assert [a["status"] for a in detail["approvals"]] == ["stale"]
    kinds = [e["kind"] for e in detail["timeline"]]
    for step in ("alert_resolved", "approval_stale", "checked", "self_recovered"):
        assert step in kinds, (step, kinds)
    ended = next(e for e in detail["timeline"] if e["kind"] == "alert_resolved")
    assert ended["data"]["ends_at"].startswith("2026-11-30T17:00:00")
    assert stored[0]["ends_at"].startswith("2026-11-30T17:00:00")


def test_alert_resolved_before_any_action_closes_after_a_probe(platform_env, monkeypatch):
    from services.api.app import create_app

    monkeypatch.setenv("AIOPS_CHAOS_STAGE", "act")  # the act task starts 8 s late: time for the source to resolve, even on a loaded machine
    monkeypatch.setenv("AIOPS_CHAOS_DELAY_S", "8")
    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    alert = {"name": "NodeUnresponsive", "severity": "high", "node": node, "summary": "kernel soft lockup; heartbeat lost"}
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json=alert)
        incident_id = wait_for(lambda: client.get("/api/v1/alerts").json()["items"][0]["incident_id"],
                               message="incident opened")
        wait_for(lambda: _has(client, incident_id, "diagnosed"), timeout=60, message="diagnosed")
        client.post("/api/v1/alerts", json={**alert, "status": "resolved"})
        detail = wait_for(lambda: _closed(client, incident_id), timeout=60, message="incident closed")
    assert detail["actions"] == []
    assert detail["status"] == "resolved" and detail["mitigation"] is None
    assert "self_recovered" in [e["kind"] for e in detail["timeline"]]


def test_an_act_task_never_waits_for_recovery(platform_env):
    """Each act task runs to the next pause: plan+execute, then each probe; none holds its worker."""
    from services.api.app import create_app

    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json={"name": "NodeUnresponsive", "severity": "high", "node": node,
                                            "summary": "kernel soft lockup; heartbeat lost"})
        incident_id = wait_for(lambda: client.get("/api/v1/alerts").json()["items"][0]["incident_id"],
                               message="incident opened")
        wait_for(lambda: _closed(client, incident_id), timeout=60, message="incident closed")
        detail = wait_for(lambda: _has(client, incident_id, "task") and (
            lambda d: d if sum(e["kind"] == "task" and e["data"]["stage"] == "act" for e in d["timeline"]) >= 2
            else None)(client.get(f"/api/v1/incidents/{incident_id}").json()), message="act tasks recorded")
    act_runs = [e["data"]["run_s"] for e in detail["timeline"] if e["kind"] == "task" and e["data"]["stage"] == "act"]
    print("act tasks (run s, outcome):", [(e["data"]["run_s"], e["data"]["outcome"]) for e in detail["timeline"]
                                          if e["kind"] == "task" and e["data"]["stage"] == "act"],
          "timeline:", [e["kind"] for e in detail["timeline"]])
    assert detail["status"] == "resolved"
    assert len(act_runs) >= 2  # acting and verifying are separate tasks
    # the first runs plan + execute (and, once per process, loads the causal model); each probe is its own short task
    assert max(act_runs[1:]) < 5.0
