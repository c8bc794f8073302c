from datetime import UTC, datetime, timedelta

from iac.drift import detect
from iac.state import State, StateResource
from iac.traces import normalize

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def ev(name, req, *, t=0, ua="console.amazonaws.com", source="ec2.amazonaws.com", error=None, eid=None, resp=None):
    raw = {"eventName": name, "eventSource": source, "eventTime": (T0 + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "userAgent": ua, "requestParameters": req, "eventID": eid or f"{name}-{t}",
           "userIdentity": {"arn": "arn:aws:iam::1:user/alice"}, "responseElements": resp}
    if error:
        raw["errorCode"] = error
    return normalize(raw)


def sg_state():
    rule = {"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"]}
    return State(resources=[
        StateResource("aws_security_group.web", "aws_security_group", "web", "", None,
                      {"id": "sg-1", "ingress": [rule], "egress": [], "tags": {"Env": "dev"}}),
        StateResource("aws_instance.web", "aws_instance", "web", "", None, {"id": "i-1", "instance_type": "t3.micro", "tags": {}}),
    ])


def perm(port, cidr):
    return {"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": port, "toPort": port,
                                                             "ipRanges": {"items": [{"cidrIp": cidr}]}}]}}


def test_filters_terraform_reads_failures_and_iac_principal():
    recs = [
        ev("AuthorizeSecurityGroupIngress", perm(443, "1.2.3.0/24"), ua="APN/1.0 HashiCorp/1.0 Terraform/1.5.7"),
        ev("DescribeInstances", {}, t=1),
        ev("AuthorizeSecurityGroupIngress", perm(80, "1.2.3.0/24"), t=2, error="InvalidPermission.Duplicate"),
        ev("AuthorizeSecurityGroupIngress", perm(8080, "1.2.3.0/24"), t=3),
    ]
    rep = detect(recs, sg_state())
    assert rep.skipped == {"iac": 1, "read": 1, "failed": 1}
    assert len(rep.groups) == 1 and rep.groups[0].intents[0].value[2] == 8080
    rep2 = detect(recs, sg_state(), iac_principals=("alice",))
    assert not rep2.groups and rep2.skipped["iac"] == 2


def test_noops_cancel_and_retries_collapse():
    recs = [
        ev("AuthorizeSecurityGroupIngress", perm(443, "1.2.3.0/24"), t=1),
        ev("RevokeSecurityGroupIngress", perm(443, "1.2.3.0/24"), t=2),
        ev("ModifyInstanceAttribute", {"instanceId": "i-1", "instanceType": {"value": "t3.large"}}, t=3),
        ev("ModifyInstanceAttribute", {"instanceId": "i-1", "instanceType": {"value": "t3.large"}}, t=4),  # retry
        ev("ModifyInstanceAttribute", {"instanceId": "i-1", "instanceType": {"value": "t3.micro"}}, t=5),  # set back
        ev("CreateTags", {"resourcesSet": {"items": [{"resourceId": "sg-1"}]}, "tagSet": {"items": [{"key": "Env", "value": "prod"}]}}, t=6),
        ev("CreateTags", {"resourcesSet": {"items": [{"resourceId": "sg-1"}]}, "tagSet": {"items": [{"key": "Env", "value": "dev"}]}}, t=7),
        ev("CreateSecurityGroup", {"groupName": "tmp", "vpcId": "vpc-1"}, t=8, resp={"groupId": "sg-9"}),
        ev("DeleteSecurityGroup", {"groupId": "sg-9"}, t=9),
    ]
    rep = detect(list(reversed(recs)), sg_state())  # out of order on purpose
    assert rep.groups == []


def test_unmanaged_and_order_and_new_resource():
    recs = [
        ev("CreateTags", {"resourcesSet": {"items": [{"resourceId": "i-zzz"}]}, "tagSet": {"items": [{"key": "a", "value": "b"}]}}),
        ev("CreateTags", {"resourcesSet": {"items": [{"resourceId": "sg-2"}]}, "tagSet": {"items": [{"key": "Name", "value": "x"}]}}, t=2),
        ev("CreateSecurityGroup", {"groupName": "x", "groupDescription": "d", "vpcId": "vpc-1"}, t=1, resp={"groupId": "sg-2"}),
        ev("ModifyInstanceAttribute", {"instanceId": "i-1", "instanceType": {"value": "t3.large"}}, t=3),
        ev("ModifyInstanceAttribute", {"instanceId": "i-1", "instanceType": {"value": "m5.large"}}, t=4),
    ]
    rep = detect(recs, sg_state())
    assert rep.unmanaged and rep.unmanaged[0]["resource_id"] == "i-zzz"
    by = {g.key: g for g in rep.groups}
    assert by["new:sg-2"].new_resource and by["new:sg-2"].intents[0].value["tags"] == {"Name": "x"}
    inst = by["aws_instance.web"].intents
    assert len(inst) == 1 and inst[0].value == "m5.large" and len(inst[0].records) == 2


def test_real_fixture_records_never_crash():
    from pathlib import Path

    from iac.traces import read_path

    recs = read_path(Path(__file__).resolve().parents[1] / "fixtures" / "iac" / "cloudtrail")
    rep = detect(recs, sg_state())
    total = sum(rep.skipped.values()) + len(rep.unknown) + rep.drift_calls + len(rep.unmanaged)
    assert total >= len(recs) - 5 and rep.skipped["read"] > 0
