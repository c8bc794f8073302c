"""Minimal, layout-preserving HCL edits that make the configuration say what the cloud now says.

The rule that shapes everything here: follow the expression. An attribute written as a literal is
edited in place; ``var.x`` edits the tfvars entry or the variable's default (or the module call
that passes it); ``local.x`` edits the local; a map built with ``merge(...)`` edits the argument
that owns the key. An attribute computed from anything else (a resource reference, a data source,
a conditional) is never overwritten with a hard-coded value: it is reported for a person.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iac.config import Config, ModuleConfig, validate_hcl
from iac.drift import DriftGroup, canonical, find_attachment, rule_tuples, separate_rules
from iac.hcl import UNKNOWN, Block, Node, evaluate, indent_of, render, render_key
from iac.models import Change, Intent
from iac.state import State, StateResource


class NeedsPerson(Exception):
    """The change is real but cannot be written without guessing (reported, never forced)."""


def _address(it: Intent) -> str:
    """The Terraform address of a bound intent (drift binding sets it on every intent it patches)."""
    if it.address is None:
        raise ValueError(f"{it.kind} intent for {it.resource_id!r} is not bound to a Terraform address")
    return it.address


@dataclass(frozen=True)
class Raw:
    """An HCL expression emitted verbatim (a reference we built, never trace data)."""

    text: str


@dataclass
class PatchOptions:
    """Strategy choices; alternatives of a proposal are the same drift patched with other choices."""

    unset_var_target: str = "default"  # root variable not in tfvars: "default" | "tfvars"
    module_var_target: str = "call"  # child-module variable not passed: "call" | "default"
    merge_target: str = "last"  # new map key in merge(...): "last" | "first" followable argument
    sg_style: str = "auto"  # "auto" | "inline" | "separate"
    # a local/variable read by more than one expression, of which one drifted: "use_site" overrides the drifted
    # use only; "source" edits the shared definition (moves every other use: an alternative, never the default)
    shared_target: str = "use_site"


def render_any(value: Any, indent: str = "") -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict) and any(isinstance(v, Raw) for v in value.values()):
        inner = indent + "  "
        lines = [f"{inner}{render_key(str(k))} = {render_any(v, inner)}" for k, v in value.items()]
        return "{\n" + "\n".join(lines) + "\n" + indent + "}"
    return render(value, indent)


def render_policy(value: Any, indent: str) -> str:
    if isinstance(value, dict | list):
        return "jsonencode(" + render(value, indent) + ")"
    return render(value, indent)


# String arguments that hold JSON documents (AWS provider docs): an object written there must be jsonencode()d.
JSON_STRING_ARGS = {"container_definitions", "dashboard_body", "definition", "access_policies", "event_pattern",
                    "redrive_policy", "delivery_policy", "input", "document", "content"}


# Split S3 resources (provider v4+) -> their inline aws_s3_bucket form (v3), with the value conversion.
INLINE_FORMS: dict[tuple[str, str], tuple[str, Any]] = {
    ("aws_s3_bucket_versioning", "versioning_configuration.status"): ("versioning.enabled", lambda v: v == "Enabled"),
    ("aws_s3_bucket_server_side_encryption_configuration", "rule.apply_server_side_encryption_by_default.sse_algorithm"):
        ("server_side_encryption_configuration.rule.apply_server_side_encryption_by_default.sse_algorithm", lambda v: v),
    ("aws_s3_bucket_policy", "policy"): ("policy", lambda v: v),
}


def is_literal(node: Node) -> bool:
    if node.kind == "lit":
        return True
    if node.kind == "list":
        return all(is_literal(x) for x in node.items)
    if node.kind == "obj":
        return all(k is not UNKNOWN and is_literal(v) for k, _kn, v in node.items)
    if node.kind == "call" and node.value in ("jsonencode", "tostring", "tonumber", "tolist", "toset", "tomap"):
        return all(is_literal(a) for a in node.items)
    return False


def sanitize_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_").lower() or "imported"
    return name if name[0].isalpha() or name[0] == "_" else "r_" + name


class Patcher:
    """Applies one drift group to a Config (in memory) and records why each edit was made."""

    def __init__(self, config: Config, state: State, *, options: PatchOptions | None = None):
        self.config = config
        self.state = state
        self.options = options or PatchOptions()
        self.changes: list[Change] = []
        self.instructions: list[str] = []
        self.needs_person: list[str] = []
        self._intent: Intent | None = None
        self._inside_structure = 0
        # (module path, file, block, for_each key) of the resource instance being patched
        self._instance: tuple[str, Path, Block, str | None] | None = None

    # ------------------------------------------------------------ low-level text edits
    def _shared_module_of(self, path: Path) -> tuple[ModuleConfig, int] | None:
        """The module whose file ``path`` is, when more than one module call loads that directory."""
        for m in self.config.modules.values():
            if m.path and path in m.bodies:
                callers = sum(1 for o in self.config.modules.values() if o.dir == m.dir)
                if callers > 1:
                    return m, callers
        return None

    def _guard_shared_module(self, path: Path) -> None:
        """A shared module's internals are never edited for one caller's drift (it would move every caller)."""
        hit = self._shared_module_of(path)
        if hit is not None:
            m, callers = hit
            raise NeedsPerson(f"the value is set inside module {self.rel(m.dir)}, shared by {callers} module calls, "
                              "and the module exposes no argument for it: add a variable to the module (every caller) "
                              "or accept the drift")

    def _uses(self, mpath: str, ref: str) -> int:
        """How many expressions of module ``mpath`` read ``ref`` (``local.x`` / ``var.x``)."""
        mod = self.config.modules[mpath]
        pattern = re.compile(rf"(?<![\w.]){re.escape(ref)}(?![\w-])")
        count = 0
        for f, body in mod.bodies.items():
            text = self.config.texts[f]
            count += len(pattern.findall(text))
            # a variable's own validation and an output are not attributes the value configures
            count -= sum(len(pattern.findall(text[b.start : b.end])) for b in body.blocks if b.type in ("variable", "output"))
        return count

    def _override_use(self, mpath: str, path: Path, node: Node, op: tuple, where: str, ref: str, uses: int) -> None:
        """Write this one use's value where it is read, leaving a local/variable that other attributes share alone."""
        self._guard_shared_module(path)
        text = self.config.texts[path]
        ind = indent_of(text, node.start)
        current = evaluate(node, self.config.scope(mpath))
        if op[0] == "key_set":
            rendered = f"merge({ref}, {render_any({op[1]: op[2]}, ind)})"
        elif op[0] == "value":
            rendered = self._render_value(op[1], ind, node)
        elif isinstance(current, dict) and UNKNOWN not in current.values():
            rendered = render_any({k: v for k, v in current.items() if k != op[1]}, ind)
        else:
            raise NeedsPerson(f"{where}: {ref} is shared by {uses} uses and its value is not known here")
        self._replace(path, node.start, node.end, rendered)
        self._change(path, where, op[1] if op[0] != "value" else "", "use_site",
                     f"{ref} is read by {uses} expressions; only this one drifted, so it is overridden here")

    def _render_value(self, value: Any, ind: str, node: Node | None = None) -> str:
        """A value for an attribute; objects bound for a JSON string argument go through jsonencode()."""
        if isinstance(value, dict | list) and self._json_string():
            return render_policy(value, ind)
        return render_any(value, ind)

    def _json_string(self) -> bool:
        """Is the drifted argument a string holding JSON (policies, container definitions ...)?"""
        if self._inside_structure:  # a value inside the document is plain HCL; only the document is JSON text
            return False
        attr = (self._intent.attribute if self._intent else "").split(".")[-1]
        return attr.endswith("policy") or attr in JSON_STRING_ARGS

    def _replace(self, path: Path, start: int, end: int, text: str) -> None:
        self._guard_shared_module(path)
        old = self.config.texts[path]
        self.config.set_text(path, old[:start] + text + old[end:])

    def _change(self, path: Path, address: str, attribute: str, strategy: str, explanation: str) -> None:
        ids = [r.event_id for r in (self._intent.records if self._intent else [])]
        rel = self.rel(path)
        self.changes.append(Change(file=rel, address=address, attribute=attribute, explanation=explanation,
                                   strategy=strategy, record_ids=ids))

    def rel(self, path: Path) -> str:
        base = self.base_dir()
        try:
            return str(path.relative_to(base))
        except ValueError:
            return str(path)

    def base_dir(self) -> Path:
        dirs = [m.dir for m in self.config.modules.values()]
        common = Path(*Path(dirs[0]).parts)
        for d in dirs[1:]:
            while not str(d).startswith(str(common)):
                common = common.parent
        return common

    def _insert_attribute(self, path: Path, block: Block, name: str, value_text: str) -> None:
        text = self.config.texts[path]
        if block.attributes:
            last = max(block.attributes.values(), key=lambda a: a.line_end)
            pos = last.line_end
            ind = indent_of(text, last.name_start)
        else:
            pos = text.find("\n", block.open_brace) + 1
            ind = indent_of(text, block.start) + "  "
        if block.close_brace < pos:  # one-line block: `x {}`
            pos = block.close_brace
            self._replace(path, pos, pos, f"\n{ind}{name} = {value_text}\n{indent_of(text, block.start)}")
            return
        self._replace(path, pos, pos, f"{ind}{name} = {value_text}\n")

    def _remove_lines(self, path: Path, start: int, end: int) -> None:
        self._replace(path, start, end, "")

    # ------------------------------------------------------------ following expressions
    def assign(self, mpath: str, path: Path, node: Node, op: tuple, where: str) -> None:
        """Make ``node`` evaluate to the result of ``op`` by editing where its value comes from.

        op: ("value", v) | ("key_set", k, v) | ("key_unset", k)
        """
        text = self.config.texts[path]
        ind = indent_of(text, node.start)
        if op[0] == "value" and (is_literal(node) or (node.kind == "tmpl" and False)):
            if canonical(evaluate(node, self.config.scope(mpath))) == canonical(op[1]):
                return
            if self._edit_structure(mpath, path, node, op[1], where):
                return
            rendered = (render_policy(op[1], ind) if isinstance(op[1], dict | list) and node.kind == "call"
                        else self._render_value(op[1], ind))
            if isinstance(op[1], dict) and node.kind == "lit" and isinstance(node.value, str) and node.value.strip().startswith("{"):
                rendered = render_policy(op[1], ind)
            self._replace(path, node.start, node.end, rendered)
            self._change(path, where, "", "literal", f"set {where} to {render(op[1])[:80]}")
            return
        if op[0] in ("key_set", "key_unset") and node.kind == "obj" and is_literal_keys(node):
            self._edit_object(mpath, path, node, op, where)
            return
        if op[0] in ("key_set", "key_unset") and node.kind == "lit" and node.value is None:
            if op[0] == "key_set":
                self._replace(path, node.start, node.end, render_any({op[1]: op[2]}, ind))
                self._change(path, where, op[1], "literal", f"set {where}[{op[1]!r}]")
            return
        if node.kind == "ref" and node.value[:2] == ["each", "value"] and self._instance is not None:
            self._follow_each([str(p) for p in node.value[2:]], op, where)
            return
        if node.kind == "ref" and node.value[0] in ("var", "local") and len(node.value) == 2:
            ref = f"{node.value[0]}.{node.value[1]}"
            uses = self._uses(mpath, ref)
            if uses > 1 and self.options.shared_target == "use_site":
                self._override_use(mpath, path, node, op, where, ref, uses)
                return
        if node.kind == "ref" and node.value[0] == "var" and len(node.value) == 2:
            self.follow_var(mpath, node.value[1], op, where)
            return
        if node.kind == "ref" and node.value[0] == "local" and len(node.value) == 2:
            mod = self.config.modules[mpath]
            if node.value[1] not in mod.locals:
                raise NeedsPerson(f"local.{node.value[1]} not found")
            lf, la = mod.locals[node.value[1]]
            self.assign(mpath, lf, self.config.node(lf, la), op, f"local.{node.value[1]}")
            return
        if node.kind == "call" and node.value == "merge" and op[0] in ("key_set", "key_unset"):
            self._edit_merge(mpath, path, node, op, where)
            return
        if op[0] == "value" and isinstance(op[1], dict) and node.kind in ("ref", "call", "obj"):
            current = evaluate(node, self.config.scope(mpath))
            if isinstance(current, dict):
                for k in list(current):
                    if k not in op[1]:
                        self.assign(mpath, path, self._refresh(path, node), ("key_unset", k), where)
                for k, v in op[1].items():
                    if canonical(current.get(k)) != canonical(v):
                        self.assign(mpath, path, self._refresh(path, node), ("key_set", k, v), where)
                return
        expr = self.config.texts[path][node.start : node.end]
        raise NeedsPerson(f"{where} is computed from `{expr[:80]}`; not hard-coding over a reference")

    def _edit_structure(self, mpath: str, path: Path, node: Node, value: Any, where: str) -> bool:
        """Edit only the parts of a literal object/list (also inside ``jsonencode(...)``) that differ from ``value``.

        Re-rendering a whole policy to change one principal rewrote lines the drift never touched
        (bracket layout, key order). Edits run from the end of the text backwards, so every node's
        offsets stay valid while earlier parts are edited.
        """
        self._inside_structure += 1
        try:
            return self._edit_structure_parts(mpath, path, node, value, where)
        finally:
            self._inside_structure -= 1

    def _edit_structure_parts(self, mpath: str, path: Path, node: Node, value: Any, where: str) -> bool:
        scope = self.config.scope(mpath)
        if node.kind == "call" and node.value == "jsonencode" and len(node.items) == 1 and isinstance(value, dict | list):
            inner = node.items[0]
            if inner.kind in ("obj", "list"):
                return self._edit_structure(mpath, path, inner, value, where)
            return False
        if node.kind == "obj" and isinstance(value, dict) and is_literal_keys(node):
            present = {str(k): (kn, vn) for k, kn, vn in node.items}
            added = [k for k in value if k not in present]
            if added and "\n" not in self.config.texts[path][node.start : node.end]:
                return False  # a one-line object is rewritten whole by _edit_object: render it whole instead
            for k in added:
                self._edit_object(mpath, path, node, ("key_set", k, value[k]), where)
            edits = [(vn.start, k, vn) for k, (_kn, vn) in present.items()
                     if k not in value or canonical(evaluate(vn, scope)) != canonical(value[k])]
            for _start, k, vn in sorted(edits, key=lambda e: e[0], reverse=True):
                if k not in value:
                    self._edit_object(mpath, path, node, ("key_unset", k), where)
                else:
                    self.assign(mpath, path, vn, ("value", value[k]), f"{where}[{k!r}]")
            return True
        if node.kind == "list" and isinstance(value, list) and len(node.items) == len(value):
            for item, v in sorted(zip(node.items, value, strict=True), key=lambda p: p[0].start, reverse=True):
                if canonical(evaluate(item, scope)) != canonical(v):
                    self.assign(mpath, path, item, ("value", v), where)
            return True
        return False

    def _follow_each(self, rest: list[str], op: tuple, where: str) -> None:
        """``each.value.x`` of a ``for_each`` instance: edit the map entry of that instance's key, where it is written.

        The entry belongs to this instance alone, so the change reaches exactly the drifted resource.
        """
        if self._instance is None:
            raise NeedsPerson(f"{where}: each.value outside a resource instance")
        mpath, path, block, key = self._instance
        if key is None or "for_each" not in block.attributes:
            raise NeedsPerson(f"{where}: each.value without a for_each key in the address")
        src = self._literal_source(mpath, path, self.config.node(path, block.attributes["for_each"]))
        if src is None:
            raise NeedsPerson(f"{where}: for_each is not a map written in this configuration")
        smpath, spath, node = src
        for part in [key, *rest]:
            if node.kind != "obj" or not is_literal_keys(node):
                raise NeedsPerson(f"{where}: for_each entry {key!r} is not a literal object")
            hit = next((vn for k, _kn, vn in node.items if str(k) == part), None)
            if hit is None:
                if part != ([key, *rest])[-1] or op[0] != "value":
                    raise NeedsPerson(f"{where}: for_each entry {key!r} has no {part!r}")
                self._edit_object(smpath, spath, node, ("key_set", part, op[1]), f"for_each entry {key!r}")
                return
            node = hit
        self.assign(smpath, spath, node, op, f"for_each entry {key!r}" + "".join(f".{r}" for r in rest))

    def _literal_source(self, mpath: str, path: Path, node: Node) -> tuple[str, Path, Node] | None:
        """Where a map expression is written as a literal: itself, a local, a root variable's tfvars/default,
        or a module call argument."""
        if node.kind == "obj":
            return mpath, path, node
        if node.kind != "ref" or len(node.value) != 2:
            return None
        mod = self.config.modules[mpath]
        kind, name = node.value
        if kind == "local" and name in mod.locals:
            lf, la = mod.locals[name]
            return self._literal_source(mpath, lf, self.config.node(lf, la))
        if kind == "var" and name in mod.variables:
            if mpath == "" and name in mod.tfvars:
                tf, ta = mod.tfvars[name]
                return self._literal_source("", tf, self.config.node(tf, ta))
            if mpath:
                cf, call = self.config.modules[mod.parent or ""].module_calls[mod.call_name]
                if name in call.attributes:
                    return self._literal_source(mod.parent or "", cf, self.config.node(cf, call.attributes[name]))
            vf, vb = mod.variables[name]
            if "default" in vb.attributes:
                return self._literal_source(mpath, vf, self.config.node(vf, vb.attributes["default"]))
        return None

    def _refresh(self, path: Path, node: Node) -> Node:
        """Re-parse a node after an edit earlier in the same file moved text around."""
        from iac.hcl import parse_expr

        text = self.config.texts[path]
        end = node.start
        depth = 0
        # Re-scan to the end of the expression starting at node.start.
        i = node.start
        while i < len(text):
            c = text[i]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
                if depth < 0:
                    break
            elif c == "\n" and depth == 0:
                break
            i += 1
            end = i
        return parse_expr(text, node.start, end)

    def follow_var(self, mpath: str, name: str, op: tuple, where: str) -> None:
        mod = self.config.modules[mpath]
        if name not in mod.variables:
            raise NeedsPerson(f"var.{name} is not declared in {mpath or 'the root module'}")
        vf, vb = mod.variables[name]
        if mpath == "":
            if name in mod.tfvars:
                tf, ta = mod.tfvars[name]
                self.assign("", tf, self.config.node(tf, ta), op, f"{self.rel(tf)}: {name}")
                return
            if "default" in vb.attributes and self.options.unset_var_target == "default":
                self.assign("", vf, self.config.node(vf, vb.attributes["default"]), op, f"var.{name} default")
                return
            self._add_tfvar(name, self._full_value(mpath, name, op))
            return
        parent = mod.parent or ""
        cf, call = self.config.modules[parent].module_calls[mod.call_name]
        if name in call.attributes:
            self.assign(parent, cf, self.config.node(cf, call.attributes[name]),
                        op, f"module.{mod.call_name} argument {name}")
            return
        if self.options.module_var_target == "default" and "default" in vb.attributes:
            self.assign(mpath, vf, self.config.node(vf, vb.attributes["default"]), op, f"var.{name} default")
            return
        value = self._full_value(mpath, name, op)
        self._insert_attribute(cf, call, name, self._render_value(value, indent_of(self.config.texts[cf], call.start) + "  "))
        self._change(cf, f"module.{mod.call_name}", name, "module_argument",
                     f"pass {name} = {render(value)[:60]} in the module call instead of changing the module")

    def _full_value(self, mpath: str, name: str, op: tuple) -> Any:
        if op[0] == "value":
            return op[1]
        current = self.config.scope(mpath).variables.get(name, UNKNOWN)
        if current is None:
            current = {}
        if not isinstance(current, dict) or UNKNOWN in current.values():
            raise NeedsPerson(f"var.{name} has no known value to extend")
        current = dict(current)
        if op[0] == "key_set":
            current[op[1]] = op[2]
        else:
            current.pop(op[1], None)
        return current

    def _add_tfvar(self, name: str, value: Any) -> None:
        root = self.config.modules[""]
        existing = sorted({f for f, _ in root.tfvars.values()})
        path = existing[0] if existing else root.dir / "terraform.tfvars"
        text = self.config.texts.get(path, "")
        if text and not text.endswith("\n"):
            text += "\n"
        self.config.texts[path] = text
        self.config.set_text(path, text + f"{name} = {self._render_value(value, '')}\n")
        self._change(path, "", name, "tfvars", f"set {name} in {path.name} (variable has no default)")

    def _edit_object(self, mpath: str, path: Path, node: Node, op: tuple, where: str) -> None:
        text = self.config.texts[path]
        key = op[1]
        for k, kn, vn in node.items:
            if str(k) == key:
                if op[0] == "key_set":
                    before = len(self.changes)
                    self.assign(mpath, path, vn, ("value", op[2]), f"{where}[{key!r}]")
                    if len(self.changes) > before:
                        self.changes[-1].attribute = key
                else:
                    ls = text.rfind("\n", 0, kn.start) + 1
                    if text[ls:kn.start].strip() == "" and text[vn.end:].split("\n", 1)[0].strip(" ,\t") == "":
                        le = text.find("\n", vn.end)
                        self._remove_lines(path, ls, len(text) if le < 0 else le + 1)
                    else:
                        end = vn.end
                        m = re.match(r"\s*,", text[end:])
                        if m:
                            end += m.end()
                        start = kn.start
                        while start > node.start + 1 and text[start - 1] in " \t":
                            start -= 1
                        self._replace(path, start, end, "")
                    self._change(path, where, key, "literal", f"remove key {key!r} from {where}")
                return
        if op[0] == "key_unset":
            return
        entry = f"{render_key(key)} = {render_any(op[2])}"
        close = node.end - 1
        multiline = "\n" in text[node.start : node.end]
        if multiline:
            if node.items:
                last = node.items[-1][2]
                le = text.find("\n", last.end)
                ind = indent_of(text, node.items[-1][1].start)
                self._replace(path, le + 1, le + 1, f"{ind}{entry}\n")
            else:
                ind = indent_of(text, close) + "  "
                ls = text.rfind("\n", 0, close) + 1
                self._replace(path, ls, ls, f"{ind}{entry}\n")
        else:
            body = text[node.start + 1 : close].strip()
            new = "{ " + (body.rstrip(",") + ", " if body else "") + entry + " }"
            self._replace(path, node.start, node.end, new)
        self._change(path, where, key, "literal", f"add key {key!r} = {render(op[2])[:60]} to {where}")

    def _edit_merge(self, mpath: str, path: Path, node: Node, op: tuple, where: str) -> None:
        scope = self.config.scope(mpath)
        key = op[1]
        owners = []
        for arg in node.items:
            v = evaluate(arg, scope)
            if isinstance(v, dict) and key in v:
                owners.append(arg)
        if op[0] == "key_unset":
            if not owners:
                return
            for arg in reversed(owners):  # later arguments win, so all must go
                self.assign(mpath, path, self._refresh(path, arg), op, where)
            return
        followable = [a for a in node.items if a.kind == "obj" or (a.kind == "ref" and a.value[0] in ("var", "local"))]
        followable = [a for a in followable if isinstance(evaluate(a, scope), dict) or evaluate(a, scope) is None]
        if self.options.merge_target == "last" and followable:
            # The last argument wins and is usually the resource-specific one (``var.vpc_tags``):
            # writing the key there scopes the change to this resource, unless a later owner wins.
            target = followable[-1]
            if owners and node.items.index(owners[-1]) > node.items.index(target):
                target = owners[-1]
        elif owners:
            target = owners[-1]
        elif followable:
            target = followable[0]
        else:
            raise NeedsPerson(f"{where}: no argument of merge() can take key {key!r}")
        self.assign(mpath, path, target, op, where)

    # ------------------------------------------------------------ resource-level operations
    def set_attribute(self, mpath: str, path: Path, block: Block, attr_path: str, op: tuple, where: str) -> None:
        parts = attr_path.split(".")
        for i, part in enumerate(parts[:-1]):
            nested = block.nested(part)
            if not nested:
                value = op[1] if op[0] == "value" else {op[1]: op[2]}
                snippet = _nested_block_text(parts[i:], value, indent_of(self.config.texts[path], block.start) + "  ")
                text = self.config.texts[path]
                pos = text.rfind("\n", 0, block.close_brace) + 1
                self._replace(path, pos, pos, snippet)
                self._change(path, where, attr_path, "insert", f"add block {part} with {attr_path} = {render(value)[:60]}")
                return
            block = nested[0]
        name = parts[-1]
        if name in block.attributes:
            self.assign(mpath, path, self.config.node(path, block.attributes[name]), op, f"{where}.{attr_path}")
            return
        if op[0] == "key_unset":
            return
        value = op[1] if op[0] == "value" else {op[1]: op[2]}
        if value is None:
            return
        ind = indent_of(self.config.texts[path], block.start) + "  "
        rendered = render_policy(value, ind) if name.endswith("policy") else render_any(value, ind)
        self._insert_attribute(path, block, name, rendered)
        self._change(path, where, attr_path, "insert", f"add {attr_path} = {render(value)[:60]} (set out of band)")

    def _locate(self, address: str) -> tuple[ModuleConfig, Path, Block]:
        hit = self.config.resource(address)
        if hit is None:
            raise NeedsPerson(f"{address} is in the state but not in an editable configuration")
        return hit

    def _block_of(self, address: str) -> tuple[ModuleConfig, Path, Block]:
        return self._locate(address)

    def _state_of(self, address: str) -> StateResource:
        res = self.state.get(address)
        if res is None:  # drift bound the intent to this state resource
            raise ValueError(f"{address} is not in the state")
        return res

    def apply_group(self, group: DriftGroup) -> None:
        for intent in group.intents:
            self._intent = intent
            try:
                self.apply_intent(group, intent)
            except NeedsPerson as exc:
                self.needs_person.append(f"{intent.address or intent.resource_id}: {exc}")
        self._intent = None

    def apply_intent(self, group: DriftGroup, it: Intent) -> None:
        if it.kind == "create":
            self.new_resource(it)
            return
        if it.kind == "delete":
            self.remove_resource(it.address)
            return
        if it.kind == "review":
            raise NeedsPerson(f"{it.value}; no exact patch, review {it.resource_type} {it.resource_id}")
        if it.resource_type in ("aws_s3_bucket_versioning", "aws_s3_bucket_policy",
                                "aws_s3_bucket_server_side_encryption_configuration",
                                "aws_s3_bucket_public_access_block"):
            self.companion(it)
            return
        where = _address(it)
        mod, path, block = self._block_of(where)
        key = re.search(r'\["([^"]*)"\]$', where)
        self._instance = (mod.path, path, block, key.group(1) if key else None)
        if it.kind == "set":
            self.set_attribute(mod.path, path, block, it.attribute, ("value", it.value), where)
        elif it.kind == "tag_set":
            self.set_tag(mod, path, block, ("key_set", it.value[0], it.value[1]), where)
        elif it.kind == "tag_unset":
            self.set_tag(mod, path, block, ("key_unset", it.value[0]), where)
        elif it.kind == "rule_add":
            self.add_rule(mod, path, block, it)
        elif it.kind == "rule_remove":
            self.remove_rule(mod, path, block, it)
        elif it.kind == "attach":
            self.attach(mod, block, it)
        elif it.kind == "detach":
            att = find_attachment(self.state, self._state_of(where).attributes.get("name", it.resource_id), it.value)
            if att is None:
                raise NeedsPerson(f"no managed attachment of {it.value}")
            self.remove_resource(att.address)
        elif it.kind == "inline_policy":
            raise NeedsPerson(f"inline policy {it.attribute} changed; no rule to place it")
        else:
            raise NeedsPerson(f"no patch strategy for {it.kind}")

    def set_tag(self, mod: ModuleConfig, path: Path, block: Block, op: tuple, where: str) -> None:
        if "tags" in block.attributes:
            self.assign(mod.path, path, self.config.node(path, block.attributes["tags"]), op, f"{where}.tags")
            return
        if op[0] == "key_unset":
            default_tags = self.config.default_tags() if mod.path == "" else {}
            if op[1] in default_tags:
                raise NeedsPerson(f"tag {op[1]!r} comes from provider default_tags")
            return
        self.set_attribute(mod.path, path, block, "tags", op, where)

    # security groups ---------------------------------------------------------
    def _separate_rules_for(self, mod: ModuleConfig, block: Block) -> bool:
        ref = f"{block.labels[0]}.{block.labels[1]}."
        for (rtype, _n), (f, b) in mod.resources.items():
            if rtype in ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule",
                         "aws_vpc_security_group_egress_rule"):
                attr = b.attributes.get("security_group_id")
                if attr and ref in self.config.expr_text(f, attr):
                    return True
        return False

    def _source_value(self, mod: ModuleConfig, source: str) -> tuple[str, Any]:
        kind, _, val = source.partition(":")
        if kind == "cidr":
            return "cidr_blocks", [val]
        if kind == "cidr6":
            return "ipv6_cidr_blocks", [val]
        if kind == "pl":
            return "prefix_list_ids", [val]
        if kind == "sg":
            res = self.state.find(val, types=("aws_security_group",))
            if res is not None and res.module == mod.path:
                return "security_groups", [Raw(f"{res.type}.{res.name}.id")]
            return "security_groups", [val]
        if kind == "self":
            return "self", True
        raise NeedsPerson(f"unknown rule source {source}")

    def add_rule(self, mod: ModuleConfig, path: Path, block: Block, it: Intent) -> None:
        direction, proto, fp, tp, source = it.value
        key, value = self._source_value(mod, source)
        inline = block.nested("ingress") or block.nested("egress")
        separate = self._separate_rules_for(mod, block)
        use_inline = self.options.sg_style == "inline" or (self.options.sg_style == "auto" and (inline or not separate))
        if self.options.sg_style == "separate":
            use_inline = False
        if use_inline:
            text = self.config.texts[path]
            same = block.nested(direction)
            ind = indent_of(text, block.start) + "  "
            body = {"from_port": fp, "to_port": tp, "protocol": proto, key: value}
            lines = [f"{ind}  {k} = {render_any(v)}" for k, v in body.items()]
            snippet = f"{ind}{direction} {{\n" + "\n".join(lines) + f"\n{ind}}}\n"
            if same:
                pos = same[-1].end
                snippet = "\n" + snippet
            else:
                pos = text.rfind("\n", 0, block.close_brace) + 1
            self._replace(path, pos, pos, snippet)
            self._change(path, _address(it), direction, "insert",
                         f"add {direction} rule {proto} {fp}-{tp} from {source} (authorized out of band)")
            return
        name = sanitize_name(f"{block.labels[1]}_{direction}_{proto}_{fp}_{source.split(':', 1)[1]}")
        attrs = {"type": direction, "security_group_id": Raw(f"{block.labels[0]}.{block.labels[1]}.id"),
                 "from_port": fp, "to_port": tp, "protocol": proto, key: value}
        addr = self._append_block(mod, "aws_security_group_rule", name, attrs)
        sg_id = self._state_of(_address(it)).attributes.get("id", it.resource_id)
        src = source.split(":", 1)[1]
        self.instructions.append(f"terraform import '{addr}' {sg_id}_{direction}_{proto}_{fp}_{tp}_{src}")

    def remove_rule(self, mod: ModuleConfig, path: Path, block: Block, it: Intent) -> None:
        direction, proto, fp, tp, source = it.value
        scope_vals = self.config.evaluate_block(mod.path, path, block)
        for nb, vals in zip(block.nested(direction), scope_vals.get(direction, []), strict=False):
            tuples = rule_tuples(direction, vals)
            if it.value not in tuples:
                continue
            text = self.config.texts[path]
            if len(tuples) == 1:
                start, end = nb.start, nb.end
                if start >= 2 and text[start - 2 : start] == "\n\n":
                    start -= 1  # take the blank line that separated it
                self._remove_lines(path, start, end)
                self._change(path, _address(it), direction, "remove_block",
                             f"remove {direction} rule {proto} {fp}-{tp} from {source} (revoked out of band)")
                return
            key, value = self._source_value(mod, source)
            attr = nb.attributes.get(key)
            if attr is None:
                break
            node = self.config.node(path, attr)
            if node.kind != "list":
                raise NeedsPerson(f"{direction} rule sources are computed; cannot drop {source}")
            remaining = [x for x in node.items if not (x.kind == "lit" and [x.value] == value)]
            self._replace(path, node.start, node.end, "[" + ", ".join(text[x.start : x.end] for x in remaining) + "]")
            self._change(path, _address(it), direction, "literal", f"drop {source} from a {direction} rule")
            return
        # Not inline: a separate rule resource (aws_security_group_rule / aws_vpc_security_group_*_rule)?
        sg_id = str(self._state_of(_address(it)).attributes.get("id") or it.resource_id)
        for res, tuples in separate_rules(self.state, sg_id):
            if it.value not in tuples:
                continue
            if len(tuples) == 1:
                self.remove_resource(res.address)
                return
            self._drop_rule_source(res, it)
            return
        raise NeedsPerson(f"revoked rule {it.value} not found in the configuration")

    def _drop_rule_source(self, res: StateResource, it: Intent) -> None:
        """Drop one source from a separate rule resource that lists several (the others stay)."""
        direction, proto, fp, tp, source = it.value
        rmod, rpath, rblock = self._locate(res.address)
        key, value = self._source_value(rmod, source)
        attr = rblock.attributes.get(key)
        node = self.config.node(rpath, attr) if attr is not None else None
        if node is None or node.kind != "list":
            raise NeedsPerson(f"{res.address} lists its rule sources through an expression; cannot drop {source}")
        text = self.config.texts[rpath]
        remaining = [x for x in node.items if not (x.kind == "lit" and [x.value] == value)]
        self._replace(rpath, node.start, node.end, "[" + ", ".join(text[x.start : x.end] for x in remaining) + "]")
        self._change(rpath, res.address, key, "literal", f"drop {source} from {res.address} (revoked out of band)")

    # IAM ---------------------------------------------------------------------
    def attach(self, mod: ModuleConfig, role_block: Block, it: Intent) -> None:
        policy = str(it.value)
        name = sanitize_name(f"{role_block.labels[1]}_{policy.rsplit('/', 1)[-1]}")
        attrs = {"role": Raw(f"aws_iam_role.{role_block.labels[1]}.name"), "policy_arn": policy}
        addr = self._append_block(mod, "aws_iam_role_policy_attachment", name, attrs)
        role_name = self._state_of(_address(it)).attributes.get("name", it.resource_id)
        self.instructions.append(f"terraform import '{addr}' {role_name}/{policy}")

    # S3 companions ---------------------------------------------------------------
    def companion(self, it: Intent) -> None:
        address = it.address
        hit = self.config.resource(address) if address else None
        if address and hit is not None and hit[2].labels[0] == it.resource_type:  # hit implies address
            mod, path, block = hit
            op = ("value", it.value)
            if it.attribute == "policy":
                self.set_attribute(mod.path, path, block, "policy", op, address)
            else:
                self.set_attribute(mod.path, path, block, it.attribute, op, address)
            return
        mod, path, bucket_block = self._block_of(_address(it))
        inline = INLINE_FORMS.get((it.resource_type, it.attribute))
        if inline is not None and self._uses_inline(mod, bucket_block, inline[0].split(".")[0]):
            # The project writes this setting inside the bucket (provider v3 form): a separate v4 resource beside
            # it would contradict it, so the inline block is patched.
            self.set_attribute(mod.path, path, bucket_block, inline[0], ("value", inline[1](it.value)), _address(it))
            return
        # Maybe we created the companion for an earlier intent of this group.
        name = bucket_block.labels[1]
        existing = mod.resources.get((it.resource_type, name))
        if existing is not None:
            f, b = existing
            self.set_attribute(mod.path, f, b, it.attribute, ("value", it.value), f"{it.resource_type}.{name}")
            return
        attrs: dict[str, Any] = {"bucket": Raw(f"aws_s3_bucket.{name}.id")}
        nested = ""
        if it.attribute == "policy":
            attrs["policy"] = Raw(render_policy(it.value, "  "))
        elif "." in it.attribute:
            nested = _nested_block_text(it.attribute.split("."), it.value, "  ")
        else:
            attrs[it.attribute] = it.value
        addr = self._append_block(mod, it.resource_type, name, attrs, extra=nested)
        self.instructions.append(f"terraform import '{addr}' {it.resource_id}")

    def _uses_inline(self, mod: ModuleConfig, bucket: Block, name: str) -> bool:
        """Inline when this bucket already has the setting inline, or the project has no split resource of that kind
        and some bucket writes it inline."""
        if bucket.nested(name) or name in bucket.attributes:
            return True
        split = {"versioning": "aws_s3_bucket_versioning", "policy": "aws_s3_bucket_policy",
                 "server_side_encryption_configuration": "aws_s3_bucket_server_side_encryption_configuration"}[name]
        buckets = [b for m in self.config.modules.values() for (t, _n), (_f, b) in m.resources.items() if t == "aws_s3_bucket"]
        has_split = any(t == split for m in self.config.modules.values() for (t, _n) in m.resources)
        return not has_split and any(b.nested(name) or name in b.attributes for b in buckets)

    # new / removed resources ---------------------------------------------------------
    def _append_block(self, mod: ModuleConfig, rtype: str, name: str, attrs: dict[str, Any], extra: str = "") -> str:
        if mod.path:
            self._guard_shared_module(next(iter(sorted(mod.bodies)), mod.dir / "main.tf"))
        base = name
        n = 2
        while (rtype, name) in mod.resources:
            name = f"{base}_{n}"
            n += 1
        files = sorted(mod.bodies)
        tf_files = [f for f in files if f.suffix == ".tf"]
        path = next((f for f in tf_files if f.name == "main.tf"), tf_files[0] if tf_files else mod.dir / "main.tf")
        lines = aligned([(render_key(k), render_any(v, "  ")) for k, v in attrs.items()], "  ")
        body = "\n".join(lines) + ("\n" + extra.rstrip("\n") if extra else "")
        block = f'\nresource "{rtype}" "{name}" {{\n{body}\n}}\n'
        text = self.config.texts.get(path, "")
        if text and not text.endswith("\n"):
            block = "\n" + block
        self.config.texts[path] = text
        self.config.set_text(path, text + block)
        addr = ".".join(p for p in [mod.path, rtype, name] if p)
        self._change(path, addr, "", "new_block", f"add {addr} for a resource created out of band (import it)")
        return addr

    def new_resource(self, it: Intent) -> None:
        mod = self.config.modules[""]
        attrs = dict(it.value or {})
        rules = attrs.pop("__rules__", set())
        label = (attrs.get("tags") or {}).get("Name") or attrs.get("name") or attrs.get("bucket") or it.resource_id
        extra = ""
        for direction, proto, fp, tp, source in sorted(rules):
            key, value = self._source_value(mod, source)
            body = {"from_port": fp, "to_port": tp, "protocol": proto, key: value}
            extra += f"  {direction} {{\n" + "".join(
                line + "\n" for line in aligned([(k, render_any(v, "    ")) for k, v in body.items()], "    ")) + "  }\n"
        for k in ("assume_role_policy", "policy"):
            if isinstance(attrs.get(k), dict):
                attrs[k] = Raw(render_policy(attrs[k], "  "))
        if it.resource_type == "aws_security_group" and "vpc_id" in attrs:
            vpc = self.state.find(attrs["vpc_id"], types=("aws_vpc",))
            if vpc is not None and vpc.module == "":
                attrs["vpc_id"] = Raw(f"aws_vpc.{vpc.name}.id")
        addr = self._append_block(mod, it.resource_type, sanitize_name(label), attrs, extra=extra)
        self.instructions.append(f"terraform import '{addr}' {it.resource_id}")

    def remove_resource(self, address: str | None) -> None:
        if not address:
            raise NeedsPerson("deleted resource has no address")
        mod, path, block = self._locate(address)
        rtype, rname = block.labels
        ref = re.compile(rf"(?<![\w.]){re.escape(rtype)}\.{re.escape(rname)}(?![\w-])")
        # References elsewhere would break the configuration: outputs go with it, others need a person.
        for (t, n), (f, b) in mod.resources.items():
            if (t, n) != (rtype, rname) and ref.search(self.config.texts[f][b.start : b.end]):
                raise NeedsPerson(f"{address} was deleted but {t}.{n} still references it")
        for oname, (f, b) in list(mod.outputs.items()):
            if ref.search(self.config.texts[f][b.start : b.end]):
                self._remove_block_text(f, b)
                self._change(f, f"output.{oname}", "", "remove_block", f"remove output {oname}: it read {address}")
                mod = self.config.modules[mod.path]
        mod, path, block = self._locate(address)
        self._remove_block_text(path, block)
        self._change(path, address, "", "remove_block", f"remove {address}: deleted out of band")
        state_addr = address
        self.instructions.append(f"terraform state rm '{state_addr}'")

    def _remove_block_text(self, path: Path, block: Block) -> None:
        text = self.config.texts[path]
        start, end = block.start, block.end
        # Take the comment lines directly above and one surrounding blank line.
        while True:
            prev_ls = text.rfind("\n", 0, max(start - 1, 0)) + 1
            line = text[prev_ls:start]
            if start > 0 and line.strip().startswith(("#", "//")):
                start = prev_ls
            else:
                break
        if text[end : end + 1] == "\n":
            end += 1
        elif start >= 1 and text[start - 2 : start] == "\n\n":
            start -= 1
        self._remove_lines(path, start, end)


def aligned(pairs: list[tuple[str, str]], indent: str) -> list[str]:
    """``key = value`` lines in terraform fmt's layout: ``=`` aligned over runs of one-line values.

    Why here and not only through fmt: blocks we write must be fmt-clean even when the formatter is
    unavailable or times out under load (a slow ``terraform fmt`` once left a new block unaligned).
    """
    out: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        out.extend(f"{indent}{k.ljust(width)} = {v}" for k, v in run)
        run.clear()

    for k, v in pairs:
        if "\n" in v:
            flush()
            out.append(f"{indent}{k} = {v}")
        else:
            run.append((k, v))
    flush()
    return out


def is_literal_keys(node: Node) -> bool:
    return all(k is not UNKNOWN for k, _kn, _v in node.items)


def _nested_block_text(parts: list[str], value: Any, indent: str) -> str:
    if len(parts) == 1:
        return f"{indent}{parts[0]} = {render_any(value, indent)}\n"
    inner = _nested_block_text(parts[1:], value, indent + "  ")
    return f"{indent}{parts[0]} {{\n{inner}{indent}}}\n"


@dataclass
class PatchResult:
    files: dict[Path, str]  # changed files only: path -> new text
    diff: str
    changes: list[Change]
    instructions: list[str]
    needs_person: list[str]
    errors: list[str] = field(default_factory=list)


def unified_diff(before: dict[Path, str], after: dict[Path, str], base: Path) -> str:
    out: list[str] = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path, ""), after.get(path, "")
        if a == b:
            continue
        try:
            rel = str(path.relative_to(base))
        except ValueError:
            rel = str(path)
        out.extend(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                        fromfile=f"a/{rel}" if a else "/dev/null", tofile=f"b/{rel}"))
    return "".join(out)


def _changed_lines(before: list[str], after: list[str]) -> set[int]:
    """Indexes of ``after`` lines that are not carried over unchanged from ``before``."""
    sm = difflib.SequenceMatcher(None, before, after, autojunk=False)
    out: set[int] = set()
    for tag, _i1, _i2, j1, j2 in sm.get_opcodes():
        if tag != "equal":
            out.update(range(j1, j2))
    return out


def format_edited_lines(original: str, edited: str, formatted: str) -> str:
    """Take ``terraform fmt``'s output only on the lines the patch wrote; keep every other line as is.

    Formatting whole files rewrote code nobody touched (legacy ``"${x}"`` interpolation, alignment),
    so a one-attribute drift produced a multi-line diff a reviewer has to re-check. Here fmt is
    consulted line by line: a formatted line replaces an edited line only where the edit created it.
    """
    o, e, f = original.splitlines(keepends=True), edited.splitlines(keepends=True), formatted.splitlines(keepends=True)
    mine = _changed_lines(o, e)
    out: list[str] = []
    sm = difflib.SequenceMatcher(None, e, f, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            out.extend(e[i1:i2])
        elif tag == "replace" and i2 - i1 == j2 - j1:
            out.extend(f[j1 + k] if (i1 + k) in mine else e[i1 + k] for k in range(i2 - i1))
        elif tag == "insert":
            # fmt adds lines (rare): accept them only next to lines we wrote
            if (i1 - 1) in mine or i1 in mine:
                out.extend(f[j1:j2])
        elif all(i in mine for i in range(i1, i2)):
            out.extend(f[j1:j2])
        else:
            out.extend(e[i1:i2])
    return "".join(out)


def _touched_original(before: list[str], after: list[str]) -> set[int]:
    """Indexes of ``before`` lines that ``after`` does not keep unchanged."""
    sm = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return {i for tag, i1, i2, _j1, _j2 in sm.get_opcodes() if tag != "equal" for i in range(i1, i2)}


def collateral_lines(original: str, edited: str, final: str) -> list[int]:
    """1-based lines of ``original`` the edit kept but ``final`` rewrote (e.g. by whole-file fmt).

    The check behind "no collateral edits": empty means the diff touches only the patch's lines.
    """
    o = original.splitlines(keepends=True)
    kept_by_edit = set(range(len(o))) - _touched_original(o, edited.splitlines(keepends=True))
    return sorted(i + 1 for i in _touched_original(o, final.splitlines(keepends=True)) & kept_by_edit)


def patch_groups(
    config_dir: Path,
    groups: list[DriftGroup],
    state: State,
    *,
    options: PatchOptions | None = None,
    formatter: Any = None,
) -> PatchResult:
    """Patch a fresh copy of the configuration for ``groups``; never writes to disk.

    ``formatter(text) -> text`` is ``terraform fmt`` (see iac.verify.fmt_text). It runs on files we
    changed, but only its changes to the lines the patch wrote are kept (format_edited_lines): the
    rest of the file keeps its exact bytes, even if it is not fmt-clean.
    """
    config = Config(config_dir, state=state)
    before = config.snapshot()
    patcher = Patcher(config, state, options=options)
    for g in groups:
        patcher.apply_group(g)
    errors = []
    changed = {p: t for p, t in config.texts.items() if before.get(p) != t}
    for p, t in list(changed.items()):
        if formatter is not None:
            try:
                changed[p] = format_edited_lines(before.get(p, ""), t, formatter(t))
            except Exception as exc:  # fmt rejects broken HCL: surface it, never ship it
                errors.append(f"terraform fmt failed on {p.name}: {exc}")
            stray = collateral_lines(before.get(p, ""), t, changed[p])
            if stray:
                errors.append(f"patch of {p.name} changed lines it did not edit: {stray[:10]}")
        try:
            validate_hcl(changed[p])
        except Exception as exc:
            errors.append(f"patched {p.name} does not parse: {str(exc)[:200]}")
    base = patcher.base_dir()
    diff = unified_diff({p: before.get(p, "") for p in changed}, changed, base)
    return PatchResult(files=changed, diff=diff, changes=patcher.changes, instructions=patcher.instructions,
                       needs_person=patcher.needs_person, errors=errors)
