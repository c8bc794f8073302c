"""Terraform state (format v4 JSON): which cloud identifiers belong to which Terraform address.

A trace names resources by id (``sg-...``), ARN, name or tag; the state is the only place that
binds those to addresses, so every identifying attribute is indexed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Attributes whose value identifies a resource in API calls.
IDENTIFYING = (
    "id", "arn", "name", "bucket", "identifier", "function_name", "role", "group_id",
    "security_group_id", "instance_id", "db_instance_identifier", "load_balancer_arn",
    "policy_arn", "unique_id", "function_arn", "invoke_arn", "qualified_arn",
)


@dataclass
class StateResource:
    address: str  # module.network.aws_instance.bastion or aws_subnet.private[0]
    type: str
    name: str
    module: str  # "" for root, "module.network" otherwise
    index: Any
    attributes: dict[str, Any]

    @property
    def config_address(self) -> str:
        """Address without instance keys: what the configuration block is named."""
        return ".".join(p for p in [self.module_path, self.type, self.name] if p)

    @property
    def module_path(self) -> str:
        import re

        return re.sub(r"\[[^\]]*\]", "", self.module)


@dataclass
class State:
    resources: list[StateResource]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    _by_ident: dict[str, list[StateResource]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for res in self.resources:
            for key in IDENTIFYING:
                value = res.attributes.get(key)
                if isinstance(value, str) and value:
                    self._by_ident.setdefault(value, []).append(res)
            tags = res.attributes.get("tags") or {}
            if isinstance(tags, dict) and tags.get("Name"):
                self._by_ident.setdefault("tag:Name=" + str(tags["Name"]), []).append(res)

    def find(self, identifier: str, *, types: tuple[str, ...] | None = None) -> StateResource | None:
        """The resource an API identifier names, preferring ``types`` in the given order."""
        if not identifier:
            return None
        candidates = self._by_ident.get(identifier) or []
        if not candidates and identifier.startswith("arn:"):
            # ARNs of sub-resources (e.g. role/path/name) -> try the last path component.
            candidates = self._by_ident.get(identifier.rsplit("/", 1)[-1]) or []
        if not candidates:
            return None
        if types:
            for t in types:
                for c in candidates:
                    if c.type == t:
                        return c
            return None
        return candidates[0]

    def by_type(self, resource_type: str) -> list[StateResource]:
        return [r for r in self.resources if r.type == resource_type]

    def get(self, address: str) -> StateResource | None:
        for r in self.resources:
            if r.address == address:
                return r
        return None


def _index_suffix(index: Any) -> str:
    if index is None:
        return ""
    if isinstance(index, int):
        return f"[{index}]"
    return f'["{index}"]'


class StateFileError(ValueError):
    """A state file that cannot be read; the message names the file (and the line for bad JSON)."""


def load_state(path: str | Path) -> State:
    """Parse a v4 state file; data sources are skipped (they are reads, never drift)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise StateFileError(f"{path}: state file does not exist") from None
    except UnicodeDecodeError as exc:
        raise StateFileError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise StateFileError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
                             "truncated or not a Terraform state file") from None
    if not isinstance(raw, dict) or raw.get("version") != 4:
        version = raw.get("version") if isinstance(raw, dict) else None
        raise StateFileError(f"{path}: unsupported state version {version!r} (need 4)")
    resources: list[StateResource] = []
    for res in raw.get("resources", []):
        if res.get("mode", "managed") != "managed":
            continue
        module = res.get("module", "") or ""
        for inst in res.get("instances", []):
            index = inst.get("index_key")
            address = ".".join(p for p in [module, res["type"], res["name"]] if p) + _index_suffix(index)
            resources.append(
                StateResource(
                    address=address, type=res["type"], name=res["name"], module=module,
                    index=index, attributes=dict(inst.get("attributes") or {}),
                )
            )
    return State(resources=resources, raw=raw)


def new_state_document(resources: list[dict[str, Any]], *, serial: int = 1) -> dict[str, Any]:
    """A v4 state document from ``{"type","name","module","index","attributes"}`` entries.

    Used by the drift injector to write the state Terraform would have written after apply.
    """
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in resources:
        key = (r.get("module", ""), r["type"], r["name"])
        inst = {"schema_version": 0, "attributes": r["attributes"], "sensitive_attributes": []}
        if r.get("index") is not None:
            inst["index_key"] = r["index"]
        grouped.setdefault(key, []).append(inst)
    out = []
    for (module, rtype, name), instances in grouped.items():
        entry: dict[str, Any] = {
            "mode": "managed", "type": rtype, "name": name,
            "provider": 'provider["registry.terraform.io/hashicorp/aws"]', "instances": instances,
        }
        if module:
            entry["module"] = module
        out.append(entry)
    return {
        "version": 4, "terraform_version": "1.0.3", "serial": serial,
        "lineage": "nsync-injected", "outputs": {}, "resources": out,
    }
