"""`bench causal --only semisynthetic` replaces its own section of the results file and merges filtered rows."""

from __future__ import annotations

from bench.causal import keep_unmeasured_rows, replace_sections

PREVIOUS = """# bench: causal

Command: `python -m bench causal`

## Simulator: 100 logged episodes

| policy | downtime |
|---|---|
| legacy | 1.0 |

## Semi-synthetic CATE on real covariates (2,000 rows, 90/10 split, 3 reps)

old prose

| covariates | effect shape | rep seeds | 90% coverage served (calibrated) |
|---|---|---|---|
| lalonde | smooth | 0-2 | 0.700 |
| lalonde | step | 0-2 | 0.800 |
| simulator | smooth | 0-2 | 0.600 |

### For comparison: an older table

| covariates | effect shape |
|---|---|
| lalonde | smooth |

## Scale

| stage | wall time (s) |
|---|---|
| fit | 1.0 |
"""

NEW = """## Semi-synthetic CATE on real covariates (2,000 rows, 90/10 split, 3 reps per setting)

new prose

| covariates | effect shape | rep seeds | 90% coverage served (calibrated) | mean 90% width served |
|---|---|---|---|---|
| lalonde | step | 50-52 | 0.900 | 1.200 |
"""


def test_a_filtered_run_replaces_its_rows_and_keeps_the_others():
    merged = keep_unmeasured_rows(PREVIOUS, NEW)
    assert merged.startswith("## Semi-synthetic CATE") and "new prose" in merged and "old prose" not in merged
    assert "| lalonde | step | 50-52 | 0.900 | 1.200 |" in merged
    assert "| lalonde | smooth | 0-2 | 0.700 | - |" in merged and "| simulator | smooth | 0-2 | 0.600 | - |" in merged
    assert "0.800" not in merged
    order = [line.split("|")[1:3] for line in merged.splitlines() if line.startswith(("| lalonde", "| simulator"))]
    assert [[c.strip() for c in r] for r in order] == [["lalonde", "smooth"], ["lalonde", "step"],
                                                        ["simulator", "smooth"]]
    assert "not re-measured by this run): lalonde smooth, simulator smooth" in merged
    # spliced into the file, every other section stays as it was
    whole = replace_sections(PREVIOUS, merged, note="_Re-run now_")
    for kept in ("| legacy | 1.0 |", "## Scale", "| fit | 1.0 |"):
        assert kept in whole
    assert whole.count("## Semi-synthetic CATE") == 1


def test_a_run_that_measures_every_setting_keeps_nothing_old():
    assert keep_unmeasured_rows(PREVIOUS, NEW.replace("| lalonde | step | 50-52 | 0.900 | 1.200 |", "| lalonde | smooth | 0-2 | 0.9 | 1 |\n| lalonde | step | 0-2 | 0.9 | 1 |\n| simulator | smooth | 0-2 | 0.9 | 1 |")) .count("Kept from") == 0


def test_tuning_seeds_are_a_section_of_their_own():
    from bench.causal import _section_key

    assert _section_key("## Semi-synthetic CATE on real covariates, rep seeds 50-52 (tuning) (2,000 rows)") != \
        _section_key("## Semi-synthetic CATE on real covariates (2,000 rows, 90/10 split, 3 reps per setting)")


def test_the_runner_merges_a_filtered_semisynthetic_run_into_the_results_file(tmp_path):
    """End to end: `python -m bench causal --only semisynthetic --covariates simulator --shapes step`."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    (tmp_path / "causal.md").write_text(PREVIOUS)
    result = subprocess.run([sys.executable, "-m", "bench", "causal", "--only", "semisynthetic", "--semi-reps", "1",
                             "--semi-rows", "400", "--covariates", "simulator", "--shapes", "step"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "AIOPS_BENCH_RESULTS": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    written = (tmp_path / "causal.md").read_text()
    assert written.startswith("# bench: causal\n\nCommand: `python -m bench causal`")
    for kept in ("| legacy | 1.0 |", "| fit | 1.0 |", "| lalonde | smooth | - | 0-2 |", "| lalonde | step | - | 0-2 |"):
        assert kept in written
    rows = [line for line in written.split("### For comparison")[0].splitlines() if line.startswith("| simulator |")]
    assert rows[0].startswith("| simulator | smooth | - | 0-2 |")     # kept (the old table had fewer columns)
    assert rows[1].startswith("| simulator | step | 1 | 0-0 | ") and len(rows) == 2
    assert "mean 90% width served" in written and "(wall " in written
    bad = subprocess.run([sys.executable, "-m", "bench", "causal", "--only", "semisynthetic", "--shapes", "wavy"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "AIOPS_BENCH_RESULTS": str(tmp_path)})
    assert bad.returncode == 2 and "--shapes: choose from smooth, step, heavy_tailed" in bad.stderr
