"""The runtime's locks: reading the telemetry source never waits for the agents' graph to be built.

Building the graph sets up the checkpointer's tables, which on PostgreSQL can wait for a database lock
held by the ingest writer's open transaction; that transaction reads ``runtime.telemetry`` (the topology,
for correlation). With one lock for both, the two waited for each other for ever (a CI hang).
"""

from __future__ import annotations

import threading

from tests.conftest import install_settings


def test_telemetry_answers_while_the_graph_build_waits(platform_env, monkeypatch):
    import services.worker.runtime as runtime_module

    building, release = threading.Event(), threading.Event()
    real = runtime_module.make_checkpointer

    def checkpointer_waiting_on_a_database_lock(url):
        building.set()
        assert release.wait(30)
        return real(url)

    monkeypatch.setattr(runtime_module, "make_checkpointer", checkpointer_waiting_on_a_database_lock)
    runtime = runtime_module.Runtime(install_settings())
    builder = threading.Thread(target=lambda: runtime.graph, daemon=True)
    builder.start()
    try:
        assert building.wait(60), "the graph build did not reach the checkpointer"
        answered: list[object] = []
        reader = threading.Thread(target=lambda: answered.append(runtime.telemetry), daemon=True)
        reader.start()
        reader.join(10)
        assert answered, "runtime.telemetry waited for the graph build"
        assert answered[0] is runtime.tools.telemetry  # the agents' toolbox reads the same source
    finally:
        release.set()
        builder.join(60)
    assert runtime.graph is not None
