"""An alert travels the whole embedded pipeline: API -> observe -> diagnose -> act -> resolved."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ec2_node, wait_for


def _closed(client: TestClient, incident_id: int):
    body = client.get(f"/api/v1/incidents/{incident_id}").json()
    return body if body["status"] in {"resolved", "escalated"} else None


def _with_stage(client: TestClient, incident_id: int, stage: str):
    body = client.get(f"/api/v1/incidents/{incident_id}").json()
    return body if any(e["kind"] == "task" and e["data"]["stage"] == stage for e in body["timeline"]) else None


def test_alert_is_resolved_through_three_agent_queues(platform_env):
    from services.api.app import create_app

    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    with TestClient(create_app()) as client:
        response = client.post("/api/v1/alerts", json={
            "name": "NodeUnresponsive", "severity": "high", "node": node,
            "summary": "kernel soft lockup; heartbeat lost"})
        assert response.status_code == 202
        alert_id = response.json()["new"][0]
        incident_id = wait_for(lambda: client.get("/api/v1/alerts").json()["items"][0]["incident_id"],
                               message="incident opened")
        wait_for(lambda: _closed(client, incident_id), timeout=60, message="incident closed")
        detail = wait_for(lambda: _with_stage(client, incident_id, "act"), message="act task recorded")
    assert detail["status"] == "resolved"
    assert detail["root_cause"] == "kernel_hang"
    assert detail["mitigation"] == "reboot"
    kinds = [e["kind"] for e in detail["timeline"]]
    for step in ("opened", "observed", "diagnosed", "planned", "executed", "verified", "resolved"):
        assert kinds.count(step) == 1, (step, kinds)
    stages = {e["data"]["stage"] for e in detail["timeline"] if e["kind"] == "task"}
    assert stages == {"observe", "diagnose", "act"}
    assert [a["kind"] for a in detail["actions"]] == ["reboot"]
    assert detail["actions"][0]["result"]["instance_id"] == node
    assert alert_id


def test_high_risk_action_waits_for_approval_and_resumes(platform_env):
    from services.api.app import create_app

    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json={"name": "DiskErrors", "severity": "critical", "node": node,
                                            "summary": "EXT4-fs error: I/O error on /dev/nvme1n1, SMART failing"})
        approvals = wait_for(lambda: client.get("/api/v1/approvals").json()["items"], timeout=60,
                             message="approval requested")
        approval = approvals[0]
        assert approval["action"] == "send_to_repair" and approval["risk"] == "high"
        incident = client.get(f"/api/v1/incidents/{approval['incident_id']}").json()
        assert incident["status"] == "awaiting_approval"
        assert incident["actions"] == []  # nothing ran before the decision
        decided = client.post(f"/api/v1/approvals/{approval['id']}/decision", json={"approved": True, "comment": "go"})
        assert decided.status_code == 200
        again = client.post(f"/api/v1/approvals/{approval['id']}/decision", json={"approved": True})
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        detail = wait_for(lambda: _closed(client, approval["incident_id"]), timeout=120, message="incident closed")
    assert detail["status"] == "resolved"
    assert [a["kind"] for a in detail["actions"]] == ["send_to_repair"]
    assert len(detail["approvals"]) == 1 and detail["approvals"][0]["status"] == "approved"


def test_a_runtime_on_another_database_does_not_inherit_queued_tasks(platform_env, tmp_path):
    """The memory broker's queues outlive an app; tasks queued for one database must not run on the next."""
    from kombu import Connection

    from tests.conftest import install_settings

    with Connection("memory://") as conn:
        leftover = conn.SimpleQueue("aiops-test-leftover")
        leftover.put({"task": "queued for the first database"})
        install_settings()  # the same database again: queued work is still this database's
        assert leftover.qsize() == 1
        install_settings(database_url=f"sqlite:///{tmp_path / 'other.db'}")
        assert leftover.qsize() == 0
        leftover.close()
