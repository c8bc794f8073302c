"""Compression benchmark for memory.compressor (AOI: 72.4% compression, 92.8% critical info kept).

Usage: ``python -m bench compression [--data DATA_ROOT] [--logs FOLDER ...] [--repeat N]``

For every system folder under ``DATA_ROOT/logs/loghub`` (and every ``--logs`` folder in the same
layout: ``<System>/<name>.log`` beside ``<name>.log_structured.csv``) the raw log is folded into a
fresh ContextCompressor and rendered at budgets of 5%, 10% and 20% of the input tokens, plus once
without a budget ("natural" size).

* Tokens: ``memory.tokens.count_tokens`` (WordPiece of the packaged all-MiniLM-L6-v2).
* Compression = 1 - tokens(out) / tokens(in).
* Critical items come from the ground truth, not from the compressor: the distinct EventIds of
  lines whose Level is warn/error/fatal-like or whose Content says error/warn/fatal/exception/
  severe/critical, plus the entity ids found in those raw lines by this file's own regex (block,
  IP[:port], request id, UUID, Hadoop job/attempt/container id, BGL node location, hex id >= 16).
* A template is recovered when some output line matches its ground-truth pattern (``<*>`` = any
  text). An entity is recovered when its exact string appears in the output, or is produced by
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
import re
import time
from pathlib import Path

from bench.common import data_dir, markdown_table
from memory.compressor import ContextCompressor
from memory.tokens import count_tokens, tokenizer_name

BUDGETS = (0.05, 0.10, 0.20)
CRITICAL_LEVELS = {"warn", "warning", "error", "err", "fatal", "severe", "critical", "crit", "alert", "emerg"}
CRITICAL_WORDS = re.compile(r"(?i)\b(?:error|errors|warn|warning|fatal|severe|critical)\b|exception")
# Independent of memory.entities on purpose: the yardstick must not be the thing measured.
GT_ENTITY = re.compile(
    r"blk_-?\d+"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"
    r"|\breq-[0-9a-f-]{36}\b"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b(?:application|appattempt|container|attempt|job|task)_\d+(?:_[0-9a-z]+)+\b"
    r"|\bR\d\d-M\d-N[0-9A-F](?:-[A-Z]:J\d\d-U\d\d)?\b"
    r"|\b[0-9a-f]{16,}\b"
)


def template_regex(template: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in template.strip().split("<*>")]
    return re.compile(".*?".join(parts))


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
        rx = template_regex(template)
        if any(rx.search(line) for line in lines):
            kept_t += 1
    derived = recoverable(output)
    kept_e = sum(1 for e in entities if e in output or e in derived)
    return kept_t, kept_e


def drain3_alone(lines: list[str]) -> float:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    started = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    return len(lines) / (time.perf_counter() - started)


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench compression")
    parser.add_argument("--data", default=None, help="data root (default: ../shared/data)")
    parser.add_argument("--logs", action="append", default=[], help="extra folder in loghub layout")
    parser.add_argument("--repeat", type=int, default=1, help="fold the file N times for throughput")
    args = parser.parse_args(argv)

    roots = [data_dir(args.data) / "logs" / "loghub", *map(Path, args.logs)]
    rows, speed_rows = [], []
    totals = {b: [0, 0, 0, 0, 0, 0, 0, 0] for b in (*BUDGETS, None)}  # in, out, items, kept, tpl, tpl kept, ent, ent kept
    total_lines, total_seconds = 0, 0.0
    for root in roots:
        for system, raw_path, structured in find_systems(root):
            raw_lines = raw_path.read_text(encoding="utf-8", errors="replace").splitlines()
            templates, entities = critical_items(raw_lines, structured)
            tokens_in = count_tokens("\n".join(raw_lines))
            compressor = ContextCompressor(budget_tokens=10**9)
            started = time.perf_counter()
            for _ in range(args.repeat):
                compressor.fold(raw_lines)
            seconds = time.perf_counter() - started
            total_lines += len(raw_lines) * args.repeat
            total_seconds += seconds
            speed_rows.append(
                {
                    "system": system,
                    "lines": len(raw_lines) * args.repeat,
                    "compressor lines/s": round(len(raw_lines) * args.repeat / seconds),
                    "drain3 TemplateMiner alone lines/s": round(drain3_alone(raw_lines * args.repeat)),
                    "templates": compressor.stats()["templates"],
                }
            )
            for budget in (*BUDGETS, None):
                limit = int(tokens_in * budget) if budget else 10**9
                output = compressor.render(limit)
                tokens_out = count_tokens(output)
                kept_t, kept_e = retention(output, templates, entities)
                items = len(templates) + len(entities)
                t = totals[budget]
                t[0] += tokens_in
                t[1] += tokens_out
                t[2] += items
                t[3] += kept_t + kept_e
                t[4] += len(templates)
                t[5] += kept_t
                t[6] += len(entities)
                t[7] += kept_e
                rows.append(
                    {
                        "system": system,
                        "budget": f"{int(budget * 100)}%" if budget else "none",
                        "tokens in": tokens_in,
                        "tokens out": tokens_out,
                        "compression": 1 - tokens_out / tokens_in,
                        "crit templates kept": f"{kept_t}/{len(templates)}",
                        "crit entities kept": f"{kept_e}/{len(entities)}",
                        "retention": (kept_t + kept_e) / items if items else "n/a",
                    }
                )
    summary = [
        {
            "budget": f"{int(b * 100)}%" if b else "none",
            "compression (pooled)": 1 - t[1] / t[0] if t[0] else 0.0,
            "retention (pooled items)": t[3] / t[2] if t[2] else 0.0,
            "templates kept": t[5] / t[4] if t[4] else 0.0,
            "entities kept": t[7] / t[6] if t[6] else 0.0,
            "critical items": t[2],
        }
        for b, t in totals.items()
    ]
    return (
        f"Tokenizer: {tokenizer_name()}. Compression = 1 - tokens(out)/tokens(in). Retention = share of "
        "ground-truth critical items (distinct error/warn/fatal/exception templates + entity ids in those "
        "lines) recoverable from the output.\n\n"
        "## Summary over all systems\n\n"
        + markdown_table(summary)
        + "\n## Per system and budget\n\n"
        + markdown_table(rows)
        + f"\n## Throughput (one thread, wall clock, fold only, repeat={args.repeat})\n\n"
        + markdown_table(speed_rows)
        + f"\nOverall: {round(total_lines / total_seconds) if total_seconds else 0} lines/s.\n"
    )
