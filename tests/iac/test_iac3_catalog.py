"""The wide rule catalog (issue 11, item 4): real CloudTrail shapes map to a rule or a reasoned no-config-effect,
and changes we can name but not value reach a person instead of netting out."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iac.drift import detect
from iac.models import TraceRecord
from iac.patch import patch_groups
from iac.rules import RULES, canonical_event, infer, is_read, no_config_reason
from iac.state import load_state, new_state_document
from iac.traces import read_path

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CLOUDTRAIL = Path("/work/shared/data/cloudtrail")


def _rec(source, name, request, response=None, i=0):
    return TraceRecord(event_id=f"e{i}", event_time=T0 + timedelta(seconds=i), event_source=f"{source}.amazonaws.com",
                       event_name=name, user_agent="console.amazonaws.com", request=request, response=response or {})


@pytest.mark.parametrize("record,kind,rtype,ident", [
    # shapes copied from real CloudTrail (stratus-red-team, Apache-2.0): EC2's newer APIs wrap the request
    (_rec("ec2", "DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"tag": 1, "content": "fl-064ed3a785e4a37ef"}}}),
     "delete", "aws_flow_log", "fl-064ed3a785e4a37ef"),
    (_rec("ec2", "DeleteNatGateway", {"DeleteNatGatewayRequest": {"NatGatewayId": "nat-0dd264ee104155137"}}),
     "delete", "aws_nat_gateway", "nat-0dd264ee104155137"),
    (_rec("iam", "CreateAccessKey", {"userName": "u1"}, {"accessKey": {"accessKeyId": "AKIA1", "status": "Active"}}),
     "create", "aws_iam_access_key", "AKIA1"),
    (_rec("cloudtrail", "StopLogging", {"name": "arn:aws:cloudtrail:us-east-1:1:trail/main"}),
     "set", "aws_cloudtrail", "main"),
    (_rec("kms", "PutKeyPolicy", {"keyId": "k-1", "policyName": "default", "policy": '{"Statement": []}'}),
     "set", "aws_kms_key", "k-1"),
    (_rec("ec2", "CreateNetworkAclEntry", {"networkAclId": "acl-1", "ruleNumber": 100, "egress": False}),
     "review", "aws_network_acl", "acl-1"),
    (_rec("ec2", "ModifyInstanceAttribute", {"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"}),
     "review", "aws_instance", "i-1"),
    (_rec("lambda", "UpdateFunctionConfiguration20150331v2", {"functionName": "f", "layers": ["arn:aws:lambda:l:1"]}),
     "set", "aws_lambda_function", "f"),
    (_rec("iam", "TagUser", {"userName": "bob", "tags": [{"key": "team", "value": "a"}]}),
     "tag_set", "aws_iam_user", "bob"),
    (_rec("rds", "ModifyDBParameterGroup", {"dBParameterGroupName": "pg"}), "review", "aws_db_parameter_group", "pg"),
])
def test_real_shapes_map_to_intents(record, kind, rtype, ident):
    intents = infer(record)
    assert intents, record.event_name
    assert (intents[0].kind, intents[0].resource_type, intents[0].resource_id) == (kind, rtype, ident)


def test_no_config_effect_has_a_reason_and_unknown_stays_unsupported():
    rec = _rec("ssm", "UpdateInstanceInformation", {"instanceId": "i-1"})
    assert infer(rec) == [] and "agent" in no_config_reason("UpdateInstanceInformation")
    assert infer(_rec("madeup", "FrobnicateWidget", {})) is None
    assert no_config_reason("FrobnicateWidget") is None


@pytest.mark.skipif(not CLOUDTRAIL.is_dir(), reason="real CloudTrail corpora not present")
def test_every_mutating_name_in_the_real_corpora_is_handled():
    missing = set()
    for f in CLOUDTRAIL.rglob("*.json*"):
        if f.name == "STATS.json":
            continue
        for r in read_path(f):
            if is_read(r):
                continue
            name = canonical_event(r.event_name)
            if (r.service, name) not in RULES and not no_config_reason(name):
                missing.add(f"{r.service}:{name}")
            else:
                infer(r)  # and no rule crashes on a real record
    assert not missing


def _state(tmp_path, entries):
    p = tmp_path / "terraform.tfstate"
    p.write_text(json.dumps(new_state_document(entries)))
    return load_state(p)


def test_removed_bucket_encryption_reaches_a_person_not_netted_out(tmp_path):
    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" "b" {\n  bucket = "bk"\n}\n')
    state = _state(tmp_path, [{"type": "aws_s3_bucket", "name": "b", "attributes": {"id": "bk", "bucket": "bk"}}])
    rep = detect([_rec("s3", "DeleteBucketEncryption", {"bucketName": "bk"})], state)
    assert len(rep.groups) == 1 and rep.groups[0].intents[0].kind == "review"
    assert rep.outcomes == {"proposal": {"DeleteBucketEncryption": 1}}
    res = patch_groups(tmp_path, rep.groups, state)
    assert not res.files and "removed out of band" in res.needs_person[0]


def test_two_nacl_entries_are_two_review_items(tmp_path):
    state = _state(tmp_path, [{"type": "aws_network_acl", "name": "n", "attributes": {"id": "acl-1"}}])
    recs = [_rec("ec2", "CreateNetworkAclEntry", {"networkAclId": "acl-1", "ruleNumber": 100}, i=1),
            _rec("ec2", "DeleteNetworkAclEntry", {"networkAclId": "acl-1", "ruleNumber": 200}, i=2)]
    rep = detect(recs, state)
    assert [it.kind for g in rep.groups for it in g.intents] == ["review", "review"]


def test_eventbridge_envelope_is_read_as_its_cloudtrail_event():
    from iac.traces import normalize

    event = {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
             "detail": {"eventName": "CreateTags", "eventSource": "ec2.amazonaws.com", "eventTime": "2025-01-01T00:00:00Z",
                        "eventID": "x1", "requestParameters": {"resourcesSet": {"items": [{"resourceId": "i-1"}]},
                                                               "tagSet": {"items": [{"key": "k", "value": "v"}]}}}}
    rec = normalize(event)
    assert (rec.event_name, rec.service, rec.event_id) == ("CreateTags", "ec2", "x1")
    assert infer(rec)[0].resource_id == "i-1"


def test_default_policy_version_switch_and_topic_policy_are_not_dropped():
    switch = infer(_rec("iam", "SetDefaultPolicyVersion", {"policyArn": "arn:aws:iam::1:policy/p", "versionId": "v3"}))
    assert [(i.kind, i.resource_type) for i in switch] == [("review", "aws_iam_policy")]
    topic = infer(_rec("sns", "SetTopicAttributes", {"topicArn": "arn:aws:sns:us-east-1:1:t", "attributeName": "Policy",
                                                     "attributeValue": '{"Statement": []}'}))
    assert [(i.kind, i.attribute, i.value) for i in topic] == [("set", "policy", {"Statement": []})]
