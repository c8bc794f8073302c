"""The benchmark runner: lists benchmarks, refuses unknown ones, writes the report it prints."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def _bench(*args: str, results=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"AIOPS_BENCH_RESULTS": str(results)} if results else {})}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


def test_lists_and_rejects():
    listed = _bench("--help")
    assert listed.returncode == 0
    for name in ("compression", "recall", "causal", "iac", "incidents"):
        assert name in listed.stdout
    unknown = _bench("nope")
    assert unknown.returncode == 2 and "unknown benchmark" in unknown.stderr


def test_incidents_benchmark_prints_and_writes_its_table(tmp_path):
    result = _bench("incidents", "--scenarios", "6", results=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| responder | scenarios | task success |" in result.stdout
    written = (tmp_path / "incidents.md").read_text()
    assert "python -m bench incidents --scenarios 6" in written
