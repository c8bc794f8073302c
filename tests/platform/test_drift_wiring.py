"""Drift reconciliation through the platform: a real Terraform project on moto, console edits recorded
as CloudTrail, the scheduled task storing verified proposals, review committing to a branch."""

from __future__ import annotations

import subprocess

import pytest
from fastapi.testclient import TestClient

from tests.conftest import install_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def drift_env(platform_env, tmp_path, monkeypatch):
    import json

    from sim.drift import DriftSimulator

    drift = DriftSimulator(endpoint=platform_env["AIOPS_CLOUD_ENDPOINT"], workdir=tmp_path / "iac", seed=1)
    spec = drift.setup()
    monkeypatch.setenv("AIOPS_IAC_WORKSPACES", json.dumps([spec]))
    install_settings()
    return drift, spec


def _branches(repo) -> list[str]:
    out = subprocess.run(["git", "branch", "--format=%(refname:short)"], cwd=repo, capture_output=True, text=True)
    return out.stdout.split()


def test_reconcile_review_approve_and_reject(drift_env):
    from services.api.app import create_app
    from services.worker import tasks

    drift, spec = drift_env
    with TestClient(create_app(start_workers=False)) as client:
        assert client.get("/api/v1/drift/proposals").json()["items"] == []
        first = tasks.reconcile_iac.apply(args=["demo-bastion"]).result["demo-bastion"]
        assert first["proposals_created"] == [] and first["skipped"].get("iac", 0) > 0  # Terraform's own calls
        event = drift.step()
        second = tasks.reconcile_iac.apply(args=["demo-bastion"]).result["demo-bastion"]
        assert len(second["proposals_created"]) == 1, second
        again = tasks.reconcile_iac.apply(args=["demo-bastion"]).result["demo-bastion"]
        assert again["proposals_created"] == [] and again["records_read"] == 0  # watermark moved on

        proposal = client.get(f"/api/v1/drift/proposals/{second['proposals_created'][0]}").json()
        assert proposal["status"] == "pending" and proposal["diff"].startswith("--- ")
        assert proposal["verification"]["ok"], proposal["verification"]
        assert proposal["records"] and event["keys"][0][0] in " ".join(proposal["title"].split())
        # the out-of-band call is also a change event: a diagnosis on that resource sees who changed what
        changes = client.get("/api/v1/changes").json()["items"]
        record = proposal["records"][0]
        assert [c["source"] for c in changes] == ["cloudtrail"] and changes[0]["kind"] == "infra"
        assert record["eventName"] in changes[0]["detail"] and "out-of-band" in changes[0]["detail"]
        tasks.reconcile_iac.apply(args=["demo-bastion"])
        assert len(client.get("/api/v1/changes").json()["items"]) == 1  # stored once, by the CloudTrail event id

        no_reason = client.post(f"/api/v1/drift/proposals/{proposal['id']}/review", json={"approved": False})
        assert no_reason.status_code == 422
        approved = client.post(f"/api/v1/drift/proposals/{proposal['id']}/review", json={"approved": True}).json()
        assert approved["status"] == "approved" and approved["branch"].startswith("nsync/")
        assert approved["branch"] in _branches(drift.terraform_dir)
        head = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=drift.terraform_dir,
                              capture_output=True, text=True).stdout.strip()
        assert head == "main"  # never committed to main
        twice = client.post(f"/api/v1/drift/proposals/{proposal['id']}/review", json={"approved": True})
        assert twice.status_code == 409

        drift.step()
        third = tasks.reconcile_iac.apply(args=["demo-bastion"]).result["demo-bastion"]
        rejected = client.post(f"/api/v1/drift/proposals/{third['proposals_created'][0]}/review",
                               json={"approved": False, "comment": "this change will be reverted"}).json()
        assert rejected["status"] == "rejected" and rejected["review_comment"] == "this change will be reverted"
        workspaces = client.get("/api/v1/drift/workspaces").json()["items"]
        assert workspaces[0]["name"] == "demo-bastion" and workspaces[0]["watermark"]
        assert client.post("/api/v1/drift/reconcile", json={"workspace": "nope"}).status_code == 404
