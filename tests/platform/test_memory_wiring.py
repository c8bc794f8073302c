"""The agents' memory through the platform: runbook upload, episodes recorded on resolution, upkeep task,
and stranded alerts redispatched by the scheduled job."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ec2_node, wait_for

RUNBOOK = """# Disk failures

## Symptoms
blk_update_request: I/O error, EXT4-fs error, SMART warnings on the data disk.

## Mitigation
Drain the node and send it to repair; do not reboot a node with a failing disk.
"""


def test_runbook_upload_and_lookup(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as client:
        uploaded = client.post("/api/v1/memory/runbooks", files={"file": ("disk.md", RUNBOOK, "text/markdown")})
        assert uploaded.status_code == 201 and uploaded.json()["chunks"] >= 1
        empty = client.post("/api/v1/memory/runbooks", files={"file": ("e.md", "  ", "text/markdown")})
        assert empty.status_code == 422
        binary = client.post("/api/v1/memory/runbooks", files={"file": ("b.md", b"\xff\xfe\x00", "text/markdown")})
        assert binary.status_code == 415
        found = client.get("/api/v1/memory/knowledge", params={"q": "I/O error on nvme disk, EXT4-fs error"}).json()
        assert found["runbooks"] and found["runbooks"][0]["runbook"] == "disk.md"


def test_resolved_incident_becomes_an_episode_and_upkeep_runs(platform_env):
    from services.api.app import create_app
    from services.worker import tasks

    node = ec2_node(platform_env["AIOPS_CLOUD_ENDPOINT"])
    with TestClient(create_app()) as client:
        client.post("/api/v1/alerts", json={"name": "NodeHung", "severity": "high", "node": node,
                                            "summary": "watchdog: BUG: soft lockup - CPU#2 stuck for 23s"})
        wait_for(lambda: client.get("/api/v1/incidents").json()["items"][0]["status"] == "resolved"
                 if client.get("/api/v1/incidents").json()["items"] else None, timeout=120, message="resolved")
        episodes = wait_for(lambda: client.get("/api/v1/memory/episodes", params={"q": "soft lockup CPU stuck"})
                            .json()["items"], timeout=30, message="episode recorded")
    assert episodes[0]["root_cause"] == "kernel_hang" and episodes[0]["outcome"] == "resolved"
    assert "reboot" in " ".join(episodes[0]["what_worked"])
    report = tasks.memory_upkeep.apply().result
    assert isinstance(report, dict) and report


def test_redispatch_picks_up_alerts_stored_while_the_broker_was_down(platform_env, monkeypatch):
    from services.alerts.models import Alert, NormalizedAlert
    from services.alerts.service import store_alerts
    from services.incidents import dispatch, scheduled
    from services.incidents.models import Incident
    from services.storage.base import session_scope
    from services.worker import tasks

    url = platform_env["AIOPS_DATABASE_URL"]
    with session_scope(url) as session:  # as the API leaves it when enqueueing failed
        store_alerts(session, [NormalizedAlert(source="webhook", name="Stranded", node="n-1")])
        for alert in session.query(Alert):
            alert.dispatched = False
            alert.incident_id = None
        session.query(Incident).delete()
    sent = []
    monkeypatch.setattr(scheduled, "enqueue", lambda name, *args, **kw: sent.append((name, args)))
    monkeypatch.setattr(dispatch, "enqueue", lambda name, *args, **kw: sent.append((name, args)))
    count = tasks.redispatch.apply(kwargs={"older_than_s": 0}).result
    assert count == 1 and sent[0][0] == "aiops.observe"
    with session_scope(url) as session:
        alert = session.query(Alert).one()
        assert alert.dispatched and alert.incident_id == sent[0][1][0]
