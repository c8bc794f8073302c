"""Compression benchmark for memory.compressor (AOI: 72.4% compression, 92.8% critical info kept).

Usage: ``python -m bench compression [--data DATA_ROOT] [--logs FOLDER ...] [--repeat N]
[--time-limit SECONDS] [--no-ablation]``

For every system folder under ``DATA_ROOT/logs/loghub`` (and every ``--logs`` folder in the same
layout: ``<System>/<name>.log`` beside ``<name>.log_structured.csv``) the raw log is folded into a
fresh ContextCompressor and rendered at budgets of 5%, 10% and 20% of the input tokens, plus once
without a budget ("natural" size).

* Tokens: ``memory.tokens.count_tokens`` (WordPiece of the packaged all-MiniLM-L6-v2).
* Compression = 1 - tokens(out) / tokens(in).
* Critical items come from the ground truth, not from the compressor: the distinct EventIds of
  lines whose Level is warn/error/fatal-like (including single letters W/E/F/A) or whose Content
  says error/warn/fatal/exception/severe/critical or a plain failure word (fail, abort, panic,
  denied, refused, timeout, unreachable, invalid, corrupt, killed, out of memory), plus the entity
  ids found in those raw lines by this file's own regex (block, IP[:port], request id, UUID,
  Hadoop job/attempt/container id, BGL node location, hex id >= 16, host/node names with an
  index, AWS ARNs).
* A template is recovered when some output line matches its ground-truth pattern (``<*>`` = any
  text). Matching is linear by construction: the literal parts are found left to right with
  ``str.find`` (leftmost is optimal for "any text" gaps), never a backtracking regex.
* Each system runs under a time limit (``--time-limit``, default 300 s); a system that exceeds
  it is reported as timed out instead of hanging the run.
* Leave-one-system-out: every rule family of ``memory.severity`` was written from a published
  convention, none for a data system; the ablation table removes one family at a time and shows,
  per held-out system, how many critical items at the 5% budget that family saves. An entity is recovered when its exact string appears in the output, or is produced by
  expanding the compact notation that the output documents in its ``[notation]`` line, with
  this file's own expander (again independent of memory/): a word with bash brace expressions
  (``a{1,2}b``, ``{08..11}``, nested, cartesian product left to right; capped at 100k results),
  or a table ``pat#tern = 1 2, 3 4`` whose rows fill the ``#`` marks in order. Nothing else
  (no prefix matching, no fuzzy matching) counts.
* Throughput: lines/s of ``fold`` on one pass of the file (cold caches; one thread), next to
  drain3's TemplateMiner alone on the same lines.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import data_dir, markdown_table
from memory.compressor import MASK, MASK_RE, ContextCompressor
from memory.severity import RULE_FAMILIES, WARN, classify
from memory.tokens import count_tokens, tokenizer_name

BUDGETS = (0.05, 0.10, 0.20)
CRITICAL_LEVELS = {
    "warn", "warning", "error", "err", "fatal", "severe", "critical", "crit", "alert", "emerg", "w", "e", "f", "a",
}  # fmt: skip
CRITICAL_WORDS = re.compile(
    r"(?i)\b(?:error|errors|warn|warning|fatal|severe|critical)\b|exception"
    r"|\b(?:fail|failed|fails|failure|failures|abort|aborted|aborting|panic|denied|refused|timed out|timeout"
    r"|unreachable|invalid|corrupt|corrupted|killed|out of memory)\b"
)
TIME_LIMIT = 300.0
# Independent of memory.entities on purpose: the yardstick must not be the thing measured.
GT_ENTITY = re.compile(
    r"blk_-?\d+"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"
    r"|\breq-[0-9a-f-]{36}\b"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b(?:application|appattempt|container|attempt|job|task)_\d+(?:_[0-9a-z]+)+\b"
    r"|\bR\d\d-M\d-N[0-9A-F](?:-[A-Z]:J\d\d-U\d\d)?\b"
    r"|\b[0-9a-f]{16,}\b"
    r"|\barn:aws[\w-]*:[\w-]+:[\w-]*:\d*:[^\s,;\"']+"
    r"|(?<![\w./-])[a-z]{2,}-?\d+(?![\w./-])"
)


def template_parts(template: str) -> list[str]:
    """Literal parts of a ground-truth template (``<*>`` = any text, possibly empty)."""
    return template.strip().split("<*>")


def matches(parts: list[str], line: str) -> bool:
    """Whether ``line`` contains the parts in order, any text between them (a regex search of
    ``part0.*?part1.*?...``), in O(len(line) * len(parts)): each part is found with ``str.find``
    after the previous one, and taking the leftmost occurrence never loses a match, so there is
    nothing to backtrack (the old joined regex backtracked without end on 10-28 wildcards)."""
    pos = 0
    for part in parts:
        if not part:
            continue
        found = line.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    return True


class SystemTimeout(Exception):
    """A system exceeded ``--time-limit``."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise SystemTimeout in this (main) thread after ``seconds`` of wall time."""

    def expire(signum: int, frame: object) -> None:
        raise SystemTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def find_systems(root: Path) -> list[tuple[str, Path, Path]]:
    """(system, raw log, structured csv) for every log with a ground-truth CSV under ``root``."""
    found = []
    for structured in sorted(root.glob("*/*.log_structured.csv")):
        raw = structured.with_name(structured.name.removesuffix("_structured.csv"))
        if raw.exists():
            found.append((structured.parent.name, raw, structured))
    return found


def critical_items(raw_lines: list[str], structured: Path) -> tuple[dict[str, str], set[str]]:
    """Ground-truth critical templates {EventId: template} and entity ids."""
    templates: dict[str, str] = {}
    entities: set[str] = set()
    with structured.open(newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            level = (row.get("Level") or "").strip().lower()
            content = row.get("Content") or ""
            if level in CRITICAL_LEVELS or CRITICAL_WORDS.search(content):
                templates[row["EventId"]] = row["EventTemplate"]
                index = int(row["LineId"]) - 1
                if 0 <= index < len(raw_lines):
                    entities.update(GT_ENTITY.findall(raw_lines[index]))
    return templates, entities


# The ground-truth rule before failure words were added: level field or error/warn/fatal words.
NARROW_WORDS = re.compile(r"(?i)\b(?:error|errors|warn|warning|fatal|severe|critical)\b|exception")


def word_reach(raw_lines: list[str], structured: Path) -> dict[str, set[str]]:
    """Failure word -> EventIds of lines it alone makes critical, among lines the narrow rule
    (level field, error/warn/fatal/exception words; no failure words, so not circular for
    them) calls critical and the level rules of memory.severity leave routine."""
    reach: dict[str, set[str]] = {}
    without = RULE_FAMILIES - {"vocabulary"}
    with structured.open(newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            level = (row.get("Level") or "").strip().lower()
            index = int(row["LineId"]) - 1
            if not (level in CRITICAL_LEVELS or NARROW_WORDS.search(row.get("Content") or "")):
                continue
            if not 0 <= index < len(raw_lines):
                continue
            masked = MASK_RE.sub(MASK, raw_lines[index])
            if classify(masked, rules=without).severity >= WARN:
                continue
            for stem in classify(masked).failures:
                reach.setdefault(stem, set()).add(row["EventId"])
    return reach


BRACE_SEQ = re.compile(r"^(\d+)\.\.(\d+)$")
TABLE = re.compile(r"(?<!\S)(\S*#\S*) = (\d+(?: \d+)*(?:, \d+(?: \d+)*)*)")


def brace_expand(word: str, limit: int = 100_000) -> list[str]:
    """Bash brace expansion of one word (comma lists and unsigned integer ranges, nested)."""
    results = [""]
    i = 0
    while i < len(word):
        if word[i] == "{":
            depth, j = 0, i
            while j < len(word):
                depth += {"{": 1, "}": -1}.get(word[j], 0)
                if depth == 0:
                    break
                j += 1
            body = word[i + 1 : j] if j < len(word) else None
            options = None
            if body is not None:
                seq = BRACE_SEQ.match(body)
                if seq:
                    a, b = seq.groups()
                    pad = max(len(a), len(b)) if (a[0] == "0" and len(a) > 1) or (b[0] == "0" and len(b) > 1) else 0
                    lo, hi = int(a), int(b)
                    step = 1 if hi >= lo else -1
                    options = [str(n).zfill(pad) for n in range(lo, hi + step, step)]
                else:
                    alts, depth, start = [], 0, 0
                    for k, ch in enumerate(body):
                        depth += {"{": 1, "}": -1}.get(ch, 0)
                        if ch == "," and depth == 0:
                            alts.append(body[start:k])
                            start = k + 1
                    if alts:
                        alts.append(body[start:])
                        options = [x for alt in alts for x in brace_expand(alt, limit)]
            if options is not None:
                results = [r + o for r in results for o in options][:limit]
                i = j + 1
                continue
        results = [r + word[i] for r in results]
        i += 1
    return results


def recoverable(output: str) -> set[str]:
    """Strings a reader derives from the output: its words, brace expansions, table rows."""
    found: set[str] = set()
    for word in output.split():
        found.add(word)
        if "{" in word:
            found.update(brace_expand(word))
    for m in TABLE.finditer(output):
        pieces = m.group(1).split("#")
        for row in m.group(2).split(", "):
            cells = row.split(" ")
            if len(cells) == len(pieces) - 1:
                found.add(pieces[0] + "".join(c + p for c, p in zip(cells, pieces[1:], strict=True)))
    return found


def retention(output: str, templates: dict[str, str], entities: set[str]) -> tuple[int, int]:
    lines = output.splitlines()
    kept_t = 0
    for template in templates.values():
        parts = template_parts(template)
        if any(matches(parts, line) for line in lines):
            kept_t += 1
    derived = recoverable(output)
    kept_e = sum(1 for e in entities if e in output or e in derived)
    return kept_t, kept_e


def _timed(run: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call of ``run``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def drain3_alone(lines: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of drain3's TemplateMiner alone on ``lines`` (default config)."""
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)

    def run() -> None:
        for line in lines:
            miner.add_log_message(line)

    return _timed(run)


def speed(raw_lines: list[str], *, repeat: int, runs: int) -> dict[str, float]:
    """Lines/s of the compressor's fold and of drain3 alone, best of ``runs`` cold passes each,
    interleaved so both see the same machine load; wall clock and CPU time of this process
    (the CPU figure is what one core delivers when other processes share the machine)."""
    lines = raw_lines * repeat
    best = {"wall": 0.0, "cpu": 0.0, "drain3 wall": 0.0, "drain3 cpu": 0.0}
    for _ in range(runs):
        compressor = ContextCompressor(budget_tokens=10**9)
        wall, cpu = _timed(lambda c=compressor: c.fold(lines))
        d_wall, d_cpu = drain3_alone(lines)
        for key, seconds in (("wall", wall), ("cpu", cpu), ("drain3 wall", d_wall), ("drain3 cpu", d_cpu)):
            best[key] = max(best[key], len(lines) / max(seconds, 1e-9))
    return best


def _pct(budget: float | None) -> str:
    return f"{int(budget * 100)}%" if budget else "none"


def run_system(
    raw_lines: list[str], templates: dict[str, str], entities: set[str], *, repeat: int, runs: int
) -> dict[str, Any]:
    """Fold, render at every budget, ablate each severity rule family; one system's numbers."""
    tokens_in = count_tokens("\n".join(raw_lines))
    rates = speed(raw_lines, repeat=repeat, runs=runs)
    compressor = ContextCompressor(budget_tokens=10**9)
    compressor.fold(raw_lines)
    renders = []
    for budget in (*BUDGETS, None):
        limit = int(tokens_in * budget) if budget else 10**9
        output = compressor.render(limit)
        kept_t, kept_e = retention(output, templates, entities)
        renders.append((budget, count_tokens(output), kept_t, kept_e))
    ablation = {}
    for family in sorted(RULE_FAMILIES):
        without = ContextCompressor(budget_tokens=10**9, severity_rules=RULE_FAMILIES - {family})
        without.fold(raw_lines)
        kept_t, kept_e = retention(without.render(int(tokens_in * BUDGETS[0])), templates, entities)
        ablation[family] = kept_t + kept_e
    return {
        "tokens_in": tokens_in,
        "rates": rates,
        "templates_mined": compressor.stats()["templates"],
        "renders": renders,
        "ablation": ablation,
    }


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench compression")
    parser.add_argument("--data", default=None, help="data root (default: ../shared/data)")
    parser.add_argument("--logs", action="append", default=[], help="extra folder in loghub layout")
    parser.add_argument("--repeat", type=int, default=1, help="fold the file N times for throughput")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT, help="seconds per system")
    parser.add_argument("--speed-runs", type=int, default=3, help="cold passes timed per system (best kept)")
    args = parser.parse_args(argv)

    roots = [data_dir(args.data) / "logs" / "loghub", *map(Path, args.logs)]
    if not any(root.is_dir() for root in roots):
        raise SystemExit(f"no log data: {roots[0]} is missing (pass --data DATA_ROOT or set AIOPS_DATA_DIR)")
    rows, speed_rows, goal_rows, loso_rows, timeouts = [], [], [], [], []
    totals = {b: [0, 0, 0, 0, 0, 0, 0, 0] for b in (*BUDGETS, None)}  # in, out, items, kept, tpl, tpl kept, ent, ent kept
    total_lines, total_seconds, total_cpu = 0, 0.0, 0.0
    helped = dict.fromkeys(sorted(RULE_FAMILIES), 0)
    reach: dict[str, dict[str, int]] = {}
    systems: list[str] = []
    for root in roots:
        for system, raw_path, structured in find_systems(root):
            raw_lines = raw_path.read_text(encoding="utf-8", errors="replace").splitlines()
            templates, entities = critical_items(raw_lines, structured)
            try:
                with time_limit(args.time_limit):
                    r = run_system(raw_lines, templates, entities, repeat=args.repeat, runs=args.speed_runs)
            except SystemTimeout:
                timeouts.append(f"{system}: timed out after {args.time_limit:.0f} s (not counted)")
                continue
            tokens_in = r["tokens_in"]
            rates = r["rates"]
            total_lines += len(raw_lines) * args.repeat
            total_seconds += len(raw_lines) * args.repeat / rates["wall"]
            total_cpu += len(raw_lines) * args.repeat / rates["cpu"]
            speed_rows.append(
                {
                    "system": system,
                    "lines": len(raw_lines) * args.repeat,
                    "compressor lines/s": round(rates["wall"]),
                    "drain3 TemplateMiner alone lines/s": round(rates["drain3 wall"]),
                    "compressor lines/s (CPU)": round(rates["cpu"]),
                    "drain3 alone lines/s (CPU)": round(rates["drain3 cpu"]),
                    "compressor / drain3 (CPU)": rates["cpu"] / rates["drain3 cpu"],
                    "templates": r["templates_mined"],
                }
            )
            items = len(templates) + len(entities)
            for budget, tokens_out, kept_t, kept_e in r["renders"]:
                t = totals[budget]
                for k, v in enumerate((tokens_in, tokens_out, items, kept_t + kept_e, len(templates), kept_t,
                                       len(entities), kept_e)):
                    t[k] += v
                row = {
                    "system": system,
                    "budget": _pct(budget),
                    "tokens in": tokens_in,
                    "tokens out": tokens_out,
                    "compression": 1 - tokens_out / tokens_in,
                    "crit templates kept": f"{kept_t}/{len(templates)}",
                    "crit entities kept": f"{kept_e}/{len(entities)}",
                    "retention": (kept_t + kept_e) / items if items else "n/a",
                }
                rows.append(row)
                if budget == BUDGETS[0]:
                    compression = 1 - tokens_out / tokens_in
                    kept = (kept_t + kept_e) / items if items else 1.0
                    ent = kept_e / len(entities) if entities else 1.0
                    goal_rows.append(
                        {
                            "system": system,
                            "compression": compression,
                            "critical items kept": kept,
                            "templates kept": kept_t / len(templates) if templates else 1.0,
                            "entities kept": ent,
                            "goal (>=0.90 / >=0.97 / ent >=0.90)": "met"
                            if compression >= 0.90 and kept >= 0.97 and ent >= 0.90
                            else "MISSED",
                        }
                    )
                    base = kept_t + kept_e
            for stem, ids in word_reach(raw_lines, structured).items():
                reach.setdefault(stem, {})[system] = len(ids)
            systems.append(system)
            loso = {"held-out system": system, "items kept, all rules": f"{base}/{items}"}
            for family, kept_without in r["ablation"].items():
                loso[f"saved by {family}"] = base - kept_without
                if base > kept_without:
                    helped[family] += 1
            loso_rows.append(loso)
    loso_rows.append(
        {"held-out system": "systems helped", "items kept, all rules": "", **{f"saved by {f}": n for f, n in helped.items()}}
    )
    reach_rows = [
        {"failure word": stem, **{name: by.get(name, 0) for name in systems}, "systems": len(by)}
        for stem, by in sorted(reach.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    summary = [
        {
            "budget": _pct(b),
            "compression (pooled)": 1 - t[1] / t[0] if t[0] else 0.0,
            "retention (pooled items)": t[3] / t[2] if t[2] else 0.0,
            "templates kept": t[5] / t[4] if t[4] else 0.0,
            "entities kept": t[7] / t[6] if t[6] else 0.0,
            "critical items": t[2],
        }
        for b, t in totals.items()
    ]
    slowest = min((row["compressor lines/s"] for row in speed_rows), default=0)
    slowest_cpu = min((row["compressor lines/s (CPU)"] for row in speed_rows), default=0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Tokenizer: {tokenizer_name()}. Compression = 1 - tokens(out)/tokens(in). Retention = share of "
        "ground-truth critical items (distinct error/warn/fatal/exception/failure templates + entity ids in "
        "those lines) recoverable from the output.\n\n"
        + ("Timed out: " + "; ".join(timeouts) + "\n\n" if timeouts else "")
        + "## Summary over all systems\n\n"
        + markdown_table(summary)
        + f"\n## Goal at the {_pct(BUDGETS[0])} budget, per system\n\n"
        + markdown_table(goal_rows)
        + "\n## Leave-one-system-out: critical items each severity rule family saves at the 5% budget\n\n"
        "Every family was written from a published convention (memory/severity.py cites it), for none of "
        "these systems; a column counts the items lost on the held-out system when that family alone is "
        "switched off.\n\n"
        + markdown_table(loso_rows)
        + "\nPer failure word: critical templates (by the narrow rule: level field or error/warn/fatal/"
        "exception words, so not circular for the other words) on lines that only the word marks; a word "
        "from the general list that counts on several systems was written for none of them.\n\n"
        + markdown_table(reach_rows)
        + "\n## Per system and budget\n\n"
        + markdown_table(rows)
        + f"\n## Throughput (one thread, fold only, cold caches, best of {args.speed_runs} passes, "
        f"repeat={args.repeat}; {os.cpu_count()} CPUs, load average {load:.1f} at the end)\n\n"
        "Wall clock and CPU time of this process; the compressor and drain3's TemplateMiner alone are "
        "timed in turns on the same lines, so both see the same machine load.\n\n"
        + markdown_table(speed_rows)
        + f"\nOverall: {round(total_lines / total_seconds) if total_seconds else 0} lines/s; "
        f"slowest system: {slowest} lines/s. "
        f"CPU time: overall {round(total_lines / total_cpu) if total_cpu else 0} lines/s; "
        f"slowest system: {slowest_cpu} lines/s.\n"
    )
