"""A revoked rule managed by a separate aws_security_group_rule is patched, never silently dropped."""

import json
from datetime import UTC, datetime
from pathlib import Path

from iac.drift import detect
from iac.models import TraceRecord
from iac.patch import patch_groups
from iac.state import load_state, new_state_document
from iac.verify import fmt_text

T0 = datetime(2025, 1, 1, tzinfo=UTC)

MAIN = '''resource "aws_security_group" "web" {
  name = "web"
}

resource "aws_security_group_rule" "ssh" {
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  from_port         = 22
  to_port           = 22
  protocol          = "tcp"
  cidr_blocks       = ["10.0.0.0/8"]
}

resource "aws_security_group_rule" "https" {
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  cidr_blocks       = ["10.0.0.0/8", "192.168.0.0/16"]
}
'''


def _revoke(port: int, cidr: str, eid: str) -> TraceRecord:
    return TraceRecord(
        event_id=eid, event_time=T0, event_source="ec2.amazonaws.com", event_name="RevokeSecurityGroupIngress",
        principal_arn="arn:aws:iam::1:user/alice",
        request={"groupId": "sg-1", "ipPermissions": {"items": [
            {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipRanges": {"items": [{"cidrIp": cidr}]}}]}})


def _project(tmp_path: Path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "main.tf").write_text(MAIN)
    sp = tmp_path / "terraform.tfstate"
    sp.write_text(json.dumps(new_state_document([
        {"type": "aws_security_group", "name": "web", "attributes": {"id": "sg-1", "ingress": [], "egress": []}},
        {"type": "aws_security_group_rule", "name": "ssh", "attributes": {
            "id": "sgrule-1", "type": "ingress", "security_group_id": "sg-1", "from_port": 22, "to_port": 22,
            "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"]}},
        {"type": "aws_security_group_rule", "name": "https", "attributes": {
            "id": "sgrule-2", "type": "ingress", "security_group_id": "sg-1", "from_port": 443, "to_port": 443,
            "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8", "192.168.0.0/16"]}},
    ])))
    return root, load_state(sp)


def test_revoked_separate_rule_is_detected_and_removed(tmp_path):
    root, state = _project(tmp_path)
    drift = detect([_revoke(22, "10.0.0.0/8", "e1")], state)
    assert len(drift.groups) == 1, (drift.skipped, drift.unknown)  # was: no group at all
    res = patch_groups(root, drift.groups, state, formatter=fmt_text)
    assert not res.errors and not res.needs_person, (res.errors, res.needs_person)
    text = res.files[(root / "main.tf").resolve()]
    assert 'resource "aws_security_group_rule" "ssh"' not in text
    assert 'resource "aws_security_group_rule" "https"' in text
    assert "terraform state rm 'aws_security_group_rule.ssh'" in res.instructions


def test_revoking_one_source_of_a_multi_source_rule_keeps_the_others(tmp_path):
    root, state = _project(tmp_path)
    drift = detect([_revoke(443, "192.168.0.0/16", "e2")], state)
    assert len(drift.groups) == 1
    res = patch_groups(root, drift.groups, state, formatter=fmt_text)
    assert not res.errors and not res.needs_person, (res.errors, res.needs_person)
    changed = [ln for ln in res.diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert changed == ['-  cidr_blocks       = ["10.0.0.0/8", "192.168.0.0/16"]',
                       '+  cidr_blocks       = ["10.0.0.0/8"]']


def test_revoke_of_a_rule_nobody_manages_goes_to_a_person(tmp_path):
    root, state = _project(tmp_path)
    # The revoked rule is in the group's inline state only, nowhere in the configuration.
    state.find("sg-1", types=("aws_security_group",)).attributes["ingress"] = [
        {"protocol": "tcp", "from_port": 8080, "to_port": 8080, "cidr_blocks": ["1.2.3.0/24"]}]
    drift = detect([_revoke(8080, "1.2.3.0/24", "e3")], state)
    res = patch_groups(root, drift.groups, state, formatter=fmt_text)
    assert not res.files and res.needs_person and "not found in the configuration" in res.needs_person[0]


def _authorize(port: int, cidr: str, eid: str) -> TraceRecord:
    rec = _revoke(port, cidr, eid)
    rec.event_name = "AuthorizeSecurityGroupIngress"
    return rec


def test_every_relevant_record_has_an_outcome(tmp_path):
    """Nothing dropped silently: unsupported calls, unknown resources and net-zero pairs are all counted."""
    _root, state = _project(tmp_path)
    odd = TraceRecord(event_id="e9", event_time=T0, event_source="widgets.amazonaws.com",
                      event_name="FrobnicateWidget", principal_arn="arn:aws:iam::1:user/alice")
    elsewhere = _revoke(22, "10.0.0.0/8", "e5")
    elsewhere.request = dict(elsewhere.request, groupId="sg-unknown")
    records = [_revoke(22, "10.0.0.0/8", "e1"), odd, elsewhere,
               _authorize(8443, "10.9.0.0/16", "e6"), _revoke(8443, "10.9.0.0/16", "e7")]
    drift = detect(records, state)
    assert drift.outcomes == {
        "proposal": {"RevokeSecurityGroupIngress": 1},
        "unsupported": {"FrobnicateWidget": 1},
        "unmatched_resource": {"RevokeSecurityGroupIngress": 1},
        "netted_out": {"AuthorizeSecurityGroupIngress": 1, "RevokeSecurityGroupIngress": 1},
    }
    assert sum(sum(v.values()) for v in drift.outcomes.values()) == len(records)


def test_reconcile_result_reports_outcomes():
    from iac.models import ReconcileResult

    r = ReconcileResult(proposals=[], records_read=1, drift_calls=0, unknown_calls={"X": 1}, unmanaged=[],
                        needs_person=[], watermark=None, outcomes={"unsupported": {"X": 1}})
    assert r.to_dict()["outcomes"] == {"unsupported": {"X": 1}}
