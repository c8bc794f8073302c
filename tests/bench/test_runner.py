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
    rows = tmp_path / "rows.jsonl"
    result = _bench("incidents", "--scenarios", "6", "--seed", "0", "--no-progress", "--data", str(rows),
                    results=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| responder | scenarios | task success |" in result.stdout
    written = (tmp_path / "incidents.md").read_text()
    assert "python -m bench incidents --scenarios 6" in written
    for section in ("## Per fault kind", "## Per variant", "vs the best baseline"):
        assert section in written
    import json

    records = [json.loads(line) for line in rows.read_text().splitlines()]
    assert {r["responder"] for r in records} == {"agents", "agents-no-topology", "alert-runbook", "first-aid"}
    assert len(records) == 24 and len({r["kind"] for r in records}) == 6  # 6 distinct kinds among 6 scenarios
    # the same scenarios for every responder: a seeded generator, not a per-responder draw
    by = {}
    for r in records:
        by.setdefault(r["responder"], []).append((r["kind"], r["cascade"], r["target"]))
    assert len({tuple(v) for v in by.values()}) == 1
    from bench.readme import incidents_row

    what, figure = incidents_row(written)
    assert "6 simulated scenarios" in what and "MTTR" in figure


def test_console_benchmark_measures_every_page_kind_on_both_backends(tmp_path):
    result = _bench("console", "--incidents", "300", "--drifts", "20", "--repeats", "3", results=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    written = (tmp_path / "console.md").read_text()
    assert "python -m bench console --incidents 300" in written
    for backend in ("sqlite", "postgres"):
        assert f"## {backend}: 300 incidents, 3,000 timeline rows" in written
    assert written.count("| incident page |") == 2 and written.count("| search, rare term |") == 2
    assert "Bitmap Index Scan (ix_incidents_search_trgm)" in written  # the index is there and usable
    from bench.readme import console_row

    what, figure = console_row(written)
    assert "300 incidents" in what and "postgres p95 list" in figure and "KB gzip" in figure
