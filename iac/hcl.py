"""Just enough HCL to edit Terraform text in place: a lexer, a body scanner with character spans,
an expression parser with spans, a small evaluator (variables, locals, merge, ...) and a safe
value renderer.

python-hcl2 reads values well but forgets where they were written; a minimal patch needs spans
(to replace one literal, one map key or one block and keep every comment and blank line). So the
structure is scanned here, and python-hcl2 validates every file before and after a patch
(``iac.config.validate_hcl``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
NUMBER_RE = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?")
OPS = ("==", "!=", "<=", ">=", "&&", "||", "=>", "...", "?", ":", "+", "-", "*", "/", "%", "<", ">", "!")


class HCLSyntaxError(ValueError):
    """A syntax error; ``offset`` (when known) is the character offset in the parsed text."""

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass
class Token:
    kind: str  # ident number string heredoc punct nl comment
    text: str
    start: int
    end: int


def _scan_string(text: str, i: int) -> int:
    """Index just past the closing quote of the string starting at text[i] == '"'."""
    opened = i
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if c in "$%" and text.startswith("{", i + 1) and not (i > 0 and text[i - 1] == c):
            i = _scan_interp(text, i + 2)
            continue
        if c == "\n":
            raise HCLSyntaxError(f"newline in string at {i}", offset=i)
        i += 1
    raise HCLSyntaxError("unterminated string", offset=opened)


def _scan_interp(text: str, i: int) -> int:
    depth = 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _scan_string(text, i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise HCLSyntaxError("unterminated interpolation")


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    end = len(text) if end is None else end
    toks: list[Token] = []
    i = start
    while i < end:
        c = text[i]
        if c == "\n":
            toks.append(Token("nl", "\n", i, i + 1))
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            j = end if j < 0 or j > end else j
            toks.append(Token("comment", text[i:j], i, j))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise HCLSyntaxError("unterminated comment", offset=i)
            toks.append(Token("comment", text[i : j + 2], i, j + 2))
            i = j + 2
        elif c == '"':
            j = _scan_string(text, i)
            toks.append(Token("string", text[i:j], i, j))
            i = j
        elif text.startswith("<<", i) and re.match(r"<<-?[A-Za-z_]", text[i : i + 4]):
            m = re.match(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)[ \t]*\r?\n", text[i:])
            if not m:
                raise HCLSyntaxError("bad heredoc", offset=i)
            marker = m.group(2)
            body_start = i + m.end()
            close = re.compile(r"^[ \t]*" + re.escape(marker) + r"[ \t]*$", re.M)
            mm = close.search(text, body_start)
            if not mm:
                raise HCLSyntaxError("unterminated heredoc", offset=i)
            toks.append(Token("heredoc", text[i : mm.end()], i, mm.end()))
            i = mm.end()
        elif c.isdigit():
            m = NUMBER_RE.match(text, i)
            if m is None:  # a non-ASCII digit (str.isdigit) that \d does not take
                raise HCLSyntaxError(f"unexpected character {c!r} at offset {i}", offset=i)
            toks.append(Token("number", m.group(0), i, m.end()))
            i = m.end()
        elif c.isalpha() or c == "_":
            m = IDENT_RE.match(text, i)
            if m is None:  # a non-ASCII letter (str.isalpha) that IDENT_RE does not take
                raise HCLSyntaxError(f"unexpected character {c!r} at offset {i}", offset=i)
            toks.append(Token("ident", m.group(0), i, m.end()))
            i = m.end()
        else:
            for op in OPS:
                if text.startswith(op, i):
                    toks.append(Token("punct", op, i, i + len(op)))
                    i += len(op)
                    break
            else:
                toks.append(Token("punct", c, i, i + 1))
                i += 1
    return toks


# --------------------------------------------------------------------------- structure


@dataclass
class Attribute:
    name: str
    start: int  # line start of the attribute (for removal)
    name_start: int
    expr_start: int
    expr_end: int
    line_end: int  # index just past the trailing newline (for removal)


@dataclass
class Block:
    type: str
    labels: list[str]
    start: int  # beginning of the header line
    open_brace: int
    close_brace: int
    end: int  # just past the closing brace's line
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def nested(self, block_type: str) -> list[Block]:
        return [b for b in self.blocks if b.type == block_type]


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    j = text.find("\n", pos)
    return len(text) if j < 0 else j + 1


def parse_body(text: str, start: int = 0, end: int | None = None) -> Block:
    """Scan a body (a file or the inside of a block) into attributes and blocks with spans."""
    toks = [t for t in tokenize(text, start, end) if t.kind != "comment"]
    root = Block("", [], start, start - 1, len(text) if end is None else end, len(text) if end is None else end)
    _parse_items(text, toks, 0, root)
    return root


def _parse_items(text: str, toks: list[Token], i: int, block: Block) -> int:
    n = len(toks)
    while i < n:
        t = toks[i]
        if t.kind == "nl":
            i += 1
            continue
        if t.kind == "punct" and t.text == "}":
            return i
        if t.kind != "ident":
            raise HCLSyntaxError(f"unexpected {t.text!r} at {t.start}", offset=t.start)
        j = i + 1
        if j < n and toks[j].kind == "punct" and toks[j].text in ("=", ":"):
            k = j + 1
            depth = 0
            while k < n:
                tk = toks[k]
                if tk.kind == "punct" and tk.text in "([{":
                    depth += 1
                elif tk.kind == "punct" and tk.text in ")]}":
                    if depth == 0:
                        break
                    depth -= 1
                elif tk.kind == "nl" and depth == 0:
                    break
                k += 1
            expr_toks = [x for x in toks[j + 1 : k] if x.kind != "nl"]
            if not expr_toks:
                raise HCLSyntaxError(f"attribute {t.text} without value", offset=t.start)
            block.attributes[t.text] = Attribute(
                name=t.text, start=_line_start(text, t.start), name_start=t.start,
                expr_start=expr_toks[0].start, expr_end=expr_toks[-1].end,
                line_end=_line_end(text, expr_toks[-1].end),
            )
            i = k
            continue
        labels = []
        while j < n and toks[j].kind in ("string", "ident"):
            labels.append(toks[j].text.strip('"'))
            j += 1
        if j >= n or toks[j].text != "{":
            raise HCLSyntaxError(f"expected block body after {t.text} at {t.start}", offset=t.start)
        child = Block(t.text, labels, _line_start(text, t.start), toks[j].start, -1, -1)
        k = _parse_items(text, toks, j + 1, child)
        if k >= n:
            raise HCLSyntaxError(f"unclosed block {t.text}", offset=t.start)
        child.close_brace = toks[k].start
        child.end = _line_end(text, toks[k].end)
        block.blocks.append(child)
        i = k + 1
    return i


# --------------------------------------------------------------------------- expressions


class _Unknown:
    """A value only known after apply (a resource attribute, a data source, a function we skip)."""

    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass
class Node:
    kind: str  # lit tmpl list obj ref call unknown
    start: int
    end: int
    value: Any = None  # lit: python value; ref: list of parts; call: name; tmpl: parts
    items: list[Any] = field(default_factory=list)  # list: nodes; obj: (key, key_node, val_node); call: args


class _ExprParser:
    def __init__(self, text: str, toks: list[Token]):
        self.text = text
        self.toks = [t for t in toks if t.kind != "comment"]
        self.i = 0

    def peek(self, skip_nl: bool = True) -> Token | None:
        j = self.i
        while j < len(self.toks) and skip_nl and self.toks[j].kind == "nl":
            j += 1
        return self.toks[j] if j < len(self.toks) else None

    def next(self, skip_nl: bool = True) -> Token:
        while skip_nl and self.i < len(self.toks) and self.toks[self.i].kind == "nl":
            self.i += 1
        if self.i >= len(self.toks):
            raise HCLSyntaxError("unexpected end of expression")
        t = self.toks[self.i]
        self.i += 1
        return t

    def skip_balanced(self, open_tok: Token) -> int:
        pairs = {"(": ")", "[": "]", "{": "}"}
        depth = 1
        while True:
            t = self.next()
            if t.kind == "punct" and t.text in pairs:
                depth += 1
            elif t.kind == "punct" and t.text in ")]}":
                depth -= 1
                if depth == 0:
                    return t.end

    def expr(self) -> Node:
        node = self.postfix(self.primary())
        t = self.peek(skip_nl=False)
        if t is not None and t.kind == "punct" and t.text in OPS and t.text not in (":", "=>", "..."):
            # Operators and conditionals: the value is not ours to follow.
            end = node.end
            depth = 0
            while self.i < len(self.toks):
                t = self.toks[self.i]
                if t.kind == "punct" and t.text in "([{":
                    depth += 1
                elif t.kind == "punct" and t.text in ")]}":
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and (t.kind == "nl" or (t.kind == "punct" and t.text == ",")):
                    break
                end = t.end
                self.i += 1
            return Node("unknown", node.start, end, self.text[node.start : end])
        return node

    def postfix(self, node: Node) -> Node:
        while True:
            t = self.peek(skip_nl=False)
            if t is None or t.kind != "punct":
                return node
            if t.text == "." and node.kind in ("ref", "call", "unknown", "list", "obj"):
                self.next(skip_nl=False)
                nt = self.next(skip_nl=False)
                part = nt.text
                if node.kind == "ref":
                    node = Node("ref", node.start, nt.end, node.value + [part])
                else:
                    node = Node("unknown", node.start, nt.end, self.text[node.start : nt.end])
            elif t.text == "[" and node.kind in ("ref", "call", "unknown", "list", "obj"):
                self.next(skip_nl=False)
                inner = self.peek()
                if inner is not None and inner.text == "*":
                    self.next()
                    close = self.next()
                    node = Node("unknown", node.start, close.end, self.text[node.start : close.end])
                    continue
                idx = self.expr()
                close = self.next()
                if node.kind == "ref" and idx.kind == "lit":
                    node = Node("ref", node.start, close.end, node.value + [idx.value])
                else:
                    node = Node("unknown", node.start, close.end, self.text[node.start : close.end])
            else:
                return node

    def primary(self) -> Node:
        t = self.next()
        if t.kind == "string":
            return _template_node(self.text, t)
        if t.kind == "heredoc":
            return _heredoc_node(self.text, t)
        if t.kind == "number":
            v = float(t.text) if any(c in t.text for c in ".eE") else int(t.text)
            return Node("lit", t.start, t.end, v)
        if t.kind == "punct" and t.text in ("-", "!"):
            inner = self.primary()
            if t.text == "-" and inner.kind == "lit" and isinstance(inner.value, int | float):
                return Node("lit", t.start, inner.end, -inner.value)
            return Node("unknown", t.start, inner.end, self.text[t.start : inner.end])
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return Node("lit", t.start, t.end, t.text == "true")
            if t.text == "null":
                return Node("lit", t.start, t.end, None)
            nt = self.peek(skip_nl=False)
            if nt is not None and nt.text == "(":
                self.next(skip_nl=False)
                args: list[Node] = []
                while True:
                    p = self.peek()
                    if p is not None and p.text == ")":
                        end = self.next().end
                        break
                    args.append(self.expr())
                    p = self.next()
                    if p.text == "...":
                        p = self.next()
                    if p.text == ")":
                        end = p.end
                        break
                    if p.text != ",":
                        raise HCLSyntaxError(f"expected , in call at {p.start}", offset=p.start)
                return Node("call", t.start, end, t.text, args)
            return Node("ref", t.start, t.end, [t.text])
        if t.kind == "punct" and t.text == "(":
            inner = self.expr()
            close = self.next()
            return Node("unknown", t.start, close.end, self.text[t.start : close.end]) if inner.kind != "lit" else Node("lit", t.start, close.end, inner.value)
        if t.kind == "punct" and t.text == "[":
            p = self.peek()
            if p is not None and p.kind == "ident" and p.text == "for":
                end = self.skip_balanced(t)
                return Node("unknown", t.start, end, self.text[t.start : end])
            items: list[Node] = []
            while True:
                p = self.peek()
                if p is not None and p.text == "]":
                    end = self.next().end
                    break
                items.append(self.expr())
                p = self.next()
                if p.text == "]":
                    end = p.end
                    break
                if p.text != ",":
                    raise HCLSyntaxError(f"expected , in list at {p.start}", offset=p.start)
            return Node("list", t.start, end, None, items)
        if t.kind == "punct" and t.text == "{":
            p = self.peek()
            if p is not None and p.kind == "ident" and p.text == "for":
                end = self.skip_balanced(t)
                return Node("unknown", t.start, end, self.text[t.start : end])
            entries: list[tuple[Any, Node, Node]] = []
            while True:
                p = self.peek()
                if p is None:
                    raise HCLSyntaxError("unterminated object")
                if p.text == "}":
                    end = self.next().end
                    break
                if p.text == ",":
                    self.next()
                    continue
                knode = self.expr()
                if knode.kind == "ref" and len(knode.value) == 1:
                    key: Any = knode.value[0]
                elif knode.kind in ("lit", "tmpl") and isinstance(knode.value, str):
                    key = knode.value
                elif knode.kind == "tmpl":
                    key = UNKNOWN
                else:
                    key = UNKNOWN
                sep = self.next()
                if sep.text not in ("=", ":"):
                    raise HCLSyntaxError(f"expected = in object at {sep.start}", offset=sep.start)
                vnode = self.expr()
                entries.append((key, knode, vnode))
            return Node("obj", t.start, end, None, entries)
        raise HCLSyntaxError(f"unexpected token {t.text!r} at {t.start}", offset=t.start)


def _unescape(s: str) -> str:
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            mapping = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
            if nxt in mapping:
                out.append(mapping[nxt])
                i += 2
                continue
            if nxt == "u" and i + 5 < len(s):
                out.append(chr(int(s[i + 2 : i + 6], 16)))
                i += 6
                continue
        if c in "$%" and s.startswith(c + c + "{", i):
            out.append(c + "{")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _template_node(text: str, t: Token) -> Node:
    inner = t.text[1:-1]
    base = t.start + 1
    parts: list[Any] = []
    i = 0
    lit_start = 0
    while i < len(inner):
        c = inner[i]
        if c == "\\":
            i += 2
            continue
        if c in "$%" and inner.startswith("{", i + 1):
            if i + 2 < len(inner) + 1 and i > 0 and inner[i - 1] == c:
                i += 1
                continue
            if inner.startswith(c + c + "{", i):
                i += 3
                continue
            parts.append(_unescape(inner[lit_start:i]))
            j = _scan_interp(inner, i + 2)
            if c == "%":
                parts.append(Node("unknown", base + i, base + j, inner[i:j]))
            else:
                sub = inner[i + 2 : j - 1].strip().lstrip("~").rstrip("~").strip()
                try:
                    toks = tokenize(sub)
                    node = _ExprParser(sub, toks).expr()
                except HCLSyntaxError:
                    node = Node("unknown", 0, len(sub), sub)
                parts.append(node)
            i = j
            lit_start = j
            continue
        i += 1
    parts.append(_unescape(inner[lit_start:]))
    if all(isinstance(p, str) for p in parts):
        return Node("lit", t.start, t.end, "".join(parts))
    return Node("tmpl", t.start, t.end, parts)


def _heredoc_node(text: str, t: Token) -> Node:
    m = re.match(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)[ \t]*\r?\n", t.text)
    if m is None:  # tokenize only makes heredoc tokens that match this
        raise HCLSyntaxError("bad heredoc")
    body = t.text[m.end() :]
    body = body[: body.rstrip().rfind("\n") + 1] if "\n" in body.rstrip() else ""
    if m.group(1):
        lines = body.splitlines(keepends=True)
        indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
        body = "".join(x[indent:] for x in lines)
    if "${" in body or "%{" in body:
        return Node("unknown", t.start, t.end, t.text)
    return Node("lit", t.start, t.end, body)


def parse_expr(text: str, start: int, end: int) -> Node:
    """Parse the expression text[start:end] (spans stay offsets into ``text``)."""
    try:
        toks = tokenize(text, start, end)
        parser = _ExprParser(text, toks)
        return parser.expr()
    except HCLSyntaxError as exc:
        if exc.offset is not None:
            raise
        # errors found without a position (an unterminated object, the end of the expression) point at the
        # expression, so the caller can still name file:line:column
        at = end if "end of expression" in str(exc) else start
        raise HCLSyntaxError(str(exc), offset=at) from None


# --------------------------------------------------------------------------- evaluation


def _is_known(v: Any) -> bool:
    if v is UNKNOWN:
        return False
    if isinstance(v, list):
        return all(_is_known(x) for x in v)
    if isinstance(v, dict):
        return all(_is_known(x) for x in v.values())
    return True


def _to_str(v: Any) -> Any:
    if v is UNKNOWN:
        return UNKNOWN
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _jsonencode(v: Any) -> Any:
    if not _is_known(v):
        return UNKNOWN
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


FUNCTIONS = {
    "tostring": lambda a: _to_str(a[0]),
    "tonumber": lambda a: UNKNOWN if a[0] is UNKNOWN else (float(a[0]) if "." in str(a[0]) else int(a[0])),
    "tobool": lambda a: a[0] if isinstance(a[0], bool) else (UNKNOWN if a[0] is UNKNOWN else str(a[0]) == "true"),
    "lower": lambda a: a[0].lower() if isinstance(a[0], str) else UNKNOWN,
    "upper": lambda a: a[0].upper() if isinstance(a[0], str) else UNKNOWN,
    "jsonencode": lambda a: _jsonencode(a[0]),
    "tolist": lambda a: a[0],
    "toset": lambda a: a[0],
    "tomap": lambda a: a[0],
}


def _merge(args: list[Any]) -> Any:
    out: dict[str, Any] = {}
    for a in args:
        if a is None:
            continue
        if not isinstance(a, dict):
            return UNKNOWN
        out.update(a)
    return out


def _concat(args: list[Any]) -> Any:
    out: list[Any] = []
    for a in args:
        if not isinstance(a, list):
            return UNKNOWN
        out.extend(a)
    return out


def _lookup(args: list[Any]) -> Any:
    if len(args) < 2 or not isinstance(args[0], dict) or not isinstance(args[1], str):
        return UNKNOWN
    if args[1] in args[0]:
        return args[0][args[1]]
    return args[2] if len(args) > 2 else UNKNOWN


def _coalesce(args: list[Any]) -> Any:
    for a in args:
        if a is UNKNOWN:
            return UNKNOWN
        if a not in (None, ""):
            return a
    return None


def _try(args: list[Any]) -> Any:
    for a in args:
        if a is not UNKNOWN:
            return a
    return UNKNOWN


FUNCTIONS.update({"merge": _merge, "concat": _concat, "lookup": _lookup, "coalesce": _coalesce, "try": _try})


class Scope:
    """Resolves ``var.*`` and ``local.*`` for one module instance; everything else is UNKNOWN."""

    def __init__(self, variables: dict[str, Any], locals_: dict[str, tuple[str, Node]], resolver: Any = None):
        self.variables = variables
        self.resolver = resolver  # parts -> value for resource references (from the state)
        self.locals = locals_
        self._cache: dict[str, Any] = {}
        self._busy: set[str] = set()

    def local(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        if name not in self.locals or name in self._busy:
            return UNKNOWN
        self._busy.add(name)
        text, node = self.locals[name]
        value = evaluate(node, self)
        self._busy.discard(name)
        self._cache[name] = value
        return value


def _traverse(value: Any, parts: list[Any]) -> Any:
    for p in parts:
        if isinstance(value, dict) and isinstance(p, str):
            value = value.get(p, UNKNOWN)
        elif isinstance(value, list) and isinstance(p, int) and 0 <= p < len(value):
            value = value[p]
        else:
            return UNKNOWN
    return value


def evaluate(node: Node | None, scope: Scope) -> Any:
    if node is None:
        return None
    if node.kind == "lit":
        return node.value
    if node.kind == "tmpl":
        out = []
        for part in node.value:
            if isinstance(part, str):
                out.append(part)
                continue
            v = _to_str(evaluate(part, scope))
            if v is UNKNOWN:
                return UNKNOWN
            out.append(v)
        return "".join(out)
    if node.kind == "list":
        return [evaluate(x, scope) for x in node.items]
    if node.kind == "obj":
        out_d: dict[str, Any] = {}
        for key, _k, v in node.items:
            if key is UNKNOWN:
                return UNKNOWN
            out_d[str(key)] = evaluate(v, scope)
        return out_d
    if node.kind == "ref":
        head, rest = node.value[0], node.value[1:]
        if head == "var" and rest:
            return _traverse(scope.variables.get(rest[0], UNKNOWN), rest[1:])
        if head == "local" and rest:
            return _traverse(scope.local(rest[0]), rest[1:])
        if scope.resolver is not None and head not in ("data", "module", "path", "count", "each", "self"):
            return scope.resolver(node.value)
        return UNKNOWN
    if node.kind == "call":
        fn = FUNCTIONS.get(node.value)
        if fn is None:
            return UNKNOWN
        args = [evaluate(a, scope) for a in node.items]
        try:
            return fn(args)
        except (TypeError, ValueError, IndexError):
            return UNKNOWN
    return UNKNOWN


# --------------------------------------------------------------------------- rendering


def quote(value: str) -> str:
    """An HCL string literal for arbitrary text: quotes, backslashes, control characters and
    template sequences (``${``/``%{``) are escaped so trace data can never inject HCL."""
    out = ['"']
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c in "$%" and value.startswith("{", i + 1):
            out.append(c + c)
        elif ord(c) < 0x20 or c in "\u2028\u2029":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
        i += 1
    out.append('"')
    return "".join(out)


def render_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", key) else quote(key)


def render(value: Any, indent: str = "") -> str:
    """Python value -> HCL expression text (multi-line objects indented under ``indent``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(v, indent) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + "  "
        lines = [f"{inner}{render_key(str(k))} = {render(v, inner)}" for k, v in value.items()]
        return "{\n" + "\n".join(lines) + "\n" + indent + "}"
    raise TypeError(f"cannot render {type(value).__name__}")


def indent_of(text: str, pos: int) -> str:
    ls = _line_start(text, pos)
    m = re.match(r"[ \t]*", text[ls:])
    return m.group(0) if m else ""


def located(error: HCLSyntaxError, *, path: str, text: str) -> HCLSyntaxError:
    """The same error, its message prefixed ``path:line:column:`` (or ``path:`` when the offset is unknown).

    Why: an operator with twenty .tf files needs the file and line, not a character offset.
    """
    if error.offset is None:
        return HCLSyntaxError(f"{path}: {error}")
    line = text.count("\n", 0, error.offset) + 1
    column = error.offset - (text.rfind("\n", 0, error.offset) + 1) + 1
    return HCLSyntaxError(f"{path}:{line}:{column}: {error}", offset=error.offset)
