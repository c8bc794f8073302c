"""The console's drift page shows the last reconciliation's outcome counts, event names and no-config reasons
(issue 11, item 3: nothing silent)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(platform_env):
    from services.api.app import create_app

    with TestClient(create_app(start_workers=False)) as client:
        yield client


def test_drift_page_lists_outcomes_and_reasons(client, platform_env):
    from services.drift.models import IacWorkspaceState
    from services.storage.base import session_scope

    result = {"records_read": 12, "outcomes": {"proposal": {"CreateTags": 2}, "unsupported": {"FrobnicateWidget": 1},
                                               "no_config_effect": {"PutInventory": 1}},
              "no_config_reasons": {"PutInventory": "SSM agent reporting the instance's inventory"}}
    with session_scope(platform_env["AIOPS_DATABASE_URL"]) as session:
        session.add(IacWorkspaceState(name="prod-network", last_run_at=datetime(2026, 1, 2, tzinfo=UTC), last_result=result))
    page = client.get("/drift")
    assert page.status_code == 200, page.text[:300]
    text = page.text
    assert "Last reconciliation" in text and "prod-network" in text
    assert "CreateTags ×2" in text and "FrobnicateWidget" in text and "unsupported" in text
    assert "PutInventory: SSM agent reporting the instance&#39;s inventory" in text
