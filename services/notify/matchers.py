"""Alertmanager-style label matchers, for notification routes and silences.

Same syntax and meaning as Alertmanager's: ``name="value"``, ``name!="value"``, ``name=~"regex"``,
``name!~"regex"`` (quotes optional); a regex must match the whole value; a label that is absent
counts as the empty string, so ``team!=""`` means "has a team". Plain Python, no imports of ours:
the settings validate routes with it at start, so a typo stops the process instead of muting pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"]*?))\s*$')
OPERATORS = ("=", "!=", "=~", "!~")


class MatcherError(ValueError):
    """A matcher that cannot be parsed; the text says which and why."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str | None]) -> bool:
        actual = labels.get(self.name) or ""
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(text: str) -> Matcher:
    """One matcher from its text; `MatcherError` names what is wrong."""
    if not isinstance(text, str):
        raise MatcherError(f"a matcher is a string like 'service=\"api\"', got {type(text).__name__}")
    found = _MATCHER.match(text)
    if not found:
        raise MatcherError(f"{text[:80]!r} is not a matcher: write name=\"value\", name!=\"value\", "
                           "name=~\"regex\" or name!~\"regex\"")
    name, op, quoted, bare = found.groups()
    value = quoted.replace('\\"', '"') if quoted is not None else bare
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise MatcherError(f"{text[:80]!r}: bad regular expression ({exc})") from None
    return Matcher(name, op, value)


def parse_matchers(texts: Iterable[str]) -> list[Matcher]:
    return [parse_matcher(t) for t in texts]


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str | None]) -> bool:
    """True when every matcher matches (an empty list matches everything, like a catch-all route)."""
    return all(m.matches(labels) for m in matchers)
