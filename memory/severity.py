"""Severity and failure detection from general logging conventions (not from any one data set).

WHY one module: whether a line is routine or a failure decides what survives compression, so
the rules must hold on logs the project has never seen. Each rule below comes from a published
convention (cited next to it), not from the files the benchmark happens to hold. The rules run
on a *masked* line (digits replaced by ``<#>``, see ``memory.compressor.MASK``) once per line
shape; the few rules that need the digits themselves (syslog ``<PRI>``, HTTP status, exit codes)
say so through ``needs_digits`` and ``numeric_severity`` reads them from the raw line.

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
# Single-letter levels:
# - glog / klog (Kubernetes): Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg, L in I W E F;
# - Android logcat "brief": L/Tag(pid): msg; "threadtime": date time pid tid L Tag: msg,
#   L in V D I W E F A (A = assert).
SINGLE_LETTER = {"V": DEBUG, "D": DEBUG, "I": INFO, "W": WARN, "E": ERROR, "F": FATAL, "A": FATAL}
SINGLE_RE = re.compile(
    rf"^(?P<glog>[IWEF]){_N} {_N}"
    r"|(?:^|\s)(?P<brief>[VDIWEFA])/[A-Za-z][\w.$-]*\s*[(:]"
    rf"|^(?:\S*(?:<#>|\d)\S*\s+){{2,6}}(?P<thread>[VDIWEFA])\s+(?=\S)"
)
# Failure vocabulary, case-insensitive at a word start. Error-grade words: what POSIX/Linux and
# runtimes print when something broke (strerror texts, kernel oops/OOM killer, language runtime
# crashes). Warning-grade words: refusals and degradations that often precede a failure.
_ERROR_WORDS = (
    r"fail(?:s|ed|ing|ure|ures)?|abort(?:s|ed|ing)?|panic(?:ked|s)?|crash(?:ed|es|ing)?|segfault"
    r"|segmentation fault|core dumped|corrupt(?:ed|ion)?|killed|kill process|oom|out of memory"
    r"|exception|traceback|fatal|errors?|errno|critical|severe|call trace|soft lockup|hard lockup"
    r"|blocked for more than|bug:|stack trace"
)
_WARN_WORDS = (
    r"warn(?:s|ing|ings)?|denied|refused|reject(?:s|ed)?|timed? ?out|timeouts?|unreachable|unavailable"
    r"|invalid|unable to|cannot|can't|could not|couldn't|not responding|no route to host|broken pipe"
    r"|reset by peer|illegal|violation|overflow|degraded|lost|(?:is|are|was|went|link|interface) down"
)
VOCAB_RE = re.compile(rf"(?i)(?<![\w-])(?:(?P<e>{_ERROR_WORDS})|(?P<w>{_WARN_WORDS}))(?![\w-])")
# Negated mentions ("no errors", "without failure") are not failures. (Counts such as "0 errors"
# cannot be told from "3 errors" once digits are masked; they stay failures.)
NEGATED_RE = re.compile(r"(?i)\b(?:no|without|zero)\s+$")
# Where digits carry severity. Syslog <PRI> (RFC 5424 section 6.2.1 / RFC 3164 section 4.1.1):
# severity = PRI mod 8. HTTP status 5xx (RFC 9110 section 15.6) in access-log position or as
# status=. Non-zero exit codes (POSIX wait status; systemd "status=N/NAME").
NUMERIC_SHAPE_RE = re.compile(
    r"^<<#>>|\" <#> |HTTP/<#>\"? <#>\b|(?i:\bstatus(?: code)?[=: ]\s?<#>|exit(?:ed)?(?: with)?[ _]?(?:code|status)[=: ]\s?<#>)"
)
NUMERIC_RE = re.compile(
    r"^<(?P<pri>\d{1,3})>"
    r"|(?:\" |HTTP/\d(?:\.\d)?\"? |(?i:\bstatus(?: code)?[=: ]\s?))(?P<http>[1-5]\d\d)\b"
    r"|(?i:exit(?:ed)?(?: with)?[ _]?(?:code|status)[=: ]\s?)(?P<exit>-?\d+)"
)
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


def _stem(word: str) -> str:
    w = word.lower()
    for stem in ("fail", "abort", "panic", "crash", "corrupt", "warn", "reject", "error", "timeout"):
        if w.startswith(stem):
            return stem
    if w.startswith("time"):
        return "timeout"
    if w.endswith(" down"):
        return "down"
    return w.replace(" ", "_").replace("'", "").rstrip(":")


def classify(masked: str, *, rules: frozenset[str] = RULE_FAMILIES, scan: int = 300) -> Verdict:
    """Severity, level position and failure words of a masked line (see the module docstring)."""
    severity, level_end = -1, -1
    if "named" in rules:
        m = NAMED_RE.search(masked, 0, scan)
        if m:
            word = m.group("level") or m.group("blevel") or m.group("kvlevel")
            severity, level_end = LEVEL_WORDS.get(word.upper(), INFO), m.end()
    if severity < 0 and "single" in rules:
        m = SINGLE_RE.search(masked, 0, scan)
        if m:
            letter = m.group("glog") or m.group("brief") or m.group("thread")
            severity, level_end = SINGLE_LETTER[letter], m.end()
    failures: list[str] = []
    if "vocabulary" in rules:
        for m in VOCAB_RE.finditer(masked, max(level_end, 0)):
            if NEGATED_RE.search(masked, max(0, m.start() - 9), m.start()):
                continue
            severity = max(severity, ERROR if m.group("e") else WARN)
            stem = _stem(m.group(0))
            if stem not in failures:
                failures.append(stem)
    needs_digits = "numeric" in rules and NUMERIC_SHAPE_RE.search(masked) is not None
    return Verdict(max(severity, 0), level_end, tuple(failures), needs_digits)


def numeric_severity(raw: str) -> int:
    """Severity carried by digits in a raw line (syslog PRI, HTTP 5xx, non-zero exit), or -1."""
    best = -1
    for m in NUMERIC_RE.finditer(raw):
        if m.group("pri"):
            pri = int(m.group("pri"))
            if pri <= 191:  # RFC 5424: PRI = facility * 8 + severity, facility <= 23
                best = max(best, SYSLOG_SEVERITY[pri % 8])
        elif m.group("http"):
            code = int(m.group("http"))
            best = max(best, ERROR if code >= 500 else INFO)
        elif m.group("exit"):
            best = max(best, ERROR if int(m.group("exit")) != 0 else INFO)
    return best
