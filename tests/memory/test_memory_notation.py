"""Compact id notation (memory.notation): exact round trip, bash agreement, tight-budget retention.

The retention test uses a synthetic cluster log generated here (seeded), not loghub (research-use
only): 600 distinct node locations in the BGL shape fail with a handful of error messages amid
routine noise, so listing the ids verbatim would not fit the budget.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess

import pytest

from memory.compressor import ContextCompressor
from memory.notation import (
    NOTATION_HELP,
    compact_ids,
    expand_range,
    expand_tables,
    expand_text,
    expand_word,
    pack_ids,
)
from memory.tokens import count_tokens


def node_ids(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ids: set[str] = set()
    while len(ids) < n:
        r, m, node, j, u = rng.randrange(64), rng.randrange(2), rng.randrange(16), rng.randrange(2, 19), rng.choice([1, 11])
        ids.add(f"R{r:02d}-M{m}-N{node:X}-C:J{j:02d}-U{u:02d}")
    return sorted(ids)


def decoded(chunks: list[str]) -> list[str]:
    """Ids encoded by packed chunks: table rows, or brace-word expansions (duplicates kept)."""
    out: list[str] = []
    for chunk in chunks:
        if " = " in chunk:
            out.extend(sorted(expand_tables(chunk)))
            assert len(expand_tables(chunk)) == chunk.count(",") + 1
        else:
            out.extend(expand_word(chunk))
    return out


@pytest.mark.parametrize(
    "ids",
    [
        ["R02-M1-N0-C:J12-U11", "R02-M1-N1-C:J12-U11", "R02-M1-N0-C:J12-U01", "R02-M1-N1-C:J12-U01"],
        [f"10.0.0.{i}:8080" for i in range(1, 40)] + ["10.0.1.7:9090", "blk_-1608999687919862906"],
        [f"node-{i:03d}" for i in (1, 2, 3, 4, 9, 10, 11, 98, 99, 100, 101)],
        ["host8", "host9", "host10", "host11", "x", "host-a"],
        node_ids(300, seed=1),
    ],
)
def test_pack_and_compact_round_trip_exactly(ids):
    for chunks in (pack_ids(ids), compact_ids(ids)):
        got = decoded(chunks)
        assert sorted(got) == sorted(set(ids)), "every id exactly once, nothing invented"


def test_unsafe_ids_pass_through_verbatim():
    # Entity ids never hold spaces or braces (memory.entities); if one did, it is not packed.
    assert pack_ids(["a b", "c{1,2}", "n1", "n2"]) == ["a b", "c{1,2}", "n{1,2}"]


def test_structured_ids_pack_into_ranges_and_products():
    ids = [f"R02-M1-N{n}-C:J{j:02d}-U{u:02d}" for n in (0, 1) for j in range(2, 19) for u in (1, 11)]
    words = compact_ids(ids)
    assert words == ["R02-M1-N{0,1}-C:J{02..18}-U{01,11}"]
    assert count_tokens(" ".join(words)) * 10 < count_tokens(" ".join(ids))


def test_scattered_ids_use_a_table_that_is_much_cheaper():
    ids = node_ids(300, seed=2)
    chunks = pack_ids(ids)
    assert any(re.match(r"R#-M#-N#-C:J#-U# = \d\d \d \d \d\d \d\d, ", c) for c in chunks)
    assert count_tokens("\n".join(chunks)) < 0.6 * count_tokens(" ".join(ids))


def test_ranges_follow_bash_padding_rules():
    assert expand_range("0", "10")[-2:] == ["9", "10"]
    assert expand_range("00", "10")[:2] == ["00", "01"]
    assert expand_range("8", "011") == ["008", "009", "010", "011"]
    assert expand_range("3", "1") == ["3", "2", "1"]
    assert expand_word("a{1,{3..5}}b") == ["a1b", "a3b", "a4b", "a5b"]
    assert expand_word("{x}y{1,2}") == ["{x}y1", "{x}y2"]  # no comma, no range: literal braces
    assert expand_word("p{1..3}") == ["p1", "p2", "p3"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to cross-check")
def test_brace_words_expand_exactly_as_bash_does():
    ids = node_ids(120, seed=3) + [f"10.1.{a}.{b}:80" for a in (1, 2) for b in range(5, 12)] + ["ip-10-0-0-7"]
    words = compact_ids(ids)
    assert len(words) < len(ids)
    for word in words:
        bash = subprocess.run(["bash", "-c", f"echo {word}"], capture_output=True, text=True, check=True)
        assert bash.stdout.split() == expand_word(word), word


def synthetic_cluster_log(seed: int = 7) -> tuple[list[str], set[str], list[str]]:
    """(lines, ids on error lines, error messages): 600 failing nodes in 4000 lines."""
    rng = random.Random(seed)
    failing = node_ids(600, seed=seed)
    errors = [
        "ERROR kernel: machine check interrupt on {n}",
        "ERROR ciod: failed to read message prefix from {n}",
        "FATAL rts: kernel terminated on {n} for reason 1004",
        "WARN monitor: temperature over threshold on {n}",
    ]
    routine = [
        "INFO scheduler: job {j} started on partition {p}",
        "INFO ciod: generated {j} core files for program {p}",
        "INFO monitor: fan speed nominal on rack {p}",
    ]
    lines, on_errors = [], set()
    queue = failing * 2
    rng.shuffle(queue)
    for i in range(4000):
        ts = f"2024-05-01T10:{i // 600:02d}:{(i // 10) % 60:02d}.{i % 10}00Z"
        if queue and i % 3 == 0:
            node = queue.pop()
            on_errors.add(node)
            lines.append(f"{ts} {rng.choice(errors).format(n=node)}")
        else:
            lines.append(f"{ts} {rng.choice(routine).format(j=rng.randrange(10**6), p=rng.randrange(64))}")
    shapes = [e.split(" {n}")[0] for e in errors]
    return lines, on_errors, shapes


@pytest.mark.parametrize("fraction", [0.05, 0.10])
def test_tight_budget_keeps_every_error_shape_and_id(fraction):
    lines, ids, shapes = synthetic_cluster_log()
    tokens_in = count_tokens("\n".join(lines))
    verbatim = count_tokens(" ".join(sorted(ids)))
    budget = int(tokens_in * fraction)
    if fraction == 0.05:
        assert verbatim > budget, "the fixture must not fit verbatim at 5%"
    c = ContextCompressor(budget_tokens=budget)
    c.fold(lines)
    out = c.render()
    assert count_tokens(out) <= budget
    assert NOTATION_HELP in out.splitlines()[:2]
    recovered = expand_text(out)
    assert ids <= recovered, f"{len(ids - recovered)} ids lost"
    assert all(s in out for s in shapes)
    # Nothing invented: every node-shaped string a reader derives is a real failing node.
    derived_nodes = {s for s in recovered if re.fullmatch(r"R\d\d-M\d-N[0-9A-F]-C:J\d\d-U\d\d", s)}
    assert derived_nodes == ids
