"""The README's IaC row is written from bench/results/iac.md's tables (no hand-typed figure)."""

from bench.readme import iac_row

RESULTS = """# bench: iac

### Per project

| project | scenarios | pass@1 | pass@3 | zero unrelated lines | unrelated lines (total) | LLM tokens/scenario | s/scenario (reconcile+verify) |
|---|---|---|---|---|---|---|---|
| a | 2 | 1.000 | 1.000 | 0.500 | 3 | 0.000 | 0.1 |
| b | 2 | 0.500 | 1.000 | 1.000 | 0 | 0.000 | 0.1 |
| ALL | 4 | 0.750 | 1.000 | 0.750 | 3 | 0.000 | 0.1 |

### Throughput

| records | seconds | drift_calls | proposals | target | met |
|---|---|---|---|---|---|
| 10000 | 0.190 | 1111 | 1 | < 10 s | True |

### Coverage of real CloudTrail (data/cloudtrail)

| corpus | records | mutating records | distinct mutating names | rule | no config effect (reasoned) | unsupported | covered |
|---|---|---|---|---|---|---|---|
| x | 9 | 5 | 4 | 2 | 1 | 1 | 0.750 |
| ALL (distinct) | 9 | 5 | 4 | 2 | 1 | 1 | 0.750 |
"""


def test_iac_row_reads_the_tables():
    what, figure = iac_row(RESULTS)
    assert what == "IaC drift reconciliation (4 injected drifts, 2 projects)"
    assert figure.startswith("pass@1 0.75, pass@3 1.00")
    assert "zero unrelated lines in 75.0% of scenarios" in figure and "10,000 records in 0.19 s" in figure
    assert "3/4 distinct mutating calls" in figure
