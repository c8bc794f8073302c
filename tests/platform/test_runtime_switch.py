"""A process that switches database (tests, the demo) never runs the old database's tasks on the new one.

Embedded workers outlive the runtime that started them: a task queued before the switch with a
countdown sits in the worker's timer, where emptying the in-memory queues cannot reach it, and a
task running across the switch would read the new runtime half-way through.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import install_settings, wait_for


def _seed_incident(url: str) -> int:
    """An open incident with one alert on a node no cloud knows (observe still runs and records)."""
    from services.alerts.models import Alert
    from services.incidents.models import Incident
    from services.storage.base import session_scope

    with session_scope(url) as session:
        incident = Incident(title="NodeUnresponsive on node-1", status="open", severity="high",
                            group_key="g-switch", node="node-1")
        session.add(incident)
        session.flush()
        session.add(Alert(fingerprint="a" * 64, source="json", name="NodeUnresponsive", severity="high",
                          node="node-1", summary="kernel soft lockup; heartbeat lost", incident_id=incident.id))
        return incident.id


def _memory_queues_empty() -> bool:
    from kombu.transport import memory

    return all(queue.empty() for queue in memory.Channel.queues.values())


def _task_runs(url: str, incident_id: int) -> set[str]:
    """The ids of the tasks that ran for the incident (each run leaves a ``task:<id>`` timeline entry)."""
    from services.incidents.models import TimelineEvent
    from services.storage.base import session_scope

    with session_scope(url) as session:
        keys = session.query(TimelineEvent.dedup_key).filter(TimelineEvent.incident_id == incident_id,
                                                              TimelineEvent.kind == "task")
        return {k.removeprefix("task:") for (k,) in keys}


def test_a_countdown_task_of_the_old_database_is_dropped_after_a_switch(platform_env, tmp_path, monkeypatch):
    from services.api.app import create_app
    from services.storage.migrate import upgrade
    from services.worker.queue import OBSERVE, enqueue

    other = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other)
    incident_id = _seed_incident(other)  # database B holds an incident with the id the stale task names
    with TestClient(create_app()):  # starts the process's embedded worker on database A
        pass
    stale = enqueue(OBSERVE, incident_id, countdown=3)  # queued for database A
    wait_for(_memory_queues_empty, message="the worker holds the task in its timer")
    monkeypatch.setenv("AIOPS_DATABASE_URL", other)
    install_settings()  # the switch: a new epoch

    # the control: the same task queued after the switch runs on database B (so the check below can fail)
    control = enqueue(OBSERVE, incident_id, countdown=4)
    wait_for(lambda: control in _task_runs(other, incident_id), timeout=60, message="the control ran on database B")
    assert stale not in _task_runs(other, incident_id)  # due a second earlier, it was dropped


def test_a_pinned_task_keeps_its_runtime_across_an_install(platform_env, tmp_path, monkeypatch):
    from services.worker import runtime

    before = runtime.current()
    with runtime.pinned() as held:
        monkeypatch.setenv("AIOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'next.db'}")
        installed = install_settings()
        assert runtime.current() is held is before
    assert runtime.current().settings is installed
