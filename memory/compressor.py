"""Deterministic, incremental context compressor for incident logs and metrics (after AOI).

WHY this shape: agents reason over a few thousand tokens, while a single probe can return
megabytes of logs. The compressor folds raw lines into a small state as they arrive (nothing is
re-read), and renders that state under a token budget, most salient facts first:

1. error/warn/fatal/exception templates, each with its count and first message (header stripped);
2. anomalous metric series with their change points;
3. the entity ids (block, request, trace, node, IP, error code) seen on those critical lines,
   packed losslessly in bash brace / ``#``-table notation (``memory.notation``, documented in
   one ``[notation]`` line of the output), under each template or, when that does not fit, in
   one section;
4. other wordings (variants), time spans, first/last occurrence verbatim;
5. the remaining (routine) templates with counts and first/last time.

Template mining is Drain (drain3) over a digit-masked message; a cache keyed by the masked line
skips Drain entirely for repeated shapes, which is what makes >100k lines/s possible in Python.
An optional LLM pass (``memory.llm``) can rewrite the deterministic output; it never replaces it
when it fails, runs late or drops critical ids.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from drain3.drain import Drain, LogCluster

from memory.entities import ENTITY_RE
from memory.llm import Complete, refine_with_llm
from memory.metrics import SeriesAnalysis, analyse, normalise_series
from memory.notation import NOTATION_HELP, expand_text, pack_ids, pack_runs
from memory.severity import NAMED_RE, NAMES, RULE_FAMILIES, classify, digit_severity, digit_slot
from memory.tokens import count_tokens, count_tokens_batch

STATE_VERSION = 1
MASK = "<#>"
# Any token part that holds a digit (with leading hex letters, so UUIDs and hex ids mask whole), up to
# the next separator: numbers, ids, IPs, timestamps.
# Masked lines become the cache key and the Drain input. Explicit ASCII classes (not \\w, \\d) let
# the regex engine scan with a charset prefix, about 3x faster on long lines.
# Same matches as ``[0-9][0-9A-Za-z_.:-]*|[a-f]+[0-9][0-9A-Za-z_.:-]*`` (``MASK_REFERENCE``; a test
# compares both), written so the engine does less work per candidate position (~25% faster):
# - one leading class ``[0-9a-f]``, so the engine's charset scan skips every other position;
# - ``(?<![a-f][a-f])``: a match never starts inside a run of hex letters (the run's first letter
#   would have started it, and a match never ends just before a letter of its own class), so
#   only the first letter of each ``a-f`` run is tried, not every one;
# - possessive ``*+``: a run of hex letters must be followed by a digit, and the tail is maximal,
#   so giving characters back can never help; possessive quantifiers skip the backtracking state.
MASK_RE = re.compile(r"[0-9a-f](?<![a-f][a-f])(?:(?<=[0-9])|[a-f]*+[0-9])[0-9A-Za-z_.:-]*+")
MASK_REFERENCE = r"[0-9][0-9A-Za-z_.:-]*|[a-f]+[0-9][0-9A-Za-z_.:-]*"
# ``mask_line``: the same result in two cheap passes. A match of MASK_RE is the rest of a run of
# ``[0-9A-Za-z_.:-]`` from its first digit, moved left over the hex letters just before that digit.
# Pass 1 masks from the first digit only (the engine stops at digits, not at every a-f letter);
# pass 2 moves each mask left over the hex letters before it, on the reversed text, where a
# mask is the literal ``>#<`` that the engine finds fast. Pass 2 runs only on lines that need it.
_MASK_DIGITS = re.compile(r"[0-9][0-9A-Za-z_.:-]*+")
_MASK_ABSORB = re.compile(r">#<[a-f]++")


def mask_line(line: str) -> str:
    """``MASK_RE.sub(MASK, line)``, ~30% cheaper on typical log lines (see ``_MASK_DIGITS``)."""
    key = _MASK_DIGITS.sub(MASK, line)
    if "a<#>" in key or "b<#>" in key or "c<#>" in key or "d<#>" in key or "e<#>" in key or "f<#>" in key:
        if MASK in line:  # a literal <#> in the raw text is not a mask: take the one-pass way
            return MASK_RE.sub(MASK, line)
        return _MASK_ABSORB.sub(">#<", key[::-1])[::-1]
    return key
# The level regex of ``memory.severity`` (named levels: syslog, log4j, Python, Go, Rust, Windows).
LEVEL_RE = NAMED_RE
SEVERITY_NAME = NAMES
CRITICAL = 2
HEADERISH_RE = re.compile(
    r"[\[(]?(?:<#>|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun|[-:/.,T+Z])+[\])},:]*",
    re.IGNORECASE,
)
TIME_RE = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?Z?|\d{2,4}[./-]\d\d[./-]\d\d[-\s]\d\d[:.]\d\d[:.]\d\d"
    r"|\b\d{6} \d{6}\b|[A-Z][a-z]{2} +\d+ \d\d:\d\d:\d\d"
)
# A bare time of day, used only when the line has no date and time (a time inside a file name
# such as ``nova-api.log.1.2017-05-16_13:53:08`` must not win over the real timestamp after it).
BARE_TIME_RE = re.compile(r"\d\d:\d\d:\d\d(?:[.,]\d+)?")


# How a process id or counter ends a token (syslog ``sshd[123]:``, ``(123)``): never an id we keep.
_PID_ENDINGS = (f"[{MASK}]:", f"[{MASK}]", f"({MASK})", f"({MASK}):", f"({MASK}),")


class _Template:
    """Running statistics of one Drain cluster."""

    __slots__ = ("cid", "count", "severity", "first_line", "last_line", "first_seq", "last_seq", "variants", "entities")

    def __init__(self, cid: int, seq: int, line: str) -> None:
        self.cid = cid
        self.count = 0
        self.severity = 0
        self.first_line = line
        self.last_line = line
        self.first_seq = seq
        self.last_seq = seq
        self.variants: dict[str, list[Any]] = {}  # masked line -> [count, first raw line] (critical only)
        self.entities: dict[str, int] = {}  # entity value -> count (critical lines only)


class _Key:
    """Cache entry for one masked line shape: its template, severity and variant slot."""

    __slots__ = ("template", "severity", "variant", "slots", "digits")

    def __init__(
        self,
        template: _Template | None,
        severity: int,
        variant: list[Any] | None,
        slots: tuple[int, ...] | None,
        digits: tuple[int, int, str] | None = None,
    ) -> None:
        # ``digits``: where the shape's digits carry severity (HTTP status, exit code, syslog
        # PRI; ``memory.severity.digit_slot``); such an entry only dispatches to per-severity
        # entries (``template`` is None).
        self.digits = digits
        self.template: _Template = template  # type: ignore[assignment]
        self.severity = severity
        self.variant = variant
        # Whitespace-token positions that may hold an entity in lines of this shape. Masking
        # never changes whitespace, so later lines of the same shape have the ids at the same
        # positions: scanning only those tokens is ~5x cheaper than scanning the whole line.
        self.slots = slots


class ContextCompressor:
    """Streaming log/metric compressor with a token budget. See the module docstring for why.

    ``state_path``: a JSON file; when given, the state is loaded from it (if present) and saved
    after every ``fold``/``fold_metrics`` call, so a restarted worker continues where it stopped.
    """

    def __init__(
        self,
        *,
        budget_tokens: int = 2000,
        state_path: str | os.PathLike[str] | None = None,
        llm: Complete | None = None,
        sim_th: float = 0.5,
        max_variants: int = 16,
        max_entities_per_template: int = 2000,
        max_metric_points: int = 5000,
        key_cache_size: int = 200_000,
        severity_rules: frozenset[str] = RULE_FAMILIES,
    ) -> None:
        self.budget_tokens = budget_tokens
        self.state_path = Path(state_path) if state_path else None
        self.llm = llm
        self.max_variants = max_variants
        self.max_entities_per_template = max_entities_per_template
        self.max_metric_points = max_metric_points
        self.key_cache_size = key_cache_size
        # Rule families of ``memory.severity`` in use (the benchmark switches them off one by one).
        self.severity_rules = severity_rules
        self._drain = Drain(depth=4, sim_th=sim_th, max_children=100)
        self._templates: dict[int, _Template] = {}
        self._keys: dict[str, _Key] = {}
        self._entity_kinds: dict[str, str] = {}
        self._token_entities: dict[str, tuple[tuple[str, str], ...]] = {}
        self._metrics: dict[str, list[tuple[float, float]]] = {}
        self._lines = 0
        self._fold_seconds = 0.0
        self._last_llm: dict[str, Any] | None = None
        if self.state_path and self.state_path.exists():
            self.load_state(json.loads(self.state_path.read_text()))

    # ------------------------------------------------------------------ folding

    def fold(self, lines: Iterable[str]) -> int:
        """Fold new raw lines into the state; returns how many non-empty lines were taken."""
        started = time.perf_counter()
        keys = self._keys
        mask = mask_line
        token_ids = self._token_ids
        kinds = self._entity_kinds
        # Ids repeat (the same node, block or address on many lines): the scan of a token is cached.
        tok_cache = self._token_entities
        cap = self.max_entities_per_template
        seq = self._lines
        taken = 0
        for raw in lines:
            line = raw.rstrip()
            if not line:
                continue
            seq += 1
            taken += 1
            key = mask(line)
            info = keys.get(key)
            if info is None:
                info = self._new_key(key, line, seq)
            if info.digits:
                token, offset, _ = info.digits
                number = line.split(None, token + 1)[token][offset:]
                info = keys.get(f"{key}\x01{number}") or self._digit_key(key, line, seq, info.digits)
            t = info.template
            t.count += 1
            t.last_line = line
            t.last_seq = seq
            if info.severity >= CRITICAL:
                if info.variant is not None:
                    info.variant[0] += 1
                ents = t.entities
                slots = info.slots
                if not slots:
                    continue
                toks = line.split(None, slots[-1] + 1)  # split no further than the last slot
                for i in slots:
                    tok = toks[i]
                    found = tok_cache.get(tok)
                    if found is None:
                        found = token_ids(tok)
                    for value, kind in found:
                        n = ents.get(value)
                        if n is not None:
                            ents[value] = n + 1
                        elif len(ents) < cap:
                            ents[value] = 1
                            if value not in kinds:
                                kinds[value] = kind
        self._lines = seq
        self._fold_seconds += time.perf_counter() - started
        self._autosave()
        return taken

    def _token_ids(self, token: str) -> tuple[tuple[str, str], ...]:
        """(id, kind) pairs in one whitespace token, cached (ids repeat across lines)."""
        found = self._token_entities.get(token)
        if found is None:
            # Most tokens scanned hold no id (times, counters) or are one id: one ``search``
            # settles those without building an iterator; otherwise iterate after the first
            # match (look-behinds still see the text before ``pos``, so the matches are those
            # of a full ``finditer``).
            first = ENTITY_RE.search(token)
            if first is None:
                found = ()
            else:
                found = ((first.group(0), first.lastgroup or "id"),)
                if first.end() < len(token):
                    found += tuple((m.group(0), m.lastgroup or "id") for m in ENTITY_RE.finditer(token, first.end()))
            if len(self._token_entities) < self.key_cache_size:
                self._token_entities[token] = found
        return found

    def _digit_key(self, key: str, line: str, seq: int, slot: tuple[int, int, str]) -> _Key:
        """A shape whose digits carry severity: one cache entry per (shape, digit-borne severity)."""
        token, offset, kind = slot
        number = line.split(None, token + 1)[token][offset:]
        floor = digit_severity(kind, number)
        sub = f"{key}\x00{floor}"
        info = self._keys.get(sub)
        if info is None:
            info = self._new_key(key, line, seq, floor=floor, cache_key=sub)
        # the raw number (e.g. "200") maps straight to its entry next time
        self._keys[f"{key}\x01{number}"] = info
        return info

    def _new_key(self, key: str, line: str, seq: int, *, floor: int = -2, cache_key: str | None = None) -> _Key:
        """First sight of a line shape: classify it, mine its template, cache the result.

        WHY the severity and failure words lead the Drain input: Drain's prefix tree keys on the
        first tokens, so lines that differ in severity or in failure words (``Command has
        aborted`` vs ``Command has completed``) can never share a template: a failure never
        hides as a variant of a routine template, and each failing variant gets its own headline.
        """
        verdict = classify(key, rules=self.severity_rules)
        if verdict.needs_digits and floor == -2:
            info = _Key(None, 0, None, None, digits=digit_slot(key))
            self._keys[key] = info
            return info
        severity = max(verdict.severity, floor)
        if verdict.level_end >= 0:
            message = key[verdict.level_end :].lstrip(" ]:-|\"',")
        else:
            tokens = key.split()
            i = 0
            while i < len(tokens) - 1 and i < 8 and HEADERISH_RE.fullmatch(tokens[i]):
                i += 1
            message = " ".join(tokens[i:])
        prefix = " ".join([SEVERITY_NAME[max(severity, 1)], *("~" + f for f in verdict.failures)])
        # The level leads the Drain input so warn and info lines of one shape never merge.
        cluster, _ = self._drain.add_log_message(f"{prefix} {message}")
        key, line_key = (cache_key or key), key
        t = self._templates.get(cluster.cluster_id)
        if t is None:
            t = _Template(cluster.cluster_id, seq, line)
            self._templates[cluster.cluster_id] = t
        t.severity = max(t.severity, severity)
        variant = None
        slots: tuple[int, ...] | None = None
        if severity >= CRITICAL:
            variant = t.variants.get(key)
            if variant is None and len(t.variants) < self.max_variants:
                variant = [0, line]
                t.variants[key] = variant
            line_tokens = line.split()
            # A masked token is scanned on every line of the shape unless it looks like a date,
            # time, counter or process id (``sshd[<#>]:``) and held no id on this first line
            # (``rhost=<#>`` may hold a host name here and an IP on the next line).
            slots = tuple(
                i
                for i, tok in enumerate(line_key.split())
                if MASK in tok
                and (
                    not (HEADERISH_RE.fullmatch(tok) or tok.endswith(_PID_ENDINGS))
                    or self._token_ids(line_tokens[i])
                )
            )
        if len(self._keys) >= self.key_cache_size:
            self._keys.clear()
        info = _Key(t, severity, variant, slots)
        self._keys[key] = info
        return info

    def fold_metrics(self, name: str, series: Iterable[float] | Iterable[tuple[float, float]]) -> int:
        """Append points to a named metric series (values, or (time, value) pairs)."""
        existing = self._metrics.setdefault(name, [])
        points = normalise_series(series, start=len(existing))
        existing.extend(points)
        if len(existing) > self.max_metric_points:
            del existing[: len(existing) - self.max_metric_points]
        self._autosave()
        return len(points)

    # ------------------------------------------------------------------ rendering

    def anomalous_metrics(self) -> list[SeriesAnalysis]:
        """Series that shifted or spiked, most salient first."""
        found = []
        for name, pts in self._metrics.items():
            a = analyse(name, [p[0] for p in pts], [p[1] for p in pts])
            if a.anomalous:
                found.append(a)
        return sorted(found, key=lambda a: -a.score)

    def render(self, budget_tokens: int | None = None) -> str:
        """The compressed context, at most ``budget_tokens`` tokens (``memory.tokens``)."""
        budget = self.budget_tokens if budget_tokens is None else budget_tokens
        text = self._render_deterministic(budget)
        if self.llm is None:
            return text
        result = refine_with_llm(text, budget_tokens=budget, complete=self.llm, must_keep=self._must_keep(text))
        self._last_llm = result.as_dict()
        return result.text

    def _must_keep(self, text: str) -> list[str]:
        """Ids the deterministic output carries for critical templates (an LLM may not drop them)."""
        shown = expand_text(text)
        keep: list[str] = []
        for t in self._templates.values():
            if t.severity >= CRITICAL:
                keep.extend(e for e in t.entities if e in shown)
        return keep

    def _render_deterministic(self, budget: int) -> str:
        """Ids under their templates when they all fit; else one packed ids section if it keeps more.

        WHY two layouts: ids under each template keep the association (which nodes had which
        error), but repeat table heads and ids shared by templates. One packed section costs
        ~40% fewer tokens on BGL, so under a tight budget it keeps far more of them.
        """
        grouped = self._render_layout(budget, grouped=True)
        wanted = {e for t in self._templates.values() if t.severity >= CRITICAL for e in t.entities}
        if not wanted:
            return grouped
        kept_grouped = len(wanted & expand_text(grouped))
        if kept_grouped == len(wanted):
            return grouped
        flat = self._render_layout(budget, grouped=False)
        return flat if len(wanted & expand_text(flat)) > kept_grouped else grouped

    def _render_layout(self, budget: int, *, grouped: bool) -> str:
        """Greedy fill by salience tier; every accepted piece is counted with the real tokenizer.

        Tiers, each over the critical templates in salience order (severity, then count):
        1 headline ``xN message`` (first occurrence, header stripped), 2 anomalous metrics,
        variants with new wording (distinct failures Drain merged), 3 the template's ids packed
        (``memory.notation``; ids already readable above are skipped), 4 the other message
        variants, 5 the [first..last] time span, 6 verbatim first/last line, 7 routine templates.
        Ids come before the other variants and spans because a diagnosis cites them and packing
        makes them cheap; a piece that does not fit is skipped, and later (cheaper) ones may still fit.
        """
        templates = list(self._templates.values())
        critical = sorted(
            (t for t in templates if t.severity >= CRITICAL), key=lambda t: (-t.severity, -t.count, t.first_seq)
        )
        routine = sorted((t for t in templates if t.severity < CRITICAL), key=lambda t: (-t.count, t.first_seq))
        metrics = self.anomalous_metrics()
        first_ts = _timestamp(_first_line(templates))
        last_ts = _timestamp(_last_line(templates))
        header = (
            f"[context] {self._lines} lines, {len(templates)} templates, {len(critical)} error/warn templates"
            + (f", {len(metrics)} anomalous metrics" if metrics else "")
            + (f"; {first_ts} .. {last_ts}" if first_ts and last_ts else "")
        )
        section_titles = {
            1: "## errors and warnings", 2: "## anomalous metrics", 3: "## ids on error/warn lines",
            7: "## routine templates",
        }  # fmt: skip
        heads = {t.cid: f"x{t.count} {_message(t.first_line)}" for t in critical}
        spans = {t.cid: _span(t) for t in critical}
        variants: dict[int, list[str]] = {}
        novel: set[str] = set()
        for t in critical:
            # Other wordings of the template, each message once. A variant with words the headline
            # (and earlier variants) lack is a distinct failure Drain merged in: it is placed
            # before the ids; variants that differ only in ids or numbers come after them.
            head = _message(t.first_line)
            seen_words = _words(head)
            seen_msgs = {head}
            lines_for_t = []
            for vkey, (vcount, vline) in t.variants.items():
                msg = _message(vline)
                if not vkey or msg in seen_msgs:
                    continue
                seen_msgs.add(msg)
                line = f"  variant x{vcount}: {msg}"
                words = _words(msg)
                if words - seen_words:
                    novel.add(line)
                    seen_words |= words
                lines_for_t.append(line)
            variants[t.cid] = lines_for_t
        firstlast = {
            t.cid: (
                [f"  first: {t.first_line}"] + ([f"  last: {t.last_line}"] if t.last_line != t.first_line else [])
                if t.count > 1
                else []
            )
            for t in critical
        }
        routine_lines = [
            f"x{t.count}{_span(t)} "
            # the first token is the severity the Drain input was prefixed with (see _new_key)
            + self._drain.id_to_cluster[t.cid].get_template().replace(MASK, "<*>").partition(" ")[2]
            for t in routine
        ]
        batch = [*section_titles.values(), NOTATION_HELP, *heads.values(), *(v for v in spans.values() if v)]
        batch += [line for lines in variants.values() for line in lines]
        batch += [line for lines in firstlast.values() for line in lines]
        batch += [_describe_metric(a) for a in metrics] + routine_lines
        cost = dict(zip(batch, count_tokens_batch(batch), strict=True))

        used = count_tokens(header)
        opened: set[int] = set()
        shown: set[str] = set()
        notation = False
        accepted: dict[int, dict[str, Any]] = {}
        other: dict[int, list[str]] = {2: [], 3: [], 7: []}

        def take(section: int, text: str, extra: int = 0) -> bool:
            nonlocal used
            need = cost[text] + extra + (0 if section in opened else cost[section_titles[section]])
            if used + need > budget:
                return False
            used += need
            opened.add(section)
            return True

        for t in critical:
            if take(1, heads[t.cid]):
                accepted[t.cid] = {"span": "", "ids": [], "more": []}
                shown |= expand_text(heads[t.cid])
        for a in metrics:
            line = _describe_metric(a)
            if take(2, line):
                other[2].append(line)
        for t in critical:
            if t.cid in accepted:
                for line in variants[t.cid]:
                    if line in novel and take(1, line):
                        accepted[t.cid]["more"].append(line)
        flat_ids: list[str] = []
        flat_count: dict[str, int] = {}
        for t in critical:
            if t.cid not in accepted:
                continue
            if not grouped:
                for e, n in t.entities.items():
                    if e not in shown:
                        flat_count[e] = flat_count.get(e, 0) + n
                continue
            by_count = [e for e, _ in sorted(t.entities.items(), key=lambda kv: -kv[1])]
            room = budget - used - (0 if notation else cost[NOTATION_HELP])
            lines, spent, packed = self._fit_entities(by_count, shown, room)
            if lines:
                if packed and not notation:
                    notation = True
                    spent += cost[NOTATION_HELP]
                used += spent
                accepted[t.cid]["ids"] = lines
                for line in lines:
                    shown |= expand_text(line)
        if flat_count:
            # One section for all templates: ids that name a machine, address or request before
            # file paths (long, and usually readable in the headline already), then the ids on
            # most critical lines, then the shorter (cheaper) ones: a tight budget keeps the most
            # ids a diagnosis cites.
            kinds = self._entity_kinds
            flat_ids = sorted(flat_count, key=lambda e: (kinds.get(e) == "path", -flat_count[e], len(e)))
        if flat_ids:
            extra = cost[NOTATION_HELP] + cost[section_titles[3]]
            lines, spent, packed = self._fit_entities(list(dict.fromkeys(flat_ids)), shown, budget - used - extra)
            if lines:
                used += spent + extra
                notation = True
                other[3] = lines
        for t in critical:
            if t.cid in accepted:
                for line in variants[t.cid]:
                    if line not in novel and take(1, line):
                        accepted[t.cid]["more"].append(line)
        for t in critical:
            span = spans[t.cid]
            if t.cid in accepted and span and take(1, span):
                accepted[t.cid]["span"] = span
        for t in critical:
            if t.cid in accepted:
                for line in firstlast[t.cid]:
                    if take(1, line):
                        accepted[t.cid]["more"].append(line)
        for line in routine_lines:
            if take(7, line):
                other[7].append(line)

        # A headline or variant may carry a packed node list (``pack_runs``): document the notation.
        notation = notation or any(
            "{" in line
            for cid, block in accepted.items()
            for line in (heads[cid], *block["more"])
        )
        out = [header]
        if notation:
            out.append(NOTATION_HELP)
        if accepted:
            out.append(section_titles[1])
            for t in critical:
                block = accepted.get(t.cid)
                if block is None:
                    continue
                count, _, message = heads[t.cid].partition(" ")
                out.append(f"{count}{block['span']} {message}")
                out.extend(block["ids"])
                out.extend(block["more"])
        for section in (3, 2, 7):
            if other[section]:
                out.append(section_titles[section])
                out.extend(other[section])
        text = "\n".join(out)
        while count_tokens(text) > budget and len(out) > 1:
            out.pop()
            text = "\n".join(out)
        if count_tokens(text) > budget:
            return ""
        return text

    def _fit_entities(self, ids: list[str], shown: set[str], room: int) -> tuple[list[str], int, bool]:
        """``ids`` (most salient first) not yet readable in the output, packed into ``room`` tokens.

        Returns (lines, tokens, whether the brace/table notation was used). When all ids do not
        fit ``room``, the largest salient prefix that does is found by bisection.
        """
        missing = [e for e in ids if e not in shown]
        if not missing or room <= 0:
            return [], 0, False

        def build(n: int) -> tuple[list[str], int, bool]:
            chunks = pack_ids(missing[:n])
            words = [c for c in chunks if " = " not in c]
            lines = (["  ids: " + " ".join(words)] if words else []) + ["  ids: " + c for c in chunks if " = " in c]
            packed = any(" = " in c or "{" in c for c in chunks)
            return lines, sum(count_tokens_batch(lines)), packed

        best = build(len(missing))
        if best[1] <= room:
            return best
        lo, hi, best = 0, len(missing), ([], 0, False)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            candidate = build(mid)
            if candidate[1] <= room:
                lo, best = mid, candidate
            else:
                hi = mid - 1
        return best

    # ------------------------------------------------------------------ introspection and state

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and the benchmark."""
        return {
            "lines": self._lines,
            "templates": len(self._templates),
            "critical_templates": sum(1 for t in self._templates.values() if t.severity >= CRITICAL),
            "line_shapes_cached": len(self._keys),
            "entities": len(self._entity_kinds),
            "metrics": len(self._metrics),
            "fold_seconds": round(self._fold_seconds, 4),
            "lines_per_second": round(self._lines / self._fold_seconds) if self._fold_seconds else None,
            "last_llm": self._last_llm,
        }

    def dump_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot (no pickle: the state may live in a shared Redis)."""
        return {
            "version": STATE_VERSION,
            "lines": self._lines,
            "fold_seconds": self._fold_seconds,
            "clusters": [
                {"id": c.cluster_id, "tokens": list(c.log_template_tokens), "size": c.size}
                for c in self._drain.id_to_cluster.values()
            ],
            "clusters_counter": self._drain.clusters_counter,
            "templates": [
                {
                    "cid": t.cid, "count": t.count, "severity": t.severity,
                    "first_line": t.first_line, "last_line": t.last_line,
                    "first_seq": t.first_seq, "last_seq": t.last_seq,
                    "variants": t.variants, "entities": t.entities,
                }
                for t in self._templates.values()
            ],  # fmt: skip
            "entity_kinds": self._entity_kinds,
            "metrics": {k: [list(p) for p in v] for k, v in self._metrics.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Rebuild from ``dump_state`` output; the Drain prefix tree is rebuilt from the clusters."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported compressor state version {state.get('version')!r}")
        drain = Drain(depth=self._drain.log_cluster_depth, sim_th=self._drain.sim_th, max_children=100)
        for c in state["clusters"]:
            cluster = LogCluster(c["tokens"], c["id"])
            cluster.size = c["size"]
            drain.id_to_cluster[cluster.cluster_id] = cluster
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)
        drain.clusters_counter = state["clusters_counter"]
        self._drain = drain
        self._templates = {}
        for d in state["templates"]:
            t = _Template(d["cid"], d["first_seq"], d["first_line"])
            t.count, t.severity, t.last_line, t.last_seq = d["count"], d["severity"], d["last_line"], d["last_seq"]
            t.variants = {k: list(v) for k, v in d["variants"].items()}
            t.entities = dict(d["entities"])
            self._templates[t.cid] = t
        self._keys = {}
        self._entity_kinds = dict(state["entity_kinds"])
        self._metrics = {k: [(float(a), float(b)) for a, b in v] for k, v in state["metrics"].items()}
        self._lines = state["lines"]
        self._fold_seconds = state.get("fold_seconds", 0.0)

    def save(self) -> None:
        """Write the state to ``state_path`` atomically (write a temp file, then rename)."""
        if not self.state_path:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=".compressor-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.dump_state(), fh)
        os.replace(tmp, self.state_path)

    def _autosave(self) -> None:
        if self.state_path:
            self.save()


def _first_line(templates: list[_Template]) -> str:
    return min(templates, key=lambda t: t.first_seq).first_line if templates else ""


def _last_line(templates: list[_Template]) -> str:
    return max(templates, key=lambda t: t.last_seq).last_line if templates else ""


def _timestamp(line: str) -> str:
    m = TIME_RE.search(line, 0, 120) or BARE_TIME_RE.search(line, 0, 120)
    return m.group(0) if m else ""


def _message(line: str) -> str:
    """The part of a raw line after its level token (the header is already shown once), with
    long runs of ids (node lists) packed in the documented notation."""
    end = classify(line, rules=_LEVEL_RULES).level_end
    if end >= 0:
        return pack_runs(line[end:].lstrip(" ]:-|\"',"))
    # No level token: drop the leading date/time tokens (the span shows the times).
    tokens = MASK_RE.sub(MASK, line).split()
    i = 0
    while i < len(tokens) - 1 and i < 8 and HEADERISH_RE.fullmatch(tokens[i]):
        i += 1
    return pack_runs(line.split(None, i)[-1] if i else line)


def _words(message: str) -> set[str]:
    """The words of a message that hold no digit (what a reader sees as its wording)."""
    return {w for w in message.split() if not any(c.isdigit() for c in w)}


_LEVEL_RULES = frozenset({"named", "single"})


def _span(t: _Template) -> str:
    """' [first..last]' times of a template (empty when the lines carry no timestamp)."""
    first, last = _timestamp(t.first_line), _timestamp(t.last_line)
    if not first:
        return ""
    return f" [{first}]" if t.count == 1 or first == last else f" [{first}..{last}]"


def _describe_metric(a: SeriesAnalysis) -> str:
    parts = [f"{a.name}: baseline {a.baseline:.4g}, latest {a.latest:.4g}, peak {a.peak:.4g} at {_t(a.peak_time)}"]
    for c in a.change_points:
        pct = (c.after - c.before) / abs(c.before) * 100 if c.before else float("inf")
        parts.append(f"shift {c.before:.4g}->{c.after:.4g} ({pct:+.0f}%) at {_t(c.time)}")
    return "; ".join(parts)


def _t(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
