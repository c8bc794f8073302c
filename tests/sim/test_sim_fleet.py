"""The fleet is made of real EC2/ASG resources on the moto server, and mitigations really act on them."""

from __future__ import annotations

import pytest

from sim.cloud import boto_client
from sim.faults import FaultInjector
from sim.fleet import Fleet

pytestmark = pytest.mark.integration


def _instances(endpoint: str, cluster: str) -> dict[str, dict]:
    ec2 = boto_client("ec2", endpoint)
    pages = ec2.describe_instances(Filters=[{"Name": "tag:aiops:cluster", "Values": [cluster]}])[
        "Reservations"
    ]
    return {i["InstanceId"]: i for r in pages for i in r["Instances"]}


def _tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def test_provision_creates_real_vpc_asg_and_tagged_instances(fleet: Fleet) -> None:
    ec2 = boto_client("ec2", fleet.endpoint_url)
    asg = boto_client("autoscaling", fleet.endpoint_url)

    vpcs = ec2.describe_vpcs(VpcIds=[fleet.vpc_id])["Vpcs"]
    assert vpcs[0]["CidrBlock"] == "10.0.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [fleet.vpc_id]}])["Subnets"]
    assert {s["SubnetId"] for s in subnets} == set(fleet.subnet_ids)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet.asg_name])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 4
    assert group["LaunchTemplate"]["LaunchTemplateId"] == fleet.launch_template_id
    asg_ids = {i["InstanceId"] for i in group["Instances"]}

    instances = _instances(fleet.endpoint_url, fleet.cluster)
    assert set(instances) == asg_ids == {n.instance_id for n in fleet.nodes}
    for node in fleet.nodes:
        inst = instances[node.instance_id]
        tags = _tags(inst)
        assert inst["State"]["Name"] == "running"
        assert inst["SubnetId"] in fleet.subnet_ids
        assert tags["Name"] == tags["aiops:node"] == node.id
        assert tags["aiops:cluster"] == fleet.cluster
        assert tags["aiops:services"] == ",".join(node.services)
        assert node.private_ip == inst["PrivateIpAddress"]
        assert node.sku and node.age_days >= 0

    placement = fleet.services
    assert set(placement) == {"checkout", "payments", "catalog", "search"}
    assert all(len(nodes) == 2 for nodes in placement.values())


def test_two_fleets_share_one_server_without_mixing(moto_server, fleet: Fleet) -> None:
    other = Fleet.provision(moto_server.endpoint_url, nodes=2, seed=11)
    assert other.cluster != fleet.cluster
    assert not {n.instance_id for n in other.nodes} & {n.instance_id for n in fleet.nodes}
    assert len(_instances(moto_server.endpoint_url, other.cluster)) == 2


def test_replace_terminates_and_the_asg_launches_a_replacement(fleet: Fleet) -> None:
    fault = FaultInjector(fleet, seed=3).inject("disk_failure")
    node = fleet.node(fault.target)
    old_instance = node.instance_id

    wrong = fleet.apply_mitigation(node.id, "reboot")
    assert wrong.ok and not wrong.fixed and fault.active
    assert wrong.cloud_calls == [f"ec2:RebootInstances {old_instance}"]

    right = fleet.apply_mitigation(node.id, "replace")
    assert right.fixed and right.resolved_fault_ids == [fault.id]
    assert node.instance_id != old_instance and node.replaced_instances == [old_instance]
    assert node.age_days == 0

    instances = _instances(fleet.endpoint_url, fleet.cluster)
    assert instances[old_instance]["State"]["Name"] == "terminated"
    assert instances[node.instance_id]["State"]["Name"] == "running"
    assert _tags(instances[node.instance_id])["aiops:node"] == node.id
    group = boto_client("autoscaling", fleet.endpoint_url).describe_auto_scaling_groups(
        AutoScalingGroupNames=[fleet.asg_name]
    )["AutoScalingGroups"][0]
    assert node.instance_id in {i["InstanceId"] for i in group["Instances"]}
    assert old_instance not in {i["InstanceId"] for i in group["Instances"]}


def test_send_to_repair_detaches_and_stops_the_old_instance(fleet: Fleet) -> None:
    fault = FaultInjector(fleet, seed=4).inject("disk_failure")
    node = fleet.node(fault.target)
    old_instance = node.instance_id
    result = fleet.apply_mitigation(node.instance_id, "send_to_repair")  # by instance id works too
    assert result.fixed
    old = _instances(fleet.endpoint_url, fleet.cluster)[old_instance]
    assert old["State"]["Name"] == "stopped"
    assert _tags(old)["aiops:state"] == "repair"
    assert node.instance_id != old_instance


def test_scale_out_adds_an_asg_instance_running_the_service(fleet: Fleet) -> None:
    fault = FaultInjector(fleet, seed=5).inject("cpu_saturation", "search")
    assert not fleet.apply_mitigation("search", "restart_service").fixed
    result = fleet.apply_mitigation("search", "scale_out")
    assert result.fixed and fault.resolved_by == "scale_out"
    assert len(fleet.nodes) == 5
    group = boto_client("autoscaling", fleet.endpoint_url).describe_auto_scaling_groups(
        AutoScalingGroupNames=[fleet.asg_name]
    )["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 5
    assert len(fleet.services["search"]) == 3


def test_service_actions_run_a_command_through_ssm(fleet: Fleet) -> None:
    FaultInjector(fleet, seed=6).inject("memory_leak", "payments")
    result = fleet.apply_mitigation("payments", "restart_service")
    assert result.fixed
    command_id = result.cloud_calls[0].split()[1]
    ssm = boto_client("ssm", fleet.endpoint_url)
    command = ssm.list_commands(CommandId=command_id)["Commands"][0]
    assert command["Comment"] == "aiops restart_service payments"
    assert command["Parameters"]["commands"] == ["systemctl restart payments"]
    hosts = {fleet.node(n).instance_id for n in fleet.services["payments"]}
    assert hosts <= set(command["InstanceIds"])  # moto lists more ids than were sent; ours must be there


def test_migrate_moves_services_off_the_node(fleet: Fleet) -> None:
    fault = FaultInjector(fleet, seed=7).inject("network_partition")
    node = fleet.node(fault.target)
    moved = list(node.services)
    assert moved
    assert fleet.apply_mitigation(node.id, "migrate").fixed
    assert node.services == []
    for service in moved:
        assert node.id not in fleet.services[service] and fleet.services[service]


def test_actions_taken_with_plain_boto3_are_noticed(fleet: Fleet) -> None:
    """The platform may call moto directly: stop/start and terminations show up in describe calls."""
    injector = FaultInjector(fleet, seed=8)
    hang = injector.inject("kernel_hang")
    disk = injector.inject("disk_failure")
    ec2 = boto_client("ec2", fleet.endpoint_url)
    asg = boto_client("autoscaling", fleet.endpoint_url)

    hung = fleet.node(hang.target)
    ec2.stop_instances(InstanceIds=[hung.instance_id])
    assert fleet.sync_from_cloud() == [] and hung.state == "stopped" and hang.active
    ec2.start_instances(InstanceIds=[hung.instance_id])
    results = fleet.sync_from_cloud()
    assert [(r.target, r.action, r.fixed) for r in results] == [(hung.id, "stop_start", True)]
    assert hang.resolved_by == "stop_start"

    broken = fleet.node(disk.target)
    old = broken.instance_id
    asg.terminate_instance_in_auto_scaling_group(InstanceId=old, ShouldDecrementDesiredCapacity=False)
    results = fleet.sync_from_cloud()
    assert [(r.target, r.action, r.fixed) for r in results] == [(broken.id, "replace", True)]
    assert broken.instance_id != old and not disk.active


def test_a_reboot_sent_straight_to_moto_is_judged_once(fleet: Fleet) -> None:
    injector = FaultInjector(fleet, seed=9)
    hang = injector.inject("kernel_hang")
    disk = injector.inject("disk_failure")
    ec2 = boto_client("ec2", fleet.endpoint_url)

    ec2.reboot_instances(InstanceIds=[fleet.node(disk.target).instance_id])  # wrong fix for a disk
    ec2.reboot_instances(InstanceIds=[fleet.node(hang.target).instance_id])
    results = {r.target: r for r in fleet.sync_from_cloud()}
    assert results[disk.target].fixed is False and disk.active
    assert results[hang.target].fixed is True and hang.resolved_by == "reboot"
    assert fleet.sync_from_cloud() == []  # each reboot is judged once

    fleet.apply_mitigation(disk.target, "reboot")  # through the simulator: judged there, not again
    assert fleet.sync_from_cloud() == []
    assert [a["action"] for a in disk.attempts] == ["reboot", "reboot"]


def test_unknown_action_or_target_is_rejected(fleet: Fleet) -> None:
    with pytest.raises(ValueError):
        fleet.apply_mitigation(fleet.nodes[0].id, "rollback")  # a service action on a node
    with pytest.raises(ValueError):
        fleet.apply_mitigation("checkout", "reboot")
    with pytest.raises(KeyError):
        fleet.apply_mitigation("no-such-node", "reboot")


def test_a_free_cluster_name_is_found_beyond_the_first_page_of_groups(moto_server) -> None:
    """DescribeAutoScalingGroups answers 50 groups a call: a long test session holds more fleets than that."""
    from sim.fleet import _free_cluster_name

    asg = boto_client("autoscaling", moto_server.endpoint_url)
    ec2 = boto_client("ec2", moto_server.endpoint_url)
    ec2.create_launch_template(LaunchTemplateName="page-test", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    names = ["sim-page-nodes"] + [f"sim-page-{i}-nodes" for i in range(2, 62)]
    for name in names:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=0,
                                      LaunchTemplate={"LaunchTemplateName": "page-test"},
                                      AvailabilityZones=["us-east-1a"])
    assert len(asg.describe_auto_scaling_groups()["AutoScalingGroups"]) < len(names)  # the API pages
    assert f"{_free_cluster_name(asg, 'sim-page')}-nodes" not in names
