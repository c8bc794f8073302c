"""The composition root of one process: settings in, store/cloud/telemetry/checkpointer/graph out.

A process installs one ``Runtime`` built from a ``Settings`` object (``install``); every task and
flow reads the settings and the agents' toolbox from it instead of re-reading the environment.
The demo installs the simulator's cloud and telemetry the same way; tests install their own
settings, so nothing has to clear caches. The toolbox and graph are built on first use, so a
process that only sends notifications never loads the agents' models.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agents.graph import build_graph
from agents.protocols import CloudActions, NullTelemetry, Telemetry
from agents.tools import ActionPolicy, AgentTools
from services.config import Settings
from services.connectors.aws import AwsActions
from services.connectors.cloud import Boto3Cloud
from services.connectors.cloudwatch import CloudWatchTelemetry
from services.connectors.fleet import StoredSignals
from services.connectors.http import HttpActions, HttpTelemetry
from services.connectors.prometheus import PrometheusTelemetry
from services.episodes.service import agent_memory
from services.incidents.service import SqlIncidentStore
from services.mitigation.service import NodeMitigationAdvisor, record_from_actor
from services.worker.celery_app import use_database

HOOKS = ("compress", "recall", "recommend_node_action", "on_resolved", "record_mitigation")


def make_checkpointer(url: str):
    """SQLite file embedded, Postgres distributed; both are shared safely by several worker processes."""
    if url.startswith("postgresql"):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        conn = Connection.connect(url.replace("+psycopg", ""), autocommit=True, prepare_threshold=0,
                                  row_factory=dict_row)
        saver = PostgresSaver(conn)
        saver.setup()
        return saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        lite = SqliteSaver(db)
        lite.setup()
        return lite


class Runtime:
    """What one process builds from its settings; parts passed in replace the defaults."""

    def __init__(self, settings: Settings, *, cloud: CloudActions | None = None, telemetry: Telemetry | None = None,
                 hooks: dict[str, Any] | None = None) -> None:
        unknown = set(hooks or {}) - set(HOOKS)
        if unknown:
            raise ValueError(f"unknown agent hooks {sorted(unknown)}; known: {', '.join(HOOKS)}")
        self.settings = settings
        self._cloud, self._telemetry, self._hooks = cloud, telemetry, dict(hooks or {})
        self._lock = threading.Lock()
        # the graph has a lock of its own: building it sets up the checkpointer's tables, which can wait on
        # a database lock held by a transaction that itself needs ``telemetry`` (the ingest writer's
        # correlation) -- one shared lock made that a deadlock
        self._graph_lock = threading.Lock()
        self._tools: AgentTools | None = None
        self._graph: Any = None
        self._source: Telemetry | None = None

    @property
    def tools(self) -> AgentTools:
        with self._lock:
            if self._tools is None:
                self._tools = self._build_tools()
            return self._tools

    @property
    def graph(self) -> Any:
        tools = self.tools
        with self._graph_lock:
            if self._graph is None:
                self._graph = build_graph(tools, checkpointer=make_checkpointer(self.settings.resolved_checkpoint_url))
            return self._graph

    @property
    def telemetry(self) -> Telemetry:
        """The telemetry source, without building the agents' toolbox: the API reads the topology from it
        to correlate alerts, and must not load the agents' models for that."""
        with self._lock:
            if self._tools is not None:
                return self._tools.telemetry
            if self._source is None:
                self._source = self._telemetry_source()
            return self._source

    def _telemetry_source(self) -> Telemetry:
        settings = self.settings
        telemetry: Telemetry = self._telemetry or telemetry_from_settings(settings)
        if self._telemetry is None and settings.stored_signals:
            telemetry = StoredSignals(telemetry, database_url=settings.database_url)
        return telemetry

    def _build_tools(self) -> AgentTools:
        settings = self.settings
        store = SqlIncidentStore(settings)
        cloud: CloudActions = self._cloud or (
            HttpActions(settings.actions_url) if settings.actions_url
            else AwsActions.from_settings(settings) if settings.cloud_actions == "aws"
            else Boto3Cloud.from_settings(settings))
        telemetry = self._source or self._telemetry_source()
        policy = ActionPolicy(approval_required_risk=settings.approval_required_risk,
                              actions_enabled=settings.actions_enabled,
                              max_actions_per_hour=settings.max_actions_per_hour)
        tools = AgentTools(store=store, cloud=cloud, telemetry=telemetry, policy=policy)
        if settings.memory_enabled:
            memory = agent_memory(settings)
            tools.compress, tools.recall, tools.on_resolved = memory.compress, memory.recall, memory.on_resolved
        advisor = NodeMitigationAdvisor(settings, telemetry=telemetry, inventory=getattr(cloud, "inventory", None))
        tools.recommend_node_action = advisor.recommend
        tools.record_mitigation = lambda outcome: record_from_actor(advisor, outcome)
        for name, hook in self._hooks.items():
            setattr(tools, name, hook)
        return tools


_lock = threading.Lock()
_current: Runtime | None = None
_pinned = threading.local()


def telemetry_from_settings(settings: Settings) -> Telemetry:
    """The configured telemetry source, first set wins: ``prometheus_url``, ``telemetry_url`` (the
    simulator's or a custom probe API), ``cloudwatch_telemetry``; else none (the alert alone)."""
    if settings.prometheus_url:
        return PrometheusTelemetry(settings.prometheus_url, timeout_s=settings.prometheus_timeout_s,
                                   templates=settings.prometheus_templates)
    if settings.telemetry_url:
        return HttpTelemetry(settings.telemetry_url)
    if settings.cloudwatch_telemetry:
        return CloudWatchTelemetry(region=settings.cloud_region, endpoint_url=settings.cloud_endpoint,
                                   simulator=settings.cloud_is_simulator, log_group=settings.cloudwatch_log_group)
    return NullTelemetry()



def install(settings: Settings, *, cloud: CloudActions | None = None, telemetry: Telemetry | None = None,
            hooks: dict[str, Any] | None = None) -> Runtime:
    """Make this process run with ``settings`` (and optional cloud, telemetry, agent hooks)."""
    global _current
    runtime = Runtime(settings, cloud=cloud, telemetry=telemetry, hooks=hooks)
    with _lock:
        _current = runtime
    # tasks queued in this process for a previous database would otherwise run against the new one
    use_database(settings.database_url)
    return runtime


def current() -> Runtime:
    """The installed runtime; a worker started from the command line installs one from its environment.

    Inside ``pinned`` it is the runtime the thread pinned, whatever was installed since.
    """
    global _current
    runtime = getattr(_pinned, "runtime", None)
    if runtime is not None:
        return runtime
    with _lock:
        if _current is None:
            _current = Runtime(Settings())
        return _current


@contextmanager
def pinned() -> Iterator[Runtime]:
    """Run a task on the runtime it started with: a process that installs another runtime meanwhile
    (a test, the demo) must not have a task's later steps write to a different database."""
    runtime = current()
    outer = getattr(_pinned, "runtime", None)
    _pinned.runtime = runtime
    try:
        yield runtime
    finally:
        _pinned.runtime = outer


def reset() -> None:
    """Forget the installed runtime (the next ``current()`` reads the environment again)."""
    global _current
    with _lock:
        _current = None
