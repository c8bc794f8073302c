"""Severity and failure detection from general logging conventions (not from any one data set).

WHY one module: whether a line is routine or a failure decides what survives compression, so
the rules must hold on logs the project has never seen. Each rule below comes from a published
convention (cited next to it), not from the files the benchmark happens to hold. The rules run
on a *masked* line (digits replaced by ``<#>``, see ``memory.compressor.MASK``) once per line
shape; the few rules that need the digits themselves (syslog ``<PRI>``, HTTP status, exit codes)
say so through ``needs_digits``; ``digit_slot`` finds where the number sits in the shape and
``digit_severity`` reads it from each raw line.

Severity scale: 0 debug/trace, 1 info/notice, 2 warning, 3 error, 4 fatal/critical/emergency.

Rule families (names usable in ``rules=`` to switch a family off, e.g. for the benchmark's
ablation): ``named`` level words, ``single`` single-letter levels, ``numeric`` digit-borne
severities, ``vocabulary`` failure words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULE_FAMILIES = frozenset({"named", "single", "numeric", "vocabulary"})
DEBUG, INFO, WARN, ERROR, FATAL = range(5)
NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARN: "WARN", ERROR: "ERROR", FATAL: "FATAL"}
_N = r"(?:<#>|\d+)"  # a number, raw or masked

# Level words, upper case (or any case inside brackets / after level=):
# - syslog severities, RFC 5424 section 6.2.1: emerg alert crit err warning notice info debug
#   (also the Apache httpd ErrorLog names, which reuse them: [emerg] ... [debug]);
# - log4j / logback / SLF4J: TRACE DEBUG INFO WARN ERROR FATAL;
# - Python logging: DEBUG INFO WARNING ERROR CRITICAL;
# - java.util.logging: FINEST FINER FINE CONFIG INFO WARNING SEVERE;
# - Go log/slog: DEBUG INFO WARN ERROR; zap adds DPANIC PANIC FATAL; logrus adds PANIC;
# - Rust log / tracing: TRACE DEBUG INFO WARN ERROR;
# - Windows event log levels: Critical Error Warning Information Verbose (title case).
LEVEL_WORDS = {
    "TRACE": DEBUG, "DEBUG": DEBUG, "FINEST": DEBUG, "FINER": DEBUG, "FINE": DEBUG, "VERBOSE": DEBUG,
    "INFO": INFO, "INFORMATION": INFO, "NOTICE": INFO, "CONFIG": INFO,
    "WARN": WARN, "WARNING": WARN,
    "ERROR": ERROR, "ERR": ERROR, "SEVERE": ERROR, "DPANIC": ERROR,
    "FATAL": FATAL, "CRIT": FATAL, "CRITICAL": FATAL, "ALERT": FATAL, "EMERG": FATAL, "EMERGENCY": FATAL,
    "PANIC": FATAL,
}  # fmt: skip
_UPPER = "|".join(sorted(LEVEL_WORDS, key=len, reverse=True))
_TITLE = "Information|Verbose|Warning|Error|Critical|Debug|Info|Notice|Fatal|Trace|Warn"
NAMED_RE = re.compile(
    rf"(?:^|(?<=[\s\[<\"(|]))(?P<level>{_UPPER}|{_TITLE})(?=$|[\s\]>\":)|,])"
    rf"|\[(?P<blevel>(?i:{_UPPER}))\]"
    # logfmt (Go logrus/slog text handler, Heroku): level=error; JSON loggers: "level":"error"
    rf"|\blevel\"?[=:]\s?\"?(?P<kvlevel>(?i:{_UPPER}))\b"
)
# NAMED_RE split in three, same leftmost match (a test compares them). WHY: a pattern that opens
# with an assertion is tried at every position; here the level words come first, each guarded by
# a look-behind on the character before it, so the engine jumps between candidate capitals, and
# the bracket and logfmt/JSON forms are searched only when the line holds ``[`` or ``level``.
# About 3x cheaper per new line shape.
_LEVEL_ALTERNATIVES = [*sorted(LEVEL_WORDS, key=len, reverse=True), *_TITLE.split("|")]
_NAMED_WORD = re.compile(
    "(?P<level>" + "|".join(rf"{w}(?<![^\s\[<\"(|]{w})" for w in _LEVEL_ALTERNATIVES) + r")(?=$|[\s\]>\":)|,])"
)
_NAMED_BRACKET = re.compile(rf"\[(?P<blevel>(?i:{_UPPER}))\]")
_NAMED_KV = re.compile(rf"\blevel\"?[=:]\s?\"?(?P<kvlevel>(?i:{_UPPER}))\b")


def named_level(masked: str, scan: int = 300) -> re.Match[str] | None:
    """``NAMED_RE.search(masked, 0, scan)``, cheaper; the level word is ``m.group(m.lastgroup)``."""
    best = _NAMED_WORD.search(masked, 0, scan)
    for needle, pattern in (("[", _NAMED_BRACKET), ("level", _NAMED_KV)):
        if needle in masked:
            m = pattern.search(masked, 0, scan)
            if m and (best is None or m.start() < best.start()):
                best = m
    return best


# Single-letter levels:
# - glog / klog (Kubernetes): Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg, L in I W E F;
# - Android logcat "brief": L/Tag(pid): msg; "threadtime": date time pid tid L Tag: msg,
#   L in V D I W E F A (A = assert).
SINGLE_LETTER = {"V": DEBUG, "D": DEBUG, "I": INFO, "W": WARN, "E": ERROR, "F": FATAL, "A": FATAL}
_BRIEF = r"(?P<brief>[VDIWEFA])/[A-Za-z][\w.$-]*\s*[(:]"
SINGLE_RE = re.compile(
    rf"^(?P<glog>[IWEF]){_N} {_N}"
    rf"|(?:^|\s){_BRIEF}"
    rf"|^(?:\S*(?:<#>|\d)\S*\s+){{2,6}}(?P<thread>[VDIWEFA])\s+(?=\S)"
)
# SINGLE_RE split in two, same leftmost match (a test compares them): what can match at the start
# (``match``), then the brief form after a space, searched only when the line holds a ``/``.
# WHY: a search with anchored alternatives still tries all of them at every position, and most
# line shapes (no level at all) are scanned to the end.
_SINGLE_AT_START = re.compile(
    rf"(?P<glog>[IWEF]){_N} {_N}"
    rf"|\s??{_BRIEF}"
    rf"|(?:\S*(?:<#>|\d)\S*\s+){{2,6}}(?P<thread>[VDIWEFA])\s+(?=\S)"
)
_SINGLE_BRIEF = re.compile(rf"\s{_BRIEF}")


def single_level(masked: str, scan: int = 300) -> re.Match[str] | None:
    """``SINGLE_RE.search(masked, 0, scan)``, cheaper (see ``_SINGLE_AT_START``)."""
    m = _SINGLE_AT_START.match(masked, 0, scan)
    if m is None and "/" in masked:
        m = _SINGLE_BRIEF.search(masked, 1, scan)
    return m


# Failure vocabulary, matched per word (lower-cased; a word is a run of letters, digits, ``_``,
# ``'`` and ``-``, so ``error_code`` and ``non-fatal`` are not failure words). Word lookups in a
# set instead of one big case-insensitive alternation: about 10x cheaper per line shape.
# Error grade: what POSIX/Linux and runtimes print when something broke (strerror texts, kernel
# oops and OOM killer, language runtime crashes and exception class names).
ERROR_WORDS = {
    "fail": "fail", "fails": "fail", "failed": "fail", "failing": "fail", "failure": "fail", "failures": "fail",
    "abort": "abort", "aborts": "abort", "aborted": "abort", "aborting": "abort",
    "panic": "panic", "panics": "panic", "panicked": "panic", "crash": "crash", "crashed": "crash",
    "crashes": "crash", "crashing": "crash", "segfault": "segfault", "corrupt": "corrupt",
    "corrupted": "corrupt", "corruption": "corrupt", "killed": "killed", "oom": "oom", "exception": "exception",
    "exceptions": "exception", "traceback": "traceback", "fatal": "fatal", "error": "error", "errors": "error",
    "errno": "error", "critical": "critical", "severe": "severe",
}  # fmt: skip
ERROR_PHRASES: dict[tuple[str, ...], str] = {
    ("segmentation", "fault"): "segfault", ("core", "dumped"): "crash", ("kill", "process"): "killed",
    ("out", "of", "memory"): "oom", ("call", "trace"): "traceback", ("stack", "trace"): "traceback",
    ("soft", "lockup"): "lockup", ("hard", "lockup"): "lockup", ("blocked", "for", "more"): "hung",
}  # fmt: skip
# Warning grade: refusals, timeouts and degradations that often precede a failure.
WARN_WORDS = {
    "warn": "warn", "warns": "warn", "warning": "warn", "warnings": "warn", "denied": "denied",
    "refused": "refused", "reject": "rejected", "rejects": "rejected", "rejected": "rejected",
    "timeout": "timeout", "timeouts": "timeout", "timedout": "timeout", "unreachable": "unreachable",
    "unavailable": "unavailable", "invalid": "invalid", "cannot": "cannot", "can't": "cannot",
    "couldn't": "cannot", "illegal": "illegal", "violation": "violation", "overflow": "overflow",
    "degraded": "degraded", "lost": "lost",
}  # fmt: skip
WARN_PHRASES: dict[tuple[str, ...], str] = {
    ("timed", "out"): "timeout", ("time", "out"): "timeout", ("unable", "to"): "cannot",
    ("could", "not"): "cannot", ("not", "responding"): "unreachable", ("no", "route"): "unreachable",
    ("broken", "pipe"): "broken_pipe", ("reset", "by"): "reset", ("is", "down"): "down",
    ("are", "down"): "down", ("was", "down"): "down", ("went", "down"): "down", ("link", "down"): "down",
    ("interface", "down"): "down",
}  # fmt: skip
PHRASE_HEADS = {p[0] for p in (*ERROR_PHRASES, *WARN_PHRASES)}
VOCAB_KEYS = frozenset(ERROR_WORDS) | frozenset(WARN_WORDS) | PHRASE_HEADS
# Exception and error class names (Java, Python, .NET, Go): ConnectException, OutOfMemoryError.
CLASS_SUFFIXES = ("Exception", "Error")
WORD_RE = re.compile(r"[A-Za-z][\w'-]*")
# Negated mentions ("no errors", "without failure") are not failures. (Counts such as "0 errors"
# cannot be told from "3 errors" once digits are masked; they stay failures.)
NEGATIONS = {"no", "without", "zero"}
# Where digits carry severity. Syslog <PRI> (RFC 5424 section 6.2.1 / RFC 3164 section 4.1.1):
# severity = PRI mod 8. HTTP status 5xx (RFC 9110 section 15.6) in access-log position or as
# status=. Non-zero exit codes (POSIX wait status; systemd "status=N/NAME").
NUMERIC_SHAPE_RE = re.compile(
    r"^<(?P<pri><#>)>"
    r"|(?:\" |HTTP/<#>\"? |(?i:\bstatus(?: code)?[=: ]\s?))(?P<http><#>)"
    r"|(?i:exit(?:ed)?(?: with)?[ _]?(?:code|status)[=: ]\s?)(?P<exit><#>)"
)


def _may_need_digits(masked: str) -> bool:
    """``NUMERIC_SHAPE_RE.search(masked)``, skipped when a necessary literal is absent.

    WHY: the pattern has no literal prefix (case-insensitive words), so the engine tries it at
    every position of every new line shape; substring tests are ~20x cheaper, and most shapes
    have none of the literals. Non-ASCII lines always run the regex (Unicode case folding, e.g.
    the long s, could match ``status`` in ways ``str.lower`` does not show).
    """
    if not (
        '" <#>' in masked
        or "HTTP/<#>" in masked
        or masked.startswith("<<#>>")
        or not masked.isascii()
        or "status" in (low := masked.lower())
        or "exit" in low
    ):
        return False
    return NUMERIC_SHAPE_RE.search(masked) is not None


_LEADING_INT = re.compile(r"-?\d+")
SYSLOG_SEVERITY = {0: FATAL, 1: FATAL, 2: FATAL, 3: ERROR, 4: WARN, 5: INFO, 6: INFO, 7: DEBUG}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the conventions say about one line shape.

    ``level_end``: offset just after the level token (-1 when the line has none), so callers
    can strip the header. ``failures``: canonical failure words found (stems such as ``fail``,
    ``abort``), used to keep failing and succeeding lines of one shape apart.
    ``needs_digits``: the shape has a digit-borne severity (``numeric_severity`` of the raw line).
    """

    severity: int
    level_end: int
    failures: tuple[str, ...]
    needs_digits: bool = False


def classify(masked: str, *, rules: frozenset[str] = RULE_FAMILIES, scan: int = 300) -> Verdict:
    """Severity, level position and failure words of a masked line (see the module docstring)."""
    severity, level_end = -1, -1
    if "named" in rules:
        m = named_level(masked, scan)
        if m:
            word = m.group(m.lastgroup or "level")  # the one named group that took part
            severity, level_end = LEVEL_WORDS.get(word.upper(), INFO), m.end()
    if severity < 0 and "single" in rules:
        m = single_level(masked, scan)
        if m:
            letter = m.group(m.lastgroup or "brief")  # the one named group that took part
            severity, level_end = SINGLE_LETTER[letter], m.end()
    failures: list[str] = []
    if "vocabulary" in rules:
        words = WORD_RE.findall(masked, max(level_end, 0))
        lowered = " ".join(words).lower().split(" ")  # one lower() call, not one per word
        candidates = VOCAB_KEYS.intersection(lowered)
        has_class = "Exception" in masked or "Error" in masked
        for i, w in enumerate(lowered if candidates or has_class else ()):
            if w not in candidates and not (has_class and words[i].endswith(CLASS_SUFFIXES)):
                continue
            grade, stem = 0, None
            if w in ERROR_WORDS:
                grade, stem = ERROR, ERROR_WORDS[w]
            elif w in WARN_WORDS:
                grade, stem = WARN, WARN_WORDS[w]
            elif words[i].endswith(CLASS_SUFFIXES) and len(w) > 6:
                grade, stem = ERROR, "exception" if w.endswith("exception") else "error"
            if w in PHRASE_HEADS:
                for phrase, table, g in ((tuple(lowered[i : i + 2]), ERROR_PHRASES, ERROR),
                                         (tuple(lowered[i : i + 3]), ERROR_PHRASES, ERROR),
                                         (tuple(lowered[i : i + 2]), WARN_PHRASES, WARN)):  # fmt: skip
                    if phrase in table and g > grade:
                        grade, stem = g, table[phrase]
            if stem is None or (i and lowered[i - 1] in NEGATIONS):
                continue
            severity = max(severity, grade)
            if stem not in failures:
                failures.append(stem)
    needs_digits = "numeric" in rules and "<#>" in masked and _may_need_digits(masked)
    return Verdict(max(severity, 0), level_end, tuple(failures), needs_digits)


def digit_slot(masked: str) -> tuple[int, int, str] | None:
    """Where a shape's digits carry severity: (whitespace-token index, offset in the token, kind).

    WHY a slot: masking never changes whitespace, so every raw line of the shape has the number
    at the same token and offset; reading one token is far cheaper than a regex over each line.
    """
    m = NUMERIC_SHAPE_RE.search(masked)
    if m is None:
        return None
    kind = m.lastgroup or "exit"
    at = m.start(kind)
    token = len(masked[: at + 1].split()) - 1
    start = at
    while start and not masked[start - 1].isspace():
        start -= 1
    return token, at - start, kind


def digit_severity(kind: str, number: str) -> int:
    """Severity a number carries in a ``digit_slot`` (syslog PRI, HTTP status, exit code), or -1."""
    m = _LEADING_INT.match(number)
    if m is None:
        return -1
    value = int(m.group(0))
    if kind == "pri":
        # RFC 5424: PRI = facility * 8 + severity, facility <= 23
        return SYSLOG_SEVERITY[value % 8] if 0 <= value <= 191 else -1
    if kind == "http":
        # RFC 9110 section 15.6: 5xx = server error; anything else here is not a failure.
        return ERROR if 500 <= value <= 599 else INFO
    return ERROR if value != 0 else INFO  # POSIX: exit status 0 is success
