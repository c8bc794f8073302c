"""`aiops demo --duration N` runs the whole product against the simulated fleet and resolves incidents."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, run_cli

pytestmark = pytest.mark.slow


def test_demo_resolves_simulated_incidents(tmp_path):
    env = {"AIOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "AIOPS_CHROMA_PATH": str(tmp_path / "chroma"),
           "AIOPS_EMBEDDING": "hashing"}
    # the direct path (the simulator posts its alerts); the Prometheus path has tests/platform/test_prometheus_chain.py
    result = run_cli("demo", "--duration", "30", "--fault-interval", "5", "--drift-interval", "8",
                     "--port", str(free_port()), "--no-prometheus",
                     env=env, timeout=240)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "console: http://127.0.0.1:" in out
    assert "alert mode: direct: --no-prometheus" in out
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines() if line.count("│") == 3}
    assert int(rows["faults_injected"]) >= 2
    assert int(rows["incidents_opened"]) >= 2
    assert int(rows["incidents_resolved"]) >= 1
    assert int(rows["faults_recovered (simulator truth)"]) >= 1  # the simulator, not the platform, says so
    right, executed = (int(x) for x in rows["acted_on_the_right_component (simulator truth)"].split(" of "))
    assert executed >= 1 and 0 < right <= executed
    # the demo opens with a cascade (the alert fires on a dependent) and the incident names the faulty component
    assert int(rows["cascade_faults (alert on a dependent)"]) >= 1
    assert int(rows["cascades_diagnosed_upstream"]) >= 1
    assert int(rows["drifts_injected"]) >= 1
    assert int(rows["drift_proposals_verified"]) >= 1  # console edits became verified Terraform patches
