"""The NSync entry point: ``reconcile(workspace)`` -> proposals. services/ schedules it (beat)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from iac.config import Config
from iac.drift import DriftGroup, detect
from iac.models import Intent, Proposal, ReconcileResult, TraceRecord, Workspace
from iac.patch import PatchOptions, patch_groups
from iac.rules import no_config_reason
from iac.state import State, load_state
from iac.traces import TraceReadReport, read_source
from iac.verify import LiveReader, check_fmt_of_patch_lines, fmt_text, verify_against_live

# Alternatives a proposal carries (pass@k): the same drift written with other strategies.
STRATEGIES: list[tuple[str, PatchOptions]] = [
    ("primary", PatchOptions()),
    ("tfvars_first_merge_first", PatchOptions(unset_var_target="tfvars", merge_target="first", shared_target="source")),
    ("module_default_separate_rules", PatchOptions(module_var_target="default", sg_style="separate")),
]


def drift_keys(intents: list[Intent]) -> list[tuple[str, str, str]]:
    """(address, attribute, key) triples the live cloud can be compared on."""
    out = []
    for it in intents:
        if not it.address:
            continue
        if it.kind in ("tag_set", "tag_unset"):
            out.append((it.address, "tags", str(it.value[0])))
        elif it.kind in ("rule_add", "rule_remove"):
            out.append((it.address, it.attribute, ""))
        elif it.kind in ("set", "sub_set") and it.address and not it.resource_type.startswith("aws_s3_bucket_"):
            out.append((it.address, it.attribute, ""))
    return out


def _proposal_id(group: DriftGroup, note: str) -> str:
    ids = ",".join(r.event_id for r in group.records)
    return hashlib.sha1(f"{group.key}:{ids}:{note}".encode()).hexdigest()[:16]


def build_proposals(
    workspace: Workspace,
    groups: list[DriftGroup],
    state: State,
    *,
    formatter: Callable[[str], str] | None = fmt_text,
    strategies: list[tuple[str, PatchOptions]] | None = None,
) -> list[Proposal]:
    proposals = []
    for group in groups:
        variants: list[Proposal] = []
        seen: set[str] = set()
        for note, options in strategies or STRATEGIES:
            result = patch_groups(workspace.terraform_dir, [group], state, options=options, formatter=formatter)
            if result.diff in seen and variants:
                continue
            seen.add(result.diff)
            variants.append(Proposal(
                id=_proposal_id(group, note), addresses=[group.address or group.key], diff=result.diff,
                changes=result.changes, records=group.records, files={p: t for p, t in result.files.items()},
                instructions=result.instructions, needs_person=result.needs_person + result.errors,
                intents=group.intents, rank_note=note,
                verification={"errors": result.errors},
            ))
        primary = variants[0]
        primary.alternatives = variants[1:]
        proposals.append(primary)
    return proposals


def verify_proposal(
    proposal: Proposal, workspace: Workspace, state: State, *, reader: LiveReader | None = None
) -> dict[str, Any]:
    """fmt -check on the patched files, re-read + resolve the patched config, compare with live."""
    base = Path(workspace.terraform_dir).resolve()
    cfg_root = base
    files = {Path(p): t for p, t in proposal.files.items()}
    out: dict[str, Any] = {}
    # fmt is judged on the lines the patch wrote only: upstream projects are not all fmt-clean, and
    # the patch deliberately leaves their other lines alone (no collateral edits)
    out["fmt_ok"], _ = check_fmt_of_patch_lines(base, files) if files else (True, "")
    texts = dict(files)
    config = Config(cfg_root, texts=texts, state=state)
    keys = drift_keys(proposal.intents)
    if reader is not None and keys:
        out["live"] = verify_against_live(config, state, reader, keys)
    out["plan"] = {"status": "skipped", "reason": "no provider installed; providers cannot be downloaded here"}
    out["ok"] = bool(out["fmt_ok"]) and out.get("live", {"ok": True})["ok"] and not proposal.needs_person
    # "error": the live cloud could not be read (throttled, denied, unreachable), so nothing is known;
    # distinct from "failed" (read fine, and the patch does not match it)
    live_status = out.get("live", {}).get("status")
    out["status"] = "ok" if out["ok"] else "error" if live_status == "error" else "failed"
    if live_status == "error":
        out["reason"] = out["live"]["reason"]
    return out


def reconcile(
    workspace: Workspace,
    *,
    since: datetime | None = None,
    kb: Any = None,
    llm: Any = None,
    session: Any = None,
    records: list[TraceRecord] | None = None,
    verify: bool = True,
    formatter: Callable[[str], str] | None = fmt_text,
) -> ReconcileResult:
    """Read the trace after the watermark, detect drift, propose verified patches.

    ``session`` is a boto3 session used for S3/LookupEvents sources and live verification;
    ``records`` bypasses reading (the simulator hands its trace over directly).
    """
    since = since or workspace.watermark
    report = TraceReadReport()
    if records is None:
        records = read_source(workspace.trace_source, since=since, session=session,
                              endpoint_url=workspace.endpoint_url, report=report)
    elif since is not None:
        records = [r for r in records if r.event_time > since]
    state = load_state(workspace.state_file)
    llm_tokens_before = getattr(llm, "tokens_used", 0)
    learned: list[dict[str, Any]] = []

    def resolve_unknown(rec: TraceRecord) -> list[Intent] | None:
        if kb is not None:
            intents = kb.suggest(rec)
            if intents is not None:
                return intents
        if llm is not None:
            intents, template = llm.infer(rec)
            if template is not None:
                learned.append(template)
            return intents
        return None

    drift = detect(records, state, iac_principals=workspace.iac_principals, unknown_resolver=resolve_unknown)
    proposals = build_proposals(workspace, drift.groups, state, formatter=formatter)
    if kb is not None:
        for p in proposals:
            ranked = kb.rank([p, *p.alternatives])
            if ranked[0] is not p:
                head = ranked[0]
                head.alternatives = [x for x in ranked[1:]]
                p.alternatives = []
                proposals[proposals.index(p)] = head
    reader = LiveReader(session, endpoint_url=workspace.endpoint_url, region=workspace.region) if (verify and session) else None
    if verify:
        for p in proposals:
            p.verification.update(verify_proposal(p, workspace, state, reader=reader))
    unknown = Counter(r.event_name for r in drift.unknown)
    needs_person = [f"{r.event_name} ({r.event_id}): no rule, no past reconciliation, no LLM answer" for r in drift.unknown]
    for p in proposals:
        needs_person.extend(p.needs_person)
    tokens = getattr(llm, "tokens_used", 0) - llm_tokens_before
    skipped = dict(drift.skipped)
    if report.malformed:
        skipped["malformed"] = sum(report.malformed.values())
    watermark = max((r.event_time for r in records), default=since)
    result = ReconcileResult(
        proposals=proposals, records_read=len(records), drift_calls=drift.drift_calls, unknown_calls=dict(unknown),
        unmanaged=drift.unmanaged, needs_person=needs_person, watermark=watermark, llm_tokens=tokens,
        skipped=skipped, outcomes=drift.outcomes,
        no_config_reasons={name: no_config_reason(name) or "the call's rule found nothing Terraform manages in it"
                           for name in drift.outcomes.get("no_config_effect", {})},
    )
    result.learned_templates = learned  # type: ignore[attr-defined]
    return result
