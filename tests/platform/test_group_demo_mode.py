"""The demo picks its alert path by what is installed, and the API correlates with its telemetry's topology."""

from __future__ import annotations

import os

import pytest

from services.demo import alerting_mode
from sim.alerting import DEBIAN_PATHS, binaries


def test_the_demo_uses_prometheus_whenever_it_is_installed():
    found = ("/usr/bin/prometheus", "/usr/bin/prometheus-alertmanager")
    assert alerting_mode(None, found=found)[0] is True
    assert alerting_mode(True, found=found)[0] is True
    use, why = alerting_mode(None, found=None)
    assert use is False and "not installed" in why and "apt-get install" in why
    assert alerting_mode(True, found=None)[0] is False  # asked for, missing: falls back, says so
    use, why = alerting_mode(False, found=found)
    assert use is False and "--no-prometheus" in why


def test_binaries_are_found_at_the_debian_paths_without_path(monkeypatch):
    installed = [p for p in (*DEBIAN_PATHS["prometheus"], *DEBIAN_PATHS["alertmanager"]) if os.path.isfile(p)]
    if len(installed) < 2:
        pytest.skip("the Debian prometheus packages are not installed here")
    monkeypatch.setenv("PATH", "")
    found = binaries()
    assert found is not None and found[0] in DEBIAN_PATHS["prometheus"] and found[1] in DEBIAN_PATHS["alertmanager"]


class _Topology:
    """A telemetry source that knows only the topology (what correlation reads); counts the asks."""

    def __init__(self, topology: dict | None, *, fail: bool = False) -> None:
        self.topology_value, self.fail, self.asked = topology, fail, 0

    def metrics(self, target, *, minutes=15):
        return {}

    def logs(self, target, *, minutes=15):
        return []

    def health(self, target):
        return None

    def topology(self):
        self.asked += 1
        if self.fail:
            raise ConnectionError("telemetry source down")
        return self.topology_value


def test_the_api_correlates_with_the_runtime_topology_and_asks_for_it_once_per_ttl(tmp_path):
    from fastapi.testclient import TestClient

    from services.api.app import create_app
    from services.config import Settings
    from services.storage.migrate import upgrade
    from services.worker import runtime

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'api.db'}", topology_cache_s=3600)
    upgrade(settings.database_url)
    source = _Topology({"edges": [["web", "api"]], "placement": {"api": "node-7"}})
    runtime.install(settings, telemetry=source)
    with TestClient(create_app(settings, start_workers=False)) as client:
        first = client.post("/api/v1/alerts", json={"name": "NodeDown", "node": "node-7"}).json()
        second = client.post("/api/v1/alerts", json={"name": "HighLatency", "service": "web"}).json()
        third = client.post("/api/v1/alerts", json={"name": "HighLatency", "service": "api"}).json()
        timeline = client.get(f"/api/v1/incidents/{first['incidents_opened'][0]}").json()["timeline"]
    assert second["incidents_opened"] and third["incidents_joined"] == first["incidents_opened"]
    assert [e["message"] for e in timeline if e["kind"] == "correlated"] == [
        f"alert HighLatency on api joined incident #{first['incidents_opened'][0]}: correlated because "
        "api runs on node-7 (one fault, diagnosed once)"]
    assert source.asked == 1


def test_an_unreachable_topology_source_still_correlates_the_same_component(tmp_path):
    from services.alerts.service import process_correlation
    from services.config import Settings
    from services.worker import runtime

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", topology_cache_s=3600)
    source = _Topology(None, fail=True)
    runtime.install(settings, telemetry=source)
    first = process_correlation()
    second = process_correlation()
    assert first.topology == second.topology == {} and source.asked == 1  # the failure is remembered too


def test_the_demo_compresses_the_shipped_rule_timings_in_proportion(tmp_path):
    """Every ``for:`` and rate range is the shipped one times the scale (floored at the scrape interval),
    so a fault's alerts fire in the order the shipped rules give them."""
    import yaml

    from sim.alerting import DEPLOY, _prometheus_config, _seconds

    _prometheus_config(tmp_path, exporter="x:1", alertmanager="y:2", nodes=["n"], services=["s"], interval="2s",
                       rule_for=None, rate_range=None, time_scale=0.1)
    shipped = [r for g in yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())["groups"] for r in g["rules"]]
    made = [r for g in yaml.safe_load((tmp_path / "rules.yml").read_text())["groups"] for r in g["rules"]]
    assert [r["alert"] for r in made] == [r["alert"] for r in shipped]
    for ours, theirs in zip(made, shipped, strict=True):
        assert _seconds(ours["for"]) == max(2, round(_seconds(theirs["for"]) * 0.1))
        assert ("[5m]" in theirs["expr"]) == ("[30s]" in ours["expr"])
