"""A Terraform configuration as text + spans: the module tree, variables, locals and resources.

Only modules with a local source (``./`` or ``../``) are loaded: those are ours to edit. Registry
modules are opaque (their resources are reported, never patched inside).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from iac.hcl import UNKNOWN, Attribute, Block, HCLSyntaxError, Node, Scope, evaluate, located, parse_body, parse_expr


@functools.lru_cache(maxsize=512)
def validate_hcl(text: str) -> None:
    """Raise when python-hcl2 cannot read the text (a patch must never break the file)."""
    hcl2.loads(text)


@dataclass
class ModuleConfig:
    path: str  # "" root, "module.network", "module.a.module.b"
    dir: Path
    parent: str | None = None
    call_name: str = ""
    bodies: dict[Path, Block] = field(default_factory=dict)
    resources: dict[tuple[str, str], tuple[Path, Block]] = field(default_factory=dict)
    variables: dict[str, tuple[Path, Block]] = field(default_factory=dict)
    locals: dict[str, tuple[Path, Attribute]] = field(default_factory=dict)
    module_calls: dict[str, tuple[Path, Block]] = field(default_factory=dict)
    outputs: dict[str, tuple[Path, Block]] = field(default_factory=dict)
    providers: list[tuple[Path, Block]] = field(default_factory=list)
    tfvars: dict[str, tuple[Path, Attribute]] = field(default_factory=dict)  # root only


def module_source_is_local(source: str) -> bool:
    return source.startswith("./") or source.startswith("../")


class Config:
    """Loaded configuration; ``texts`` is the single source of truth, edits go through ``set_text``."""

    def __init__(self, root_dir: str | Path, *, texts: dict[Path, str] | None = None, state: Any = None):
        self.root_dir = Path(root_dir).resolve()
        self.state = state  # optional iac.state.State: resolves resource references when evaluating
        self.texts: dict[Path, str] = dict(texts or {})
        self.modules: dict[str, ModuleConfig] = {}
        self._scopes: dict[str, Scope] = {}
        self.reload()

    # ----------------------------------------------------------------- loading
    def _text(self, path: Path) -> str:
        if path not in self.texts:
            self.texts[path] = path.read_text()
        return self.texts[path]

    def reload(self) -> None:
        self.modules = {}
        self._scopes = {}
        self._load_module("", self.root_dir, None, "")

    def _parse(self, path: Path) -> Block:
        """Parse one file; a syntax error names the file, line and column."""
        text = self._text(path)
        try:
            return parse_body(text)
        except HCLSyntaxError as exc:
            raise located(exc, path=str(path), text=text) from None

    def _load_module(self, mpath: str, mdir: Path, parent: str | None, call_name: str) -> None:
        mod = ModuleConfig(mpath, mdir, parent, call_name)
        self.modules[mpath] = mod
        known = {p for p in self.texts if p.parent == mdir}
        files = sorted(set(mdir.glob("*.tf")) | {p for p in known if p.suffix == ".tf"})
        for f in files:
            body = self._parse(f)
            mod.bodies[f] = body
            for b in body.blocks:
                if b.type == "resource" and len(b.labels) == 2:
                    mod.resources[(b.labels[0], b.labels[1])] = (f, b)
                elif b.type == "variable" and b.labels:
                    mod.variables[b.labels[0]] = (f, b)
                elif b.type == "locals":
                    for name, attr in b.attributes.items():
                        mod.locals[name] = (f, attr)
                elif b.type == "module" and b.labels:
                    mod.module_calls[b.labels[0]] = (f, b)
                elif b.type == "output" and b.labels:
                    mod.outputs[b.labels[0]] = (f, b)
                elif b.type == "provider":
                    mod.providers.append((f, b))
        if mpath == "":
            tfvars = sorted(mdir.glob("*.auto.tfvars")) + [mdir / "terraform.tfvars"]
            tfvars += [p for p in known if p.name.endswith(".tfvars") and p not in tfvars]
            for f in tfvars:
                if f in self.texts or f.exists():
                    body = self._parse(f)
                    mod.bodies[f] = body
                    for name, attr in body.attributes.items():
                        mod.tfvars[name] = (f, attr)
        for name, (f, b) in list(mod.module_calls.items()):
            src_attr = b.attributes.get("source")
            if src_attr is None:
                continue
            src = self.node(f, src_attr)
            if src.kind == "lit" and isinstance(src.value, str) and module_source_is_local(src.value):
                child_dir = Path(os.path.normpath(mdir / src.value))
                child_path = f"{mpath}.module.{name}" if mpath else f"module.{name}"
                if child_dir.is_dir():
                    self._load_module(child_path, child_dir, mpath, name)

    def set_text(self, path: Path, text: str) -> None:
        self.texts[path] = text
        self.reload()

    # ----------------------------------------------------------------- reading
    def node(self, path: Path, attr: Attribute) -> Node:
        """The attribute's expression, parsed on first use; a syntax error in it names file:line:column."""
        text = self.texts[path]
        try:
            return parse_expr(text, attr.expr_start, attr.expr_end)
        except HCLSyntaxError as exc:
            raise located(exc, path=str(path), text=text) from None

    def expr_text(self, path: Path, attr: Attribute) -> str:
        return self.texts[path][attr.expr_start : attr.expr_end]

    def scope(self, mpath: str) -> Scope:
        if mpath in self._scopes:
            return self._scopes[mpath]
        mod = self.modules[mpath]
        values: dict[str, Any] = {}
        call_args: dict[str, tuple[Path, Attribute]] = {}
        if mod.parent is not None:
            pf, pcall = self.modules[mod.parent].module_calls[mod.call_name]
            call_args = {k: (pf, a) for k, a in pcall.attributes.items()}
        for name, (f, vb) in mod.variables.items():
            if mpath == "" and name in mod.tfvars:
                tf, ta = mod.tfvars[name]
                values[name] = evaluate(self.node(tf, ta), Scope({}, {}))
            elif mod.parent is not None and name in call_args:  # call_args is empty without a parent
                cf, ca = call_args[name]
                values[name] = evaluate(self.node(cf, ca), self.scope(mod.parent))
            elif "default" in vb.attributes:
                values[name] = evaluate(self.node(f, vb.attributes["default"]), Scope({}, {}))
            else:
                values[name] = UNKNOWN
        locals_ = {n: (self.texts[f], self.node(f, a)) for n, (f, a) in mod.locals.items()}
        scope = Scope(values, locals_, self._resolver(mpath) if self.state is not None else None)
        self._scopes[mpath] = scope
        return scope

    def _resolver(self, mpath: str) -> Any:
        def resolve(parts: list[Any]) -> Any:
            if len(parts) < 3:
                return UNKNOWN
            rtype, name, rest = parts[0], parts[1], parts[2:]
            index = None
            if rest and isinstance(rest[0], int | float):
                index, rest = int(rest[0]), rest[1:]
            base = ".".join(p for p in [mpath, rtype, name] if p)
            res = self.state.get(base + (f"[{index}]" if index is not None else "")) or self.state.get(base)
            if res is None:
                return UNKNOWN
            value: Any = res.attributes
            for p in rest:
                if isinstance(value, dict) and p in value:
                    value = value[p]
                else:
                    return UNKNOWN
            return value

        return resolve

    def resource(self, config_address: str) -> tuple[ModuleConfig, Path, Block] | None:
        """Find the block of ``module.x.aws_type.name`` (instance keys stripped)."""
        config_address = re.sub(r"\[[^\]]*\]", "", config_address)
        parts = config_address.split(".")
        mpath = ".".join(parts[:-2])
        mod = self.modules.get(mpath)
        if mod is None:
            return None
        hit = mod.resources.get((parts[-2], parts[-1]))
        if hit is None:
            return None
        return mod, hit[0], hit[1]

    def evaluate_block(self, mpath: str, path: Path, block: Block) -> dict[str, Any]:
        """Attribute values of a block (nested blocks become lists of dicts)."""
        scope = self.scope(mpath)
        out: dict[str, Any] = {}
        for name, attr in block.attributes.items():
            out[name] = evaluate(self.node(path, attr), scope)
        for nb in block.blocks:
            if nb.type in ("lifecycle", "dynamic", "provisioner", "connection"):
                continue
            out.setdefault(nb.type, []).append(self.evaluate_block(mpath, path, nb))
        return out

    def default_tags(self) -> dict[str, Any]:
        """Root provider ``default_tags`` (they show up on every resource in the live cloud)."""
        mod = self.modules[""]
        for f, pb in mod.providers:
            for dt in pb.nested("default_tags"):
                if "tags" in dt.attributes:
                    v = evaluate(self.node(f, dt.attributes["tags"]), self.scope(""))
                    if isinstance(v, dict):
                        return v
        return {}

    def all_resources(self) -> dict[str, dict[str, Any]]:
        """Every resource block's evaluated attributes, keyed by config address."""
        out = {}
        for mpath, mod in self.modules.items():
            for (rtype, rname), (f, b) in mod.resources.items():
                addr = ".".join(p for p in [mpath, rtype, rname] if p)
                out[addr] = self.evaluate_block(mpath, f, b)
        return out

    def snapshot(self) -> dict[Path, str]:
        return dict(self.texts)
