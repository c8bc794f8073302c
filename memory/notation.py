"""Compact, lossless notation for sets of entity ids: bash brace expansion.

WHY: an incident on a cluster names hundreds of structured ids (BGL node locations such as
``R02-M1-N0-C:J12-U11``, ``ip:port`` pairs, block ids). Listed one by one they do not fit an agent's
token budget; dropping some loses exactly what a diagnosis cites. Ids that share structure are
packed into cartesian products written in bash brace syntax, which people, LLMs and ``bash -c
'echo ...'`` all expand the same way:

* ``a{1,2}b``      -> ``a1b a2b``
* ``{08..11}``     -> ``08 09 10 11`` (an endpoint with a leading zero pads every value to the
  wider endpoint, as bash does; otherwise numbers are not padded)
* ``{1,{3..5}}``   -> ``1 3 4 5`` (nesting)
* several braces in one word form the cartesian product, left to right.

The packing is exact: ``expand_word(w)`` of every emitted word yields only ids that were given,
and every given id is produced by exactly one word (round-trip tested against real bash).
Only ids made of ``[A-Za-z0-9_.:/@+-]`` are packed (no character bash would treat specially);
any other id is emitted verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NOTATION_HELP = (
    "[notation] xN = N lines; ids: bash braces a{1,2}b = a1b a2b, N{08..10} = N08 N09 N10; "
    "table a#-b# = 1 2, 3 4 = a1-b2 a3-b4"
)
SAFE_ID = re.compile(r"[A-Za-z0-9_.:/@+-]+")
_DIGITS = re.compile(r"(\d+)")
_RANGE = re.compile(r"(\d+)\.\.(\d+)")
MAX_EXPANSION = 100_000


def _padded(a: str, b: str) -> bool:
    return (len(a) > 1 and a[0] == "0") or (len(b) > 1 and b[0] == "0")


def expand_range(a: str, b: str) -> list[str]:
    """Values of the bash sequence ``{a..b}`` (unsigned integers, step 1, either direction)."""
    lo, hi = int(a), int(b)
    step = 1 if hi >= lo else -1
    width = max(len(a), len(b)) if _padded(a, b) else 0
    return [str(n).zfill(width) for n in range(lo, hi + step, step)]


def _render_set(values: Iterable[str]) -> str:
    """One digit field: a literal, ``{a..b}``, or ``{x,y,{a..b}}`` (runs of 3+ become ranges)."""
    vals = sorted(set(values), key=lambda v: (int(v), len(v), v))
    if len(vals) == 1:
        return vals[0]
    items: list[str] = []
    i = 0
    while i < len(vals):
        j = i
        while (
            j + 1 < len(vals)
            and int(vals[j + 1]) == int(vals[j]) + 1
            and (len(vals[j + 1]) == len(vals[j]) or (vals[j][0] != "0" and vals[j + 1][0] != "0"))
        ):
            j += 1
        run = vals[i : j + 1]
        if len(run) >= 3 and expand_range(run[0], run[-1]) == run:
            items.append(f"{{{run[0]}..{run[-1]}}}")
        else:
            items.extend(run)
        i = j + 1
    if len(items) == 1:
        return items[0]  # a single range, already braced
    return "{" + ",".join(items) + "}"


def _merge_rows(rows: list[tuple[frozenset[str], ...]], width: int) -> list[tuple[frozenset[str], ...]]:
    """Greedy exact product merge: rows equal in every field but one union that field's values."""
    changed = True
    while changed and len(rows) > 1:
        changed = False
        for p in range(width - 1, -1, -1):
            merged: dict[tuple[frozenset[str], ...], set[str]] = {}
            for row in rows:
                rest = row[:p] + row[p + 1 :]
                merged.setdefault(rest, set()).update(row[p])
            if len(merged) < len(rows):
                changed = True
                rows = [rest[:p] + (frozenset(vals),) + rest[p:] for rest, vals in merged.items()]
    return rows


def _size(row: tuple[frozenset[str], ...]) -> int:
    n = 1
    for values in row:
        n *= len(values)
    return n


def pack_ids(ids: Iterable[str], *, table_min: int = 4, brace_min: int = 4) -> list[str]:
    """Pack ids into brace words and ``#`` tables; returns text chunks, first-seen order.

    Ids are split into digit runs and the text between them (their skeleton); ids with one
    skeleton are rows of digit fields, merged into exact cartesian products (``_merge_rows``).
    A product covering ``brace_min`` or more ids becomes one brace word. The remaining ids of a
    skeleton, when at least ``table_min``, become one table chunk ``sk#el#ton = 1 2, 3 4`` (only
    their digits are written: about 6 tokens an id instead of 16 for a BGL node location);
    fewer remain as plain (or small brace) words.
    """
    order: dict[str, int] = {}
    for i in ids:
        order.setdefault(i, len(order))
    groups: dict[tuple[str, ...], list[tuple[frozenset[str], ...]]] = {}
    first: dict[tuple[str, ...], int] = {}
    chunks: list[tuple[float, str]] = []
    for ident, pos in order.items():
        parts = _DIGITS.split(ident)
        if not SAFE_ID.fullmatch(ident) or len(parts) == 1:
            chunks.append((pos, ident))
            continue
        skeleton = tuple(parts[0::2])
        groups.setdefault(skeleton, []).append(tuple(frozenset((d,)) for d in parts[1::2]))
        first.setdefault(skeleton, pos)
    for skeleton, rows in groups.items():
        width = len(skeleton) - 1
        merged = _merge_rows(rows, width)
        big = [r for r in merged if _size(r) >= brace_min]
        rest = [r for r in merged if _size(r) < brace_min]
        words = [_render_row(skeleton, r) for r in big]
        leftover = sum(_size(r) for r in rest)
        if leftover >= table_min:
            singles = [row for row in rows if not any(_covers(b, row) for b in big)]
            pattern = "#".join(skeleton)
            cells = sorted(tuple(next(iter(v)) for v in row) for row in singles)
            words.append(pattern + " = " + ", ".join(" ".join(row) for row in cells))
        else:
            words.extend(_render_row(skeleton, r) for r in rest)
        chunks.extend((first[skeleton] + k * 1e-6, w) for k, w in enumerate(words))
    return [w for _, w in sorted(chunks, key=lambda pw: pw[0])]


def _covers(big: tuple[frozenset[str], ...], row: tuple[frozenset[str], ...]) -> bool:
    return all(r <= b for r, b in zip(row, big, strict=True))


def _render_row(skeleton: tuple[str, ...], row: tuple[frozenset[str], ...]) -> str:
    return skeleton[0] + "".join(_render_set(row[i]) + skeleton[i + 1] for i in range(len(row)))


def compact_ids(ids: Iterable[str]) -> list[str]:
    """Brace words only (no tables): every id once, products merged; order: first id seen."""
    return pack_ids(ids, table_min=10**9, brace_min=1)


def _split_top(body: str) -> list[str] | None:
    """Top-level comma alternatives of a brace body, or None when it has no top-level comma."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    if not parts:
        return None
    parts.append(body[start:])
    return parts


def expand_word(word: str) -> list[str]:
    """Bash brace expansion of one whitespace-free word (``{a..b}`` integer ranges and comma lists).

    Braces that are not a valid expression (no top-level comma, not a range) stay literal, as in
    bash. Expansion stops at ``MAX_EXPANSION`` results so hostile input cannot blow up memory.
    """
    depth, start = 0, -1
    for i, ch in enumerate(word):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                body = word[start + 1 : i]
                m = _RANGE.fullmatch(body)
                alternatives = expand_range(*m.groups()) if m else _split_top(body)
                if alternatives is None:
                    continue  # literal braces; look for a later expression
                head, tails = word[:start], expand_word(word[i + 1 :])
                out: list[str] = []
                for alt in alternatives:
                    for a in expand_word(alt) if not m else [alt]:
                        for t in tails:
                            out.append(head + a + t)
                            if len(out) >= MAX_EXPANSION:
                                return out
                return out
    return [word]


TABLE_RE = re.compile(r"(?<!\S)(\S*#\S*) = (\d+(?: \d+)*(?:, \d+(?: \d+)*)*)")


def expand_tables(text: str) -> set[str]:
    """Ids written as ``pat#tern = 1 2, 3 4`` tables: each row fills the ``#`` marks in order."""
    found: set[str] = set()
    for m in TABLE_RE.finditer(text):
        pieces = m.group(1).split("#")
        for row in m.group(2).split(", "):
            values = row.split(" ")
            if len(values) == len(pieces) - 1:
                found.add(pieces[0] + "".join(v + p for v, p in zip(values, pieces[1:], strict=True)))
    return found


def expand_text(text: str) -> set[str]:
    """Every word of ``text``, the expansion of every brace word, and every table row."""
    found: set[str] = set()
    for word in text.split():
        found.add(word)
        if "{" in word:
            found.update(expand_word(word))
    if " = " in text:
        found |= expand_tables(text)
    return found


_RUN_WORD = re.compile(r"[A-Za-z0-9_.:/@+-]*\d[A-Za-z0-9_.:/@+-]*,?")


def pack_runs(text: str, *, min_run: int = 8) -> str:
    """``text`` with every run of ``min_run`` or more id-like words (a node list) packed.

    WHY: a message that lists 132 nodes costs hundreds of tokens when printed whole; packed in
    brace/table notation the same ids take a few words and stay exactly recoverable
    (``expand_text``). Words are id-like when they contain a digit and only ``SAFE_ID``
    characters (a trailing comma, as in ``a1, a2, a3``, is kept out of the id).
    """
    words = text.split(" ")
    if len(words) < min_run:
        return text
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= min_run:
            out.extend(pack_ids([w.rstrip(",") for w in run], table_min=10**9, brace_min=2))
        else:
            out.extend(run)
        run.clear()

    for word in words:
        if _RUN_WORD.fullmatch(word):
            run.append(word)
        else:
            flush()
            out.append(word)
    flush()
    return " ".join(out)
