"""The composition root for agents inside a worker: store, cloud, telemetry, checkpointer, graph.

Built lazily once per process from settings; ``aiops demo`` swaps in the simulator's cloud and
telemetry with ``configure``, because there the simulated fleet lives in the same process.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.graph import build_graph
from agents.protocols import CloudActions, NullTelemetry, Telemetry
from agents.tools import ActionPolicy, AgentTools
from services.config import Settings, get_settings
from services.connectors.cloud import Boto3Cloud
from services.connectors.http import HttpActions, HttpTelemetry
from services.incidents.service import SqlIncidentStore


def make_checkpointer(url: str):
    """SQLite file embedded, Postgres distributed; both are shared safely by several worker processes."""
    if url.startswith("postgresql"):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        conn = Connection.connect(url.replace("+psycopg", ""), autocommit=True, prepare_threshold=0, row_factory=dict_row)
        saver = PostgresSaver(conn)
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        saver = SqliteSaver(conn)
    saver.setup()
    return saver


@dataclass
class Runtime:
    settings: Settings
    tools: AgentTools
    graph: Any
    extras: dict[str, Any] = field(default_factory=dict)


_lock = threading.Lock()
_runtime: Runtime | None = None
_overrides: dict[str, Any] = {}


def configure(**overrides: Any) -> None:
    """Replace parts of the toolbox (cloud, telemetry, compress, recall, ...) before the first task runs."""
    global _runtime
    with _lock:
        _overrides.update(overrides)
        _runtime = None


def build_runtime(settings: Settings) -> Runtime:
    store = SqlIncidentStore(settings.database_url)
    cloud: CloudActions = _overrides.get("cloud") or (
        HttpActions(settings.actions_url) if settings.actions_url
        else Boto3Cloud(endpoint_url=settings.cloud_endpoint, region=settings.cloud_region))
    telemetry: Telemetry = _overrides.get("telemetry") or (
        HttpTelemetry(settings.telemetry_url) if settings.telemetry_url else NullTelemetry())
    policy = ActionPolicy(approval_required_risk=settings.approval_required_risk,
                          actions_enabled=settings.actions_enabled,
                          max_actions_per_hour=settings.max_actions_per_hour)
    tools = AgentTools(store=store, cloud=cloud, telemetry=telemetry, policy=policy)
    if settings.memory_enabled:
        from services.episodes.service import agent_memory

        memory = agent_memory(settings)
        tools.compress, tools.recall, tools.on_resolved = memory.compress, memory.recall, memory.on_resolved
    from services.mitigation.service import NodeMitigationAdvisor, record_from_actor

    advisor = NodeMitigationAdvisor(settings, telemetry=telemetry)
    tools.recommend_node_action = advisor.recommend
    tools.record_mitigation = lambda outcome: record_from_actor(advisor, outcome)
    for name in ("compress", "recall", "recommend_node_action", "on_resolved"):
        if name in _overrides:
            setattr(tools, name, _overrides[name])
    graph = build_graph(tools, checkpointer=make_checkpointer(settings.resolved_checkpoint_url))
    return Runtime(settings=settings, tools=tools, graph=graph)


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(get_settings())
        return _runtime


def reset_runtime() -> None:
    global _runtime
    with _lock:
        _runtime = None
        _overrides.clear()
