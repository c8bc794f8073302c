"""Parsing untrusted JSON with limits, so a hostile body is a 4xx naming the problem, never a 500.

Python's ``json`` accepts NaN/Infinity, numbers of any length (and then fails converting a
5,000-digit one) and nesting until the interpreter's recursion limit; PostgreSQL refuses NUL
characters in text and a lone surrogate cannot be encoded at all. Each of these is refused
here with the JSON path where it was found.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
MAX_INT = 2**63 - 1
MAX_NUMBER_CHARS = 40


class JsonRejected(ValueError):
    """The body is JSON we will not take; ``status`` is 400 (not JSON) or 422 (JSON outside the limits)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number; send finite numbers only")


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonRejected(f"number with {len(text)} digits is too large (at most 64-bit integers)")
    value = int(text)
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise JsonRejected(f"integer {text} is outside the 64-bit range")
    return value


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonRejected(f"number {text[:20]}... has {len(text)} characters; too long")
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected(f"number {text} overflows a double")
    return value


def parse_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``body`` as UTF-8 JSON within the limits, then check depth and NUL characters."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRejected(f"body is not valid JSON: not UTF-8 ({exc.reason} at byte {exc.start})", status=400) from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except JsonRejected:
        raise
    except RecursionError:
        raise JsonRejected(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError included
        raise JsonRejected(f"body is not valid JSON: {exc}", status=400) from None
    check_tree(value, max_depth=max_depth)
    return value


def text_problem(value: str, where: str) -> None:
    """Refuse what no database column can hold: NUL, and lone surrogates (not encodable as UTF-8)."""
    if "\x00" in value:
        raise JsonRejected(f"{where}: NUL character in a string")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonRejected(f"{where}: lone UTF-16 surrogate in a string (\\ud800-\\udfff)") from None


def check_tree(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Depth and NUL check without recursion (the tree may be as deep as the decoder allowed)."""
    stack: list[tuple[Any, str, int]] = [(value, "body", 1)]  # depth = how many arrays/objects enclose or are it
    while stack:
        node, where, depth = stack.pop()
        if depth > max_depth and isinstance(node, (dict, list)):
            raise JsonRejected(f"{where}: JSON nested deeper than {max_depth} levels")
        if isinstance(node, str):
            text_problem(node, where)
        elif isinstance(node, dict):
            for key, item in node.items():
                text_problem(key, f"{where} (a key)")
                stack.append((item, f"{where}.{key}", depth + 1))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(node))
