"""The compressor's fast paths find exactly what the plain patterns they replace find.

WHY: the masking regex and the level/digit-severity searches run on every line shape, so they
were rewritten for speed (issue 13, goal 5). Speed must not change a single key, level or
verdict; each fast path is compared here with its reference on hand-picked edge cases and on
many generated strings built from the pieces that make the patterns differ.
"""

from __future__ import annotations

import random
import re

from memory.compressor import MASK, MASK_RE, MASK_REFERENCE, mask_line
from memory.severity import NAMED_RE, NUMERIC_SHAPE_RE, SINGLE_RE, _may_need_digits, named_level, single_level


def _generated(pieces: list[str], n: int, seed: int, longest: int = 12) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, longest))) for _ in range(n)]


def test_mask_matches_the_reference_pattern():
    reference = re.compile(MASK_REFERENCE)
    edge = [
        "xabc123 fabc1 abc def 0xdeadbeef a1 ff:ee:01 -a9 .b7 ab-c3 cafe babe1",
        "blk_-1608999687919862906 10.251.43.191:50010 req-3f2a-b1 2005-06-03-15.42.50.675872",
        "<#> abc<#> a-1 _f2 é3 ünf9 \tdd7\n",
        "ab<#>1 <#>x <a1> >#<ab1 c<5>",
    ]
    # hex letters, other word characters, digits and separators (and the mask itself, which may
    # be in the raw text): where the patterns could differ
    cases = edge + _generated([*"abcdefxyzAF019_.:-/<#> \t", "<#>"], 30_000, seed=1, longest=30)
    assert sum(1 for c in cases if reference.search(c)) > 10_000  # the comparison is not vacuous
    for case in cases:
        expected = reference.sub(MASK, case)
        assert MASK_RE.sub(MASK, case) == expected, case
        assert mask_line(case) == expected, case
    assert mask_line("xabc123 deadbeef cafe1 f00d ab<#>1") == "x<#> deadbeef <#> <#> ab<#><#>"


def _same(found: re.Match[str] | None, fast: re.Match[str] | None, groups: tuple[str, ...]) -> bool:
    if found is None or fast is None:
        return found is fast
    word = next(found.group(g) for g in groups if found.group(g))
    return (found.start(), found.end(), word) == (fast.start(), fast.end(), fast.group(fast.lastgroup or ""))


def test_named_level_matches_the_reference_pattern():
    pieces = [
        "ERROR", "Error", "error", "[error]", "[WARN]", "WARNING:", "level=warn", 'level":"ERROR"', "xINFO",
        "(INFO)", "<DEBUG>", "|FATAL|", "INFO,", "WARNX", "[", "]", " ", "level", "=", "Information", "a",
        '"', "LEVEL=err", "\t", "<#>",
    ]  # fmt: skip
    cases = ["x [warn] ERROR", "level=error [INFO]", "ERROR", "aERROR WARN", "[-] Warning)"]
    cases += _generated(pieces, 40_000, seed=2, longest=8)
    assert sum(1 for c in cases if NAMED_RE.search(c)) > 20_000
    for case in cases:
        for scan in (300, 7):
            assert _same(NAMED_RE.search(case, 0, scan), named_level(case, scan), ("level", "blevel", "kvlevel")), case


def test_single_level_matches_the_reference_pattern():
    pieces = ["<#>", "12", "a<#>", "x", "W", "E", "I", "F", "A", "D", "V", "W/Tag:", "E/a.b(", "Tag:", "msg", "/", "F<#>"]  # fmt: skip
    rnd = random.Random(3)
    cases = [" W/Tag: leading space", "W/Tag(12): x", "I0101 12:00:00.1 1 a.go:1] x", "x y E/app: z"]
    cases += [
        rnd.choice(["", " ", "  "])
        + rnd.choice([" ", "  ", "\t"]).join(rnd.choice(pieces) for _ in range(rnd.randint(1, 10)))
        for _ in range(40_000)
    ]
    assert sum(1 for c in cases if SINGLE_RE.search(c)) > 10_000
    for case in cases:
        for scan in (300, 6):
            assert _same(SINGLE_RE.search(case, 0, scan), single_level(case, scan), ("glog", "brief", "thread")), case


def test_digit_severity_precheck_never_skips_a_match():
    pieces = ['" <#>', "HTTP/<#>", "<<#>>", "status", "Status code", "EXIT", "exited with code", "=", ": ", " ", "<#>", "x", "ſtatus"]  # fmt: skip
    cases = ["ſtatus=<#>", "<<#>>x", 'GET /" <#> <#>', "job exited with code <#>", "STATUS: <#>"]
    cases += _generated(pieces, 30_000, seed=4, longest=6)
    assert sum(1 for c in cases if NUMERIC_SHAPE_RE.search(c)) > 5_000
    for case in cases:
        assert _may_need_digits(case) == (NUMERIC_SHAPE_RE.search(case) is not None), case


def test_token_ids_equal_a_full_entity_scan():
    from memory.compressor import ContextCompressor
    from memory.entities import ENTITY_RE

    c = ContextCompressor(budget_tokens=10**9)
    tokens = [
        "10.0.0.1:80,10.0.0.2:81", "R02-M1-N0-C:J12-U11", "rhost=an142", "2005-06-03-15.42.50.675872",
        "blk_-16;blk_17", "[req-3f2a1b2c-1d2e-4f50-8a9b-0c1d2e3f4a5b]", "x-node7", "node7/node8", "",
    ]  # fmt: skip
    for token in tokens:
        assert c._token_ids(token) == tuple((m.group(0), m.lastgroup) for m in ENTITY_RE.finditer(token)), token
    assert c._token_ids("10.0.0.1:80,10.0.0.2:81") == (("10.0.0.1:80", "ip"), ("10.0.0.2:81", "ip"))
