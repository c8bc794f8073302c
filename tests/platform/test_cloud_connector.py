"""The EC2 connector against a real moto server: each action has its own, observable effect, and
credentials come from boto3's default chain unless the simulator or a test says otherwise."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.stub import Stubber

from services.connectors.cloud import Boto3Cloud

pytestmark = pytest.mark.integration


def _recording(cloud: Boto3Cloud) -> list[str]:
    """The API operations the connector calls, in order (botocore's before-call events)."""
    ops: list[str] = []
    for client in (cloud.ec2, cloud.autoscaling):
        client.meta.events.register("before-call", lambda model, **kw: ops.append(model.name))
    return ops


@pytest.fixture
def cloud(moto_endpoint) -> Boto3Cloud:
    return Boto3Cloud(endpoint_url=moto_endpoint, region="us-east-1", simulator=True, wait_delay_s=0.2)


@pytest.fixture
def ec2(moto_endpoint):
    return boto3.client("ec2", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def asg(moto_endpoint, ec2):
    """An Auto Scaling group of one instance launched from a launch template; returns (group, instance id)."""
    autoscaling = boto3.client("autoscaling", endpoint_url=moto_endpoint, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"web-{uuid.uuid4().hex[:6]}"
    ec2.create_launch_template(LaunchTemplateName=name,
                               LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=1, MaxSize=2, DesiredCapacity=1,
                                          LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
                                          AvailabilityZones=["us-east-1a"])
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return autoscaling, name, group["Instances"][0]["InstanceId"]


def _node(ec2) -> str:
    return ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]


def _state(ec2, instance_id: str) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _group_members(autoscaling, name: str) -> list[str]:
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return [i["InstanceId"] for i in group["Instances"]]


def test_reboot_is_reboot_instances(cloud, ec2):
    from sim.cloud import reboots_since

    node = _node(ec2)
    ops = _recording(cloud)
    _, cursor = reboots_since(0)
    cloud.execute("reboot", node, params={})
    assert ops == ["RebootInstances"]
    assert [i for _, i in reboots_since(cursor)[0]] == [node]  # moto's backend saw the reboot
    assert _state(ec2, node)["State"]["Name"] == "running"


def test_redeploy_stops_then_starts_on_new_hardware(cloud, ec2):
    from sim.cloud import reboots_since

    node = _node(ec2)
    ops = _recording(cloud)
    _, cursor = reboots_since(0)
    out = cloud.execute("redeploy", node, params={})
    assert ops[0] == "StopInstances" and ops[-1] == "StartInstances" and "RebootInstances" not in ops
    assert set(ops[1:-1]) <= {"DescribeInstances"}  # the waiter saw it stopped before starting it
    assert reboots_since(cursor)[0] == [] and "new host" in out["effect"]
    assert _state(ec2, node)["State"]["Name"] == "running"


def test_reimage_in_a_group_replaces_the_instance_from_its_launch_template(cloud, ec2, asg):
    autoscaling, name, node = asg
    out = cloud.execute("reimage", node, params={})
    assert out["replaced_by_group"] == name
    assert _state(ec2, node)["State"]["Name"] in {"shutting-down", "terminated"}
    members = _group_members(autoscaling, name)
    assert len(members) == 1 and members[0] != node  # capacity kept: a fresh instance took its place
    assert _state(ec2, members[0])["State"]["Name"] == "running"


def test_reimage_standalone_replaces_the_root_volume():
    """moto has no CreateReplaceRootVolumeTask, so the request itself is checked with a Stubber."""
    cloud = Boto3Cloud(endpoint_url="http://127.0.0.1:1", region="us-east-1", simulator=True)
    with Stubber(cloud.ec2) as ec2_stub, Stubber(cloud.autoscaling) as asg_stub:
        asg_stub.add_response("describe_auto_scaling_instances", {"AutoScalingInstances": []},
                              {"InstanceIds": ["i-0abc"]})
        ec2_stub.add_response("create_replace_root_volume_task",
                              {"ReplaceRootVolumeTask": {"ReplaceRootVolumeTaskId": "replacevol-1"}},
                              {"InstanceId": "i-0abc", "DeleteReplacedRootVolume": True})
        out = cloud.execute("reimage", "i-0abc", params={})
        ec2_stub.assert_no_pending_responses()
    assert out["replace_root_volume_task"] == "replacevol-1"


def test_send_to_repair_standalone_stops_and_tags(cloud, ec2):
    node = _node(ec2)
    cloud.execute("send_to_repair", node, params={})
    instance = _state(ec2, node)
    assert instance["State"]["Name"] in {"stopping", "stopped"}
    assert {"Key": "aiops:state", "Value": "repair"} in instance["Tags"]
    assert cloud.describe(node)["in_repair"] is True


def test_send_to_repair_in_a_group_detaches_so_the_group_replaces_it(cloud, ec2, asg):
    autoscaling, name, node = asg
    out = cloud.execute("send_to_repair", node, params={})
    assert out["detached_from"] == name
    members = _group_members(autoscaling, name)
    assert node not in members and len(members) == 1  # the group launched a replacement
    instance = _state(ec2, node)  # the sick instance survives, stopped, for the repair
    assert instance["State"]["Name"] in {"stopping", "stopped"}
    assert {"Key": "aiops:state", "Value": "repair"} in instance["Tags"]


def test_wait_makes_no_call(cloud, ec2):
    node = _node(ec2)
    ops = _recording(cloud)
    cloud.execute("wait", node, params={})
    assert ops == [] and _state(ec2, node)["State"]["Name"] == "running"


def test_service_actions_need_a_deployment_connector(cloud):
    with pytest.raises(NotImplementedError):
        cloud.execute("rollback", "i-0abc", params={})


def _access_key(cloud: Boto3Cloud) -> str:
    return cloud.ec2._request_signer._credentials.get_frozen_credentials().access_key


def test_credentials_come_from_the_default_chain_unless_the_simulator_says_so(monkeypatch):
    from services.config import Settings

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMTHECHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    endpoint = "http://127.0.0.1:1"
    assert _access_key(Boto3Cloud(endpoint_url=endpoint)) == "AKIDFROMTHECHAIN"  # an endpoint alone is not moto
    assert Boto3Cloud(endpoint_url=None).ec2.meta.region_name == "eu-west-1"  # region from the chain too
    assert _access_key(Boto3Cloud(endpoint_url=endpoint, simulator=True)) == "testing"
    explicit = {"aws_access_key_id": "AKIDEXPLICIT", "aws_secret_access_key": "s"}
    assert _access_key(Boto3Cloud(endpoint_url=endpoint, credentials=explicit)) == "AKIDEXPLICIT"
    real = Boto3Cloud.from_settings(Settings(cloud_endpoint=endpoint))
    assert _access_key(real) == "AKIDFROMTHECHAIN"
    sim = Boto3Cloud.from_settings(Settings(cloud_endpoint=endpoint, cloud_is_simulator=True))
    assert _access_key(sim) == "testing"


def test_drift_sessions_follow_the_same_rule(monkeypatch):
    from services.config import Settings
    from services.drift.service import is_simulator

    spec = {"name": "prod", "terraform_dir": "/x", "state_file": "/x/s", "trace_source": "lookup-events"}
    assert not is_simulator(Settings(iac_workspaces=[spec]), "prod")
    assert is_simulator(Settings(iac_workspaces=[{**spec, "simulator": True}]), "prod")
    assert is_simulator(Settings(iac_workspaces=[spec], cloud_is_simulator=True), "prod")


