"""Drift detection: from normalized trace records to per-resource groups of net intents.

Order of work (each step is why the next one can be simple): drop what is not drift (reads,
failures, Terraform's own calls, power/data operations) -> turn calls into attribute intents ->
bind them to Terraform addresses through the state -> group per resource and time window -> order,
collapse retries, and cancel what nets out against the state (create+delete, authorize+revoke,
a value set and set back).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from iac.models import Intent, TraceRecord
from iac.rules import OPERATIONAL, canonical_event, infer, is_read, normalize_protocol
from iac.state import State, StateResource

COMPANIONS = {  # S3 settings that live in their own resource since AWS provider v4
    "aws_s3_bucket_versioning", "aws_s3_bucket_policy", "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_public_access_block",
}


@dataclass
class DriftGroup:
    """Net out-of-band changes of one resource in one time window."""

    key: str  # address, or resource id for unmanaged/new resources
    address: str | None
    resource_type: str
    resource_id: str
    intents: list[Intent] = field(default_factory=list)
    records: list[TraceRecord] = field(default_factory=list)
    new_resource: bool = False


@dataclass
class DriftReport:
    groups: list[DriftGroup]
    skipped: Counter
    unknown: list[TraceRecord]
    unmanaged: list[dict[str, Any]]
    drift_calls: int
    # Where every drift-relevant record ended, by event name: "proposal", "no_config_effect",
    # "unsupported", "unmatched_resource", "netted_out", "already_managed", "retry_collapsed", and "unexplained" (none
    # of these: a bug, but shown rather than lost). The platform shows these so nothing is silent.
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)


def is_iac_call(record: TraceRecord, iac_principals: tuple[str, ...]) -> bool:
    """Terraform signs its requests with ``Terraform/x.y`` in the user agent; some teams also run
    it under a dedicated role, so a configured principal (ARN or role/user name) counts too."""
    if "terraform/" in record.user_agent.lower():
        return True
    arn = record.principal_arn
    return any(p and (arn == p or arn.endswith("/" + p) or f"/{p}/" in arn) for p in iac_principals)


def classify(record: TraceRecord, iac_principals: tuple[str, ...]) -> str:
    """'' when the record is drift-relevant, otherwise why it is skipped."""
    if record.error_code:
        return "failed"
    if is_read(record):
        return "read"
    if is_iac_call(record, iac_principals):
        return "iac"
    if canonical_event(record.event_name) in OPERATIONAL:
        return "operational"
    return ""


# ----------------------------------------------------------------- state values
def state_rules(attrs: dict[str, Any]) -> set[tuple]:
    """Normalized rule tuples of a security group as Terraform recorded it."""
    out: set[tuple] = set()
    for direction in ("ingress", "egress"):
        for r in attrs.get(direction) or []:
            out |= rule_tuples(direction, r)
    return out


SEPARATE_RULE_TYPES = ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule",
                       "aws_vpc_security_group_egress_rule")


def separate_rule_tuples(res: StateResource) -> set[tuple]:
    """Rule tuples of one separate rule resource (the split form of a security group's rules)."""
    a = res.attributes
    if res.type == "aws_security_group_rule":
        a = dict(a)
        if a.get("source_security_group_id"):
            a["security_groups"] = [a["source_security_group_id"]]
        return rule_tuples(str(a.get("type", "")), a)
    direction = "ingress" if res.type.endswith("ingress_rule") else "egress"
    b = {"protocol": a.get("ip_protocol"), "from_port": a.get("from_port"), "to_port": a.get("to_port"),
         "cidr_blocks": [a["cidr_ipv4"]] if a.get("cidr_ipv4") else [],
         "ipv6_cidr_blocks": [a["cidr_ipv6"]] if a.get("cidr_ipv6") else [],
         "security_groups": [a["referenced_security_group_id"]] if a.get("referenced_security_group_id") else [],
         "prefix_list_ids": [a["prefix_list_id"]] if a.get("prefix_list_id") else []}
    return rule_tuples(direction, b)


def separate_rules(state: State, sg_id: str) -> list[tuple[StateResource, set[tuple]]]:
    """Separate rule resources attached to security group ``sg_id``, with their rule tuples.

    Projects that manage rules as their own resources leave the group's inline ``ingress`` empty in
    the state; without these, a revoked rule looked like no change at all and vanished silently.
    """
    out = []
    for rtype in SEPARATE_RULE_TYPES:
        for res in state.by_type(rtype):
            if res.attributes.get("security_group_id") == sg_id:
                out.append((res, separate_rule_tuples(res)))
    return out


def rule_tuples(direction: str, r: dict[str, Any]) -> set[tuple]:
    proto = normalize_protocol(r.get("protocol"))
    fp, tp = (0, 0) if proto == "-1" else (int(r.get("from_port") or 0), int(r.get("to_port") or 0))
    out = set()
    for c in r.get("cidr_blocks") or []:
        out.add((direction, proto, fp, tp, "cidr:" + str(c)))
    for c in r.get("ipv6_cidr_blocks") or []:
        out.add((direction, proto, fp, tp, "cidr6:" + str(c)))
    for g in r.get("security_groups") or []:
        out.add((direction, proto, fp, tp, "sg:" + str(g)))
    for p in r.get("prefix_list_ids") or []:
        out.add((direction, proto, fp, tp, "pl:" + str(p)))
    if r.get("self"):
        out.add((direction, proto, fp, tp, "self"))
    return out


def _dig(attrs: dict[str, Any], dotted: str) -> Any:
    value: Any = attrs
    for part in dotted.split("."):
        while isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    while isinstance(value, list) and dotted.endswith(("status", "sse_algorithm")):
        value = value[0] if value else None
    return value


def canonical(value: Any) -> Any:
    """Comparable form: JSON text parsed, numbers as text, so "1" == 1 and policy key order is moot."""
    if isinstance(value, str):
        s = value.strip()
        if s.startswith(("{", "[")):
            try:
                return canonical(json.loads(s))
            except json.JSONDecodeError:
                return value
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def current_value(intent: Intent, res: StateResource | None, state: State) -> Any:
    """What the state says about the intent's key, in the same shape as ``net_value``."""
    attrs = res.attributes if res else {}
    kind = intent.kind
    if kind == "set":
        return _dig(attrs, intent.attribute)
    if kind in ("tag_set", "tag_unset"):
        return (attrs.get("tags") or {}).get(intent.value[0])
    if kind in ("rule_add", "rule_remove"):
        sg_id = str(attrs.get("id") or intent.resource_id)
        return intent.value in state_rules(attrs) or any(
            intent.value in tuples for _r, tuples in separate_rules(state, sg_id))
    if kind in ("attach", "detach"):
        return find_attachment(state, attrs.get("name") or intent.resource_id, intent.value) is not None
    if kind == "sub_set":
        comp = state.find(intent.resource_id, types=(intent.resource_type,))
        return _dig(comp.attributes, intent.attribute) if comp else None
    if kind == "inline_policy":
        comp = next((r for r in state.by_type("aws_iam_role_policy")
                     if r.attributes.get("name") == intent.attribute
                     and r.attributes.get("role") in (intent.resource_id, attrs.get("name"))), None)
        return comp.attributes.get("policy") if comp else None
    return None


def net_value(intent: Intent) -> Any:
    if intent.kind in ("set", "sub_set", "inline_policy"):
        return intent.value
    if intent.kind == "review":  # a change we can name but not value: never nets out against the state
        return ("review", intent.value)
    if intent.kind == "tag_set":
        return intent.value[1]
    if intent.kind == "tag_unset":
        return None
    if intent.kind in ("rule_add", "attach"):
        return True
    if intent.kind in ("rule_remove", "detach"):
        return False
    return None


def find_attachment(state: State, role: str, policy_arn: str) -> StateResource | None:
    for r in state.by_type("aws_iam_role_policy_attachment"):
        if r.attributes.get("role") == role and r.attributes.get("policy_arn") == policy_arn:
            return r
    return None


# ----------------------------------------------------------------- detection
def _bind(intent: Intent, state: State) -> StateResource | None:
    """Bind an intent to the state resource it changes (companions bind to their bucket)."""
    if intent.resource_type in COMPANIONS or intent.resource_type.startswith("aws_s3_bucket_"):
        owner = state.find(intent.resource_id, types=("aws_s3_bucket",))
        if owner is not None:
            comp = state.find(intent.resource_id, types=(intent.resource_type,))
            intent.address = comp.address if comp else owner.address
        return owner
    types = (intent.resource_type,) if intent.resource_type else None
    res = state.find(intent.resource_id, types=types)
    if res is None and intent.resource_type:
        res = state.find(intent.resource_id)
    if res is not None:
        intent.address = res.address
        intent.resource_type = res.type
    return res


def _collapse_retries(records: list[TraceRecord]) -> list[TraceRecord]:
    """Consecutive identical calls (SDK/console retries) count once."""
    out: list[TraceRecord] = []
    for r in records:
        if out and out[-1].event_name == r.event_name and out[-1].request == r.request:
            continue
        out.append(r)
    return out


def detect(
    records: list[TraceRecord],
    state: State,
    *,
    iac_principals: tuple[str, ...] = (),
    window: timedelta = timedelta(hours=1),
    unknown_resolver: Callable[[TraceRecord], list[Intent] | None] | None = None,
) -> DriftReport:
    skipped: Counter = Counter()
    unknown: list[TraceRecord] = []
    relevant: list[TraceRecord] = []
    for r in records:
        why = classify(r, iac_principals)
        if why:
            skipped[why] += 1
        else:
            relevant.append(r)
    relevant.sort(key=lambda r: (r.event_time, r.event_id))
    before_collapse = relevant
    relevant = _collapse_retries(relevant)
    fate: dict[str, str] = {}

    unmanaged: list[dict[str, Any]] = []
    by_key: dict[str, list[tuple[Intent, StateResource | None]]] = {}
    created: dict[str, Intent] = {}
    for rec in relevant:
        intents = infer(rec)
        if intents is None and unknown_resolver is not None:
            intents = unknown_resolver(rec)
        if intents is None:
            unknown.append(rec)
            fate[rec.event_id] = "unsupported"
            continue
        if not intents:
            skipped["no_config_effect"] += 1
            fate[rec.event_id] = "no_config_effect"
            continue
        for it in intents:
            if it.kind == "create":
                if state.find(it.resource_id, types=(it.resource_type,)) is not None:
                    fate.setdefault(rec.event_id, "already_managed")
                    continue  # already managed: Terraform (or an import) got there first
                created[it.resource_id] = it
                by_key.setdefault("new:" + it.resource_id, []).append((it, None))
                continue
            if it.resource_id in created:
                by_key.setdefault("new:" + it.resource_id, []).append((it, None))
                continue
            res = _bind(it, state)
            if res is None:
                unmanaged.append({"event": rec.event_name, "resource_id": it.resource_id,
                                  "resource_type": it.resource_type, "event_id": rec.event_id})
                fate.setdefault(rec.event_id, "unmatched_resource")
                continue
            by_key.setdefault(res.address, []).append((it, res))

    groups: list[DriftGroup] = []
    for key, pairs in by_key.items():
        for window_pairs in _split_windows(pairs, window):
            group = _net(key, window_pairs, state)
            if group is not None:
                groups.append(group)
    drift_calls = sum(len(g.records) for g in groups)
    for g in groups:  # the records behind the intents that survived netting, not the whole window
        for it in g.intents:
            for r in it.records:
                fate[r.event_id] = "proposal"
    outcomes = record_outcomes(before_collapse, relevant, fate, intended={r.event_id
                               for pairs in by_key.values() for it, _r in pairs for r in it.records})
    return DriftReport(groups=groups, skipped=skipped, unknown=unknown, unmanaged=unmanaged, drift_calls=drift_calls,
                       outcomes=outcomes)


def record_outcomes(
    before_collapse: list[TraceRecord], relevant: list[TraceRecord], fate: dict[str, str], *, intended: set[str]
) -> dict[str, dict[str, int]]:
    """Count, by event name, where each drift-relevant record ended (see DriftReport.outcomes).

    A record whose intents all netted out against the state (set and set back, created then already
    imported) is "netted_out"; one that reached no bucket at all is "unexplained", never dropped.
    """
    kept = {r.event_id for r in relevant}
    out: dict[str, Counter] = {}
    for r in before_collapse:
        if r.event_id not in kept:
            bucket = "retry_collapsed"
        else:
            bucket = fate.get(r.event_id) or ("netted_out" if r.event_id in intended else "unexplained")
        out.setdefault(bucket, Counter())[r.event_name] += 1
    return {k: dict(v) for k, v in out.items()}


def _split_windows(pairs: list[tuple[Intent, Any]], window: timedelta) -> list[list[tuple[Intent, Any]]]:
    """A quiet gap longer than ``window`` starts a new change set (separate proposal)."""
    pairs = sorted(pairs, key=lambda p: p[0].records[0].event_time)
    out: list[list[tuple[Intent, Any]]] = []
    last = None
    for p in pairs:
        t = p[0].records[0].event_time
        if last is None or t - last > window:
            out.append([])
        out[-1].append(p)
        last = t
    return out


def _net(key: str, pairs: list[tuple[Intent, Any]], state: State) -> DriftGroup | None:
    records = sorted({id(r): r for it, _ in pairs for r in it.records}.values(), key=lambda r: r.event_time)
    first = pairs[0][0]
    if key.startswith("new:"):
        create = next((it for it, _ in pairs if it.kind == "create"), None)
        if create is None or any(it.kind == "delete" for it, _ in pairs):
            return None  # created and deleted again, or never created: nothing to codify
        attrs = dict(create.value or {})
        for it, _ in pairs:
            if it.kind == "tag_set":
                attrs.setdefault("tags", {})[it.value[0]] = it.value[1]
            elif it.kind == "tag_unset":
                (attrs.get("tags") or {}).pop(it.value[0], None)
            elif it.kind == "rule_add":
                attrs.setdefault("__rules__", set()).add(it.value)
            elif it.kind == "rule_remove":
                attrs.setdefault("__rules__", set()).discard(it.value)
            elif it.kind == "set":
                attrs[it.attribute] = it.value
        merged = Intent("create", None, create.resource_type, value=attrs, resource_id=create.resource_id,
                        source=create.source, records=records)
        return DriftGroup(key=key, address=None, resource_type=create.resource_type,
                          resource_id=create.resource_id, intents=[merged], records=records, new_resource=True)

    res: StateResource | None = pairs[0][1]
    if res is None:  # only "new:" groups pair intents with no state resource
        raise ValueError(f"drift group {key!r} has no state resource")
    if any(it.kind == "delete" and it.resource_type == res.type for it, _ in pairs):
        delete = next(it for it, _ in pairs if it.kind == "delete")
        delete.records = records
        return DriftGroup(key=key, address=res.address, resource_type=res.type, resource_id=first.resource_id,
                          intents=[delete], records=records)
    # tags_replace expands against the state: keys set to new values, keys not named removed.
    expanded: list[Intent] = []
    for it, r in pairs:
        if it.kind == "delete":  # a companion setting (S3 encryption, lifecycle ...) removed from a bucket that holds it
            expanded.append(Intent("review", it.address, it.resource_type, "", f"{it.resource_type} removed out of band "
                                   f"({', '.join(sorted({x.event_name for x in it.records}))})", it.resource_id, it.source,
                                   it.records))
        elif it.kind == "tags_replace":
            old = (r.attributes.get("tags") or {}) if r else {}
            for k, v in it.value.items():
                expanded.append(Intent("tag_set", it.address, it.resource_type, "tags", (k, v), it.resource_id, it.source, it.records))
            for k in old:
                if k not in it.value:
                    expanded.append(Intent("tag_unset", it.address, it.resource_type, "tags", (k, None), it.resource_id, it.source, it.records))
        else:
            expanded.append(it)
    final: dict[tuple, Intent] = {}
    supporting: dict[tuple, list[TraceRecord]] = {}
    for it in expanded:
        k = it.key()
        final.pop(k, None)  # re-insert keeps the order of the last write
        final[k] = it
        supporting.setdefault(k, []).extend(it.records)
    intents = []
    for k, it in final.items():
        if canonical(net_value(it)) == canonical(current_value(it, res, state)):
            continue  # set and set back / authorize then revoke: nets out against the state
        if it.kind == "tag_unset" and current_value(it, res, state) is None:
            continue
        it.records = sorted({id(r): r for r in supporting[k]}.values(), key=lambda r: r.event_time)
        intents.append(it)
    if not intents:
        return None
    return DriftGroup(key=key, address=res.address, resource_type=res.type, resource_id=first.resource_id,
                      intents=intents, records=records)
