"""Plain data types shared by every NSync step.

Kept free of boto3/hcl2 imports so that services/ can store and serve them (``to_dict``) without
pulling the heavy machinery in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass
class TraceRecord:
    """One CloudTrail event, normalized: whatever the source format, reconciliation sees this."""

    event_id: str
    event_time: datetime
    event_source: str  # "ec2.amazonaws.com"
    event_name: str  # "AuthorizeSecurityGroupIngress"
    region: str = ""
    user_agent: str = ""
    principal_arn: str = ""
    read_only: bool | None = None
    error_code: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def service(self) -> str:
        return self.event_source.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventID": self.event_id,
            "eventTime": self.event_time.isoformat(),
            "eventSource": self.event_source,
            "eventName": self.event_name,
            "awsRegion": self.region,
            "userAgent": self.user_agent,
            "principalArn": self.principal_arn,
            "sourceIPAddress": str(self.raw.get("sourceIPAddress") or ""),  # who changed it, from where
            "errorCode": self.error_code,
            "requestParameters": self.request,
            "responseElements": self.response,
        }


@dataclass
class Intent:
    """What a (group of) API call(s) meant, at attribute level, for one Terraform address.

    kind: "set" (attribute = value), "tag_set"/"tag_unset" (one tag key), "rule_add"/"rule_remove"
    (one security-group rule), "create" (new resource, ``value`` = attributes), "delete",
    "attach"/"detach" (IAM policy attachment), "sub_set" (a companion resource's setting, e.g. S3
    versioning lives in aws_s3_bucket_versioning).
    """

    kind: str
    address: str | None  # Terraform address, None when unmanaged
    resource_type: str
    attribute: str = ""
    value: Any = None
    resource_id: str = ""
    source: str = "rule"  # rule | kb | llm
    records: list[TraceRecord] = field(default_factory=list, repr=False)

    def key(self) -> tuple[str, str, str, str]:
        """Identity used to cancel/merge intents: the same key later overrides an earlier one."""
        sub = ""
        if self.kind in {"tag_set", "tag_unset"}:
            sub = str(self.value[0] if isinstance(self.value, tuple | list) else self.value)
        elif self.kind in {"rule_add", "rule_remove"}:
            sub = repr(self.value)
        elif self.kind in {"attach", "detach", "review"}:
            sub = str(self.value)
        family = {"tag_set": "tag", "tag_unset": "tag", "rule_add": "rule", "rule_remove": "rule",
                  "attach": "attach", "detach": "attach"}.get(self.kind, self.kind)
        return (self.address or self.resource_id, self.attribute, family, sub)


@dataclass
class Change:
    """One edit of the proposal with the reason a reviewer reads."""

    file: str
    address: str
    attribute: str
    explanation: str
    strategy: str  # literal | variable_default | tfvars | local | module_argument | insert | new_block | remove_block
    record_ids: list[str] = field(default_factory=list)


@dataclass
class Proposal:
    """A reviewable patch for one resource group: diff + explanations + the trace records behind it."""

    id: str
    addresses: list[str]
    diff: str
    changes: list[Change]
    records: list[TraceRecord]
    # patched file -> new text; the key is a Path from the patcher, a str once loaded back from JSON
    files: dict[str | Path, str] = field(default_factory=dict, repr=False)
    instructions: list[str] = field(default_factory=list)  # terraform import / state rm commands
    needs_person: list[str] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list, repr=False)
    alternatives: list[Proposal] = field(default_factory=list, repr=False)
    verification: dict[str, Any] = field(default_factory=dict)
    llm_tokens: int = 0
    rank_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "addresses": list(self.addresses),
            "diff": self.diff,
            "changes": [asdict(c) for c in self.changes],
            "records": [r.to_dict() for r in self.records],
            "instructions": list(self.instructions),
            "needs_person": list(self.needs_person),
            "verification": dict(self.verification),
            "llm_tokens": self.llm_tokens,
            "alternatives": [a.to_dict() for a in self.alternatives],
        }


@dataclass
class Workspace:
    """Where one Terraform configuration lives and where its trace comes from.

    trace_source: a path (file or directory), ``s3://bucket/prefix`` or ``lookup-events``.
    """

    terraform_dir: Path
    state_file: Path
    trace_source: str
    watermark: datetime | None = None
    iac_principals: tuple[str, ...] = ()  # ARNs/role names whose calls are IaC's own
    region: str = "us-east-1"
    endpoint_url: str | None = None  # moto / localstack
    repo_dir: Path | None = None  # git repository holding terraform_dir (defaults to it)

    def __post_init__(self) -> None:
        self.terraform_dir = Path(self.terraform_dir)
        self.state_file = Path(self.state_file)
        if self.repo_dir is not None:
            self.repo_dir = Path(self.repo_dir)


@dataclass
class ReconcileResult:
    proposals: list[Proposal]
    records_read: int
    drift_calls: int
    unknown_calls: dict[str, int]  # eventName -> count of calls nobody understood
    unmanaged: list[dict[str, Any]]  # calls on resources no state knows
    needs_person: list[str]
    watermark: datetime | None
    llm_tokens: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # why records were dropped
    # outcome -> {eventName: count} for every drift-relevant record (iac.drift.DriftReport.outcomes);
    # "unexplained" lists records that reached no outcome, so none is dropped without a trace
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    # eventName -> why it changes no configuration, for every name counted under "no_config_effect"
    no_config_reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "proposals": [p.to_dict() for p in self.proposals],
            "no_config_reasons": dict(self.no_config_reasons),
            "records_read": self.records_read,
            "drift_calls": self.drift_calls,
            "unknown_calls": dict(self.unknown_calls),
            "unmanaged": list(self.unmanaged),
            "needs_person": list(self.needs_person),
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "llm_tokens": self.llm_tokens,
            "skipped": dict(self.skipped),
            "outcomes": {k: dict(v) for k, v in self.outcomes.items()},
        }
