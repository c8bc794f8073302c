"""The compression benchmark's matcher is linear by construction; README figures match results."""

from __future__ import annotations

import re

from bench.compression import matches, template_parts
from bench.readme import README, RESULTS_DIR, render


class _CountingLine(str):
    """A line that counts ``find`` calls (the only search the matcher may do)."""

    calls = 0

    def find(self, *args, **kwargs):  # type: ignore[override]
        type(self).calls += 1
        return super().find(*args, **kwargs)


def test_matcher_agrees_with_the_regex_it_replaces():
    cases = [
        ("a <*> b <*> c", "xx a 1 b 2 c yy", True),
        ("a <*> b <*> c", "a c b", False),
        ("<*>", "", True),
        ("ERROR <*>: <*> failed", "12 ERROR disk: sda failed now", True),
        ("x <*> x", "x", False),
    ]
    for template, line, expected in cases:
        old = re.compile(".*?".join(re.escape(p) for p in template.strip().split("<*>")))
        assert bool(old.search(line)) == expected
        assert matches(template_parts(template), line) == expected


def test_wildcard_heavy_template_is_bounded_by_construction():
    # 28 wildcards against a long line that almost matches: the old ``.*?`` regex backtracked
    # without end on such templates. The matcher calls str.find at most once per literal part.
    template = " ".join(["r<*>=0x<*>"] * 28) + " END"
    line = _CountingLine(" ".join(f"r{i}=0x{i:08x}" for i in range(27)) + " r27=0x1 " * 40)
    _CountingLine.calls = 0
    parts = template_parts(template)
    assert not matches(parts, line)
    assert _CountingLine.calls <= len(parts)


def test_readme_figures_agree_with_results_files():
    current = README.read_text()
    assert render(current, RESULTS_DIR) == current, "run: python -m bench readme"


def test_a_system_over_the_time_limit_is_reported_not_waited_for():
    import pytest

    from bench.compression import SystemTimeout, time_limit

    with pytest.raises(SystemTimeout), time_limit(0.05):
        while True:
            pass
