"""`bench causal --only X` replaces only its own sections of bench/results/causal.md."""

from __future__ import annotations

from bench.causal import replace_sections

DOC = """# bench: causal

Command: `python -m bench causal`\x20\x20
Wall time: 1000.0 s

_full-run note_

## Simulator: 100,000 logged episodes

| a |
|---|
| 1 |

## Served estimator: causal_forest_dml (chosen on a split)

old card

## Semi-synthetic CATE on real covariates (2,000 rows)

semi table

## Scale (2-core machine)

| stage | wall time (s) |
|---|---|
| fit | 173.1 |
"""


def test_only_the_sections_of_the_new_part_change():
    new = "## Scale (2-core machine)\n\n| stage | wall time (s) |\n|---|---|\n| fit | 80.0 |\n"
    out = replace_sections(DOC, new, note="_re-run note_")
    assert "| fit | 80.0 |" in out and "173.1" not in out
    assert "_re-run note_" in out.split("## Scale")[1]
    before, after = DOC.split("## Scale")[0], out.split("## Scale")[0]
    assert before == after  # the header, the full run's command and every other section byte for byte


def test_a_section_is_matched_by_its_name_even_when_its_heading_figures_change():
    new = ("## Simulator: 100,000 logged episodes\n\nnew sim\n\n"
           "## Served estimator: linear_dml (chosen over 2 folds)\n\nnew card\n")
    out = replace_sections(DOC, new, note="_re-run note_")
    assert out.count("_re-run note_") == 1 and "(its note says how)" in out.split("## Served estimator")[1]
    assert "old card" not in out and "new card" in out and "new sim" in out
    assert out.count("## Served estimator") == 1 and "semi table" in out
    assert out.index("new card") < out.index("## Semi-synthetic")   # kept in place
    assert out.startswith("# bench: causal\n\nCommand: `python -m bench causal`")


def test_a_section_the_file_lacks_is_appended():
    out = replace_sections(DOC, "## Off-policy evaluation (doubly robust)\n\nope\n")
    assert out.rstrip().endswith("ope") and "| fit | 173.1 |" in out
    assert "| fit | 173.1 |\n\n## Off-policy evaluation" in out  # a heading on a line of its own
