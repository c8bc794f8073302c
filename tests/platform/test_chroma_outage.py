"""A Chroma outage on a throwaway real Chroma server: recall degrades, the diagnosis goes on, memory comes back.

The agents' vector memory is a separate server in distributed deployments (docker-compose's
``chroma``). When it is down, the diagnoser must still rank from telemetry and say on the
timeline that it ran without past episodes; when it returns, recall works again with what was
stored before (the server's data directory survives the restart).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMA = shutil.which("chroma") or str(Path(__import__("sys").executable).parent / "chroma")


def _start(path: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([CHROMA, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: _up(port), timeout=60, message="throwaway chroma up")
    return proc


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class _Store:
    """Records what the diagnoser writes (the incident store's protocol, in memory)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def add_event(self, incident_id, *, kind, actor, message, data=None, dedup_key=None):
        self.events.append({"kind": kind, "actor": actor, "message": message, "data": data or {}})

    def save_hypotheses(self, incident_id, hypotheses):
        self.hypotheses = hypotheses

    def update_incident(self, incident_id, **fields):
        self.fields = fields


def test_chroma_down_degrades_recall_and_the_diagnosis_goes_on(tmp_path):
    from agents import diagnoser
    from agents.tools import AgentTools
    from memory.episodic import Episode
    from services.config import Settings
    from services.episodes.service import AgentMemory
    from services.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    port = free_port()
    settings = Settings(database_url=url, chroma_host="127.0.0.1", chroma_port=port, embedding="hashing")
    server = _start(tmp_path / "chroma", port)
    try:
        memory = AgentMemory(settings)
        memory.episodic.record(Episode(
            incident_id="41", title="checkout OOM", signals=["ContainerOOMKilled", "checkout out of memory"],
            compressed_context="java.lang.OutOfMemoryError: Java heap space in checkout",
            hypotheses=[{"root_cause": "memory_leak", "confidence": 0.8, "component": "checkout"}],
            actions=[{"action": "restart_service", "target": "checkout", "succeeded": True}],
            root_cause="memory_leak", outcome="resolved", time_to_recover_s=120.0))
        state = {"incident_id": 7, "alert": {"name": "ContainerOOMKilled", "summary": "checkout out of memory",
                                             "service": "checkout"},
                 "context": "java.lang.OutOfMemoryError: Java heap space in checkout"}
        before = memory.recall(state)
        assert [v["root_cause"] for v in before if v["source"] == "episode"] == ["memory_leak"]

        server.terminate()
        server.wait(timeout=30)
        assert not _up(port)
        store = _Store()
        tools = AgentTools(store=store, cloud=None, telemetry=None, recall=memory.recall)
        out = diagnoser.diagnose(dict(state), tools=tools)
        assert out["hypotheses"], "the diagnosis must go on without memory"
        degraded = [e for e in store.events if e["kind"] == "degraded"]
        assert len(degraded) == 1 and "without past episodes" in degraded[0]["message"]
        diagnosed = [e for e in store.events if e["kind"] == "diagnosed"]
        assert diagnosed and diagnosed[0]["data"]["recalled"] == 0

        server = _start(tmp_path / "chroma", port)
        after = memory.recall(state)
        assert [v["root_cause"] for v in after if v["source"] == "episode"] == ["memory_leak"]
    finally:
        server.terminate()
        server.wait(timeout=30)
