"""Shared state across processes that share no disk: PostgreSQL + Redis, each process in its own directory.

Like containers: the API, a jobs worker (queue ``causal``) and an agents worker (observe, diagnose,
act) each run with their own working directory and nothing but the database, the broker and the
cloud in common. Checks the two paths that a local ./var used to hide:

* a model trained on the jobs worker is the one the actor on the agents worker recommends with;
* the outcome row the actor records is read by the next retrain on the jobs worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, ROOT, ec2_node, free_port, wait_for
from tests.platform.apiprocs import drop_broker_keys, ready, stop_all
from tests.platform.pgdb import fresh_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REDIS_DB = 12
SEEDED_EVENTS = 600  # enough for a quick model with a one-contrast refutation gate (~30 s on a busy core)


@pytest.fixture
def postgres_url():
    with fresh_postgres("aiops_state") as url:
        yield url


@pytest.fixture
def deployment(tmp_path, moto_endpoint, postgres_url):
    """Processes spawned each in its own empty directory; the environment names only servers."""
    from services.storage.migrate import upgrade

    broker = f"{REDIS_URL}/{REDIS_DB}"
    prefix = f"aiops-test-{uuid.uuid4().hex[:8]}:"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIOPS_")}
    env.update({
        "PYTHONPATH": str(ROOT),  # the code, not the data: processes find the package, nothing else
        "AIOPS_DATABASE_URL": postgres_url,
        "AIOPS_BROKER_URL": broker,
        "AIOPS_RESULT_BACKEND": broker,
        "AIOPS_BROKER_KEY_PREFIX": prefix,
        "AIOPS_CLOUD_ENDPOINT": moto_endpoint,
        "AIOPS_EMBEDDING": "hashing",
        "AIOPS_APPROVAL_REQUIRED_RISK": "critical",  # whatever the model picks runs without a person
        "PYTHONUNBUFFERED": "1",
    })
    upgrade(postgres_url)
    procs: list[subprocess.Popen] = []
    homes: dict[str, Path] = {}

    def spawn(name: str, *args: str) -> subprocess.Popen:
        home = homes[name] = tmp_path / name
        home.mkdir()
        log = open(tmp_path / f"{name}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "services", *args], cwd=home,
                                env={**env, "AIOPS_CHROMA_PATH": str(home / "chroma")},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    yield {"env": env, "spawn": spawn, "homes": homes, "url": postgres_url, "broker": broker, "prefix": prefix,
           "logs": tmp_path}
    stop_all(procs)
    drop_broker_keys(prefix, db=REDIS_DB)


def _train(celery, *, timeout: float = 240) -> dict:
    """Enqueue the retrain exactly as beat does (by name, no arguments) and wait for its result."""
    # an embedded worker started by an earlier test marks this process as a worker: allow the wait
    task = celery.send_task("aiops.causal.train", kwargs={"quick": True})
    return task.get(timeout=timeout, disable_sync_subtasks=False)


def _plan(base: str, node: str) -> dict | None:
    """The planned step and final status of the incident on `node`, once it is resolved or escalated."""
    for item in httpx.get(f"{base}/api/v1/incidents").json()["items"]:
        detail = httpx.get(f"{base}/api/v1/incidents/{item['id']}").json()
        if detail.get("node") != node or detail["status"] not in {"resolved", "escalated"}:
            continue
        plans = [e for e in detail["timeline"] if e["kind"] == "planned"]
        runs = {e["data"]["stage"]: e["data"] for e in detail["timeline"] if e["kind"] == "task"}
        # the act task writes its timing entry just after the flow finishes: wait for it too
        return {"plan": plans[0]["data"], "runs": runs} if plans and "act" in runs else None
    return None


def _alert(base: str, node: str) -> None:
    response = httpx.post(f"{base}/api/v1/alerts", json={
        "name": "NodeHung", "severity": "high", "node": node,
        "summary": "soft lockup; blocked for more than 120 seconds, heartbeat lost"})
    assert response.status_code == 202, response.text


def test_train_on_jobs_recommend_on_agents_and_outcomes_reach_the_retrain(deployment, moto_endpoint, tmp_path):
    from causal.data import write_events
    from causal.synthetic import simulate_events
    from services.config import Settings
    from services.mitigation.events import count_events, import_events, iter_event_rows
    from services.mitigation.registry import model_registry
    from services.worker.celery_app import create_celery

    url = deployment["url"]
    history = tmp_path / "history.csv"  # the operator's history, loaded once like `aiops causal import-events`
    write_events(simulate_events(SEEDED_EVENTS, seed=0).frame, history)
    assert import_events(url, path=history)["imported"] == SEEDED_EVENTS

    port = free_port()
    deployment["spawn"]("api", "api", "--port", str(port))
    deployment["spawn"]("jobs", "worker", "--queues", "causal", "--concurrency", "1")
    deployment["spawn"]("agents", "worker", "--queues", "observe,diagnose,act", "--concurrency", "1")
    base = f"http://127.0.0.1:{port}"
    celery = create_celery(Settings(_env_file=None, broker_url=deployment["broker"],
                                    result_backend=deployment["broker"], broker_key_prefix=deployment["prefix"]))
    wait_for(lambda: ready(base), timeout=60, message="API ready")

    # (a) train on the jobs worker, from the events in the database
    first = _train(celery)
    assert first["source"] == "database" and first["events_read"] == SEEDED_EVENTS, first
    assert first["version"] == "v0001", first
    registry = model_registry(url)
    if not first["promoted"]:  # the gate refused: an operator forces it, as the API allows
        registry.promote("v0001", force=True)
    assert registry.active_version() == "v0001"

    # ... and the actor on the agents worker recommends with it
    node = ec2_node(moto_endpoint)
    _alert(base, node)
    done = wait_for(lambda: _plan(base, node), timeout=90, message="incident planned and finished on the agents worker")
    assert "causal" in done["plan"]["reason"] and "model v0001" in done["plan"]["reason"], done["plan"]
    assert done["plan"]["causal"]["explanation"]["model_version"] == "v0001"
    assert done["runs"]["act"]["worker"].startswith("aiops-observe-diagnose-act@"), done["runs"]
    assert done["runs"]["act"]["pid"] != os.getpid()

    # (b) the outcome row the actor recorded is in the database ...
    wait_for(lambda: count_events(url) == SEEDED_EVENTS + 1, timeout=30, message="outcome row recorded")
    recorded = list(iter_event_rows(url))[-1]
    assert recorded["node_id"] == node and recorded["action"] in {"wait", "reboot", "redeploy", "reimage", "repair"}

    # ... and the next retrain on the jobs worker reads it
    second = _train(celery)
    assert second["events_read"] == SEEDED_EVENTS + 1 and second["version"] == "v0002", second
    assert [v.version for v in registry.list()] == ["v0001", "v0002"]

    # a promotion is seen by the running actor without a restart (its cache re-checks the pointer)
    if registry.active_version() != "v0002":
        registry.promote("v0002", force=True)
    other = ec2_node(moto_endpoint)
    _alert(base, other)
    again = wait_for(lambda: _plan(base, other), timeout=90, message="second incident finished")
    assert "model v0002" in again["plan"]["reason"], again["plan"]

    # nothing of the shared state was written to any process's directory
    for name, home in deployment["homes"].items():
        leftovers = [p for p in home.rglob("*") if p.suffix in {".csv", ".joblib", ".db"} or "celerybeat" in p.name]
        assert not leftovers, (name, leftovers)
