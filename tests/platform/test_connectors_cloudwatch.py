"""CloudWatchTelemetry against a real moto server: put metric data and log events, read them back."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from services.connectors.cloudwatch import CloudWatchTelemetry
from sim.cloud import free_port


@pytest.fixture
def aws(moto_endpoint):
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    ec2 = session.client("ec2", endpoint_url=moto_endpoint)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "cw-node-1"}]}])["Instances"][0]["InstanceId"]
    return session, moto_endpoint, instance


def test_ec2_metrics_by_id_and_name_tag(aws) -> None:
    session, endpoint, instance = aws
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    dims = [{"Name": "InstanceId", "Value": instance}]
    for minutes_ago, cpu, failed in ((5, 20.0, 0.0), (3, 60.0, 0.0), (1, 97.0, 1.0)):
        at = now - timedelta(minutes=minutes_ago)
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": at, "Value": cpu, "Unit": "Percent"},
            {"MetricName": "NetworkIn", "Dimensions": dims, "Timestamp": at, "Value": 1000.0, "Unit": "Bytes"},
            {"MetricName": "StatusCheckFailed", "Dimensions": dims, "Timestamp": at, "Value": failed}])
    telemetry = CloudWatchTelemetry(session=session, endpoint_url=endpoint)
    series = telemetry.metrics("cw-node-1", minutes=15)
    assert [v for _, v in series["ec2_cpu_utilization"]] == [20.0, 60.0, 97.0]
    assert series["ec2_network_in_bytes"][-1][1] == 1000.0
    assert "ec2_network_out_bytes" not in series  # nothing published: no empty series
    # moto reports each period's start, relative to StartTime, so compare values, not timestamps
    by_id = telemetry.metrics(instance, minutes=15)
    assert {k: [v for _, v in p] for k, p in by_id.items()} == {k: [v for _, v in p] for k, p in series.items()}
    assert telemetry.health("cw-node-1") is False
    assert telemetry.metrics("no-such-node") == {}
    assert telemetry.health("no-such-node") is None


def test_logs_from_per_target_and_shared_groups(aws) -> None:
    session, endpoint, _ = aws
    logs = session.client("logs", endpoint_url=endpoint)
    now_ms = int(time.time() * 1000)
    logs.create_log_group(logGroupName="/fleet/checkout")
    logs.create_log_stream(logGroupName="/fleet/checkout", logStreamName="app")
    logs.put_log_events(logGroupName="/fleet/checkout", logStreamName="app", logEvents=[
        {"timestamp": now_ms - 2000, "message": "ERROR db pool exhausted"},
        {"timestamp": now_ms - 1000, "message": "WARN slow request 2.3s"}])
    logs.create_log_group(logGroupName="/fleet/all")
    logs.create_log_stream(logGroupName="/fleet/all", logStreamName="syslog")
    logs.put_log_events(logGroupName="/fleet/all", logStreamName="syslog", logEvents=[
        {"timestamp": now_ms - 1000, "message": "web-7 kernel: I/O error on sda"},
        {"timestamp": now_ms - 500, "message": "web-8 all good"}])
    per_target = CloudWatchTelemetry(session=session, endpoint_url=endpoint)
    assert per_target.logs("checkout") == ["ERROR db pool exhausted", "WARN slow request 2.3s"]
    assert per_target.logs("no-group-for-me") == []
    shared = CloudWatchTelemetry(session=session, endpoint_url=endpoint, log_group="/fleet/all")
    assert shared.logs("web-7") == ["web-7 kernel: I/O error on sda"]


def test_unreachable_cloudwatch_is_unavailable_evidence_logged_once(caplog) -> None:
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    telemetry = CloudWatchTelemetry(session=session, endpoint_url=f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with caplog.at_level(logging.WARNING, logger="services.connectors.cloudwatch"):
        assert telemetry.metrics("i-0123456789abcdef0") == {}
        assert telemetry.logs("web-1") == []
        assert telemetry.health("i-0123456789abcdef0") is None
    assert len([r for r in caplog.records if "evidence from it is missing" in r.getMessage()]) == 1


def test_settings_choose_cloudwatch_when_no_url_is_set(moto_endpoint) -> None:
    from services.config import Settings
    from services.worker.runtime import telemetry_from_settings

    chosen = telemetry_from_settings(Settings(cloudwatch_telemetry=True, cloud_endpoint=moto_endpoint,
                                              cloud_is_simulator=True, cloudwatch_log_group="/fleet/all"))
    assert isinstance(chosen, CloudWatchTelemetry) and chosen.log_group == "/fleet/all"
    assert not isinstance(telemetry_from_settings(Settings(cloudwatch_telemetry=True, telemetry_url="http://probe")),
                          CloudWatchTelemetry)


def test_an_alarm_in_alarm_state_naming_the_component_makes_it_unhealthy(aws) -> None:
    """Status checks pass (the node is up) but a disk alarm on it is still in ALARM: not healthy."""
    session, endpoint, _ = aws
    ec2 = session.client("ec2", endpoint_url=endpoint)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "cw-disk-node"}]}])["Instances"][0]["InstanceId"]
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "StatusCheckFailed", "Dimensions": [{"Name": "InstanceId", "Value": instance}],
         "Timestamp": now - timedelta(minutes=1), "Value": 0.0}])
    disk_alarm = f"disk-full-{instance}"
    cloudwatch.put_metric_alarm(
        AlarmName=disk_alarm, Namespace="CWAgent", MetricName="disk_used_percent", Statistic="Maximum",
        Dimensions=[{"Name": "InstanceId", "Value": instance}, {"Name": "path", "Value": "/"}],
        Period=60, EvaluationPeriods=1, Threshold=90.0, ComparisonOperator="GreaterThanThreshold")
    # an alarm on another component in ALARM says nothing about this one
    cloudwatch.put_metric_alarm(
        AlarmName=f"cpu-other-{instance}", Namespace="AWS/EC2", MetricName="CPUUtilization", Statistic="Average",
        Dimensions=[{"Name": "InstanceId", "Value": "i-0000000000other0"}],
        Period=60, EvaluationPeriods=1, Threshold=90.0, ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName=f"cpu-other-{instance}", StateValue="ALARM", StateReason="test")
    telemetry = CloudWatchTelemetry(session=session, endpoint_url=endpoint)
    assert telemetry.health("cw-disk-node") is True  # the disk alarm is not in ALARM (yet)
    cloudwatch.set_alarm_state(AlarmName=disk_alarm, StateValue="ALARM", StateReason="disk 97% used")
    assert telemetry.health("cw-disk-node") is False
    assert telemetry.health(instance) is False
    cloudwatch.set_alarm_state(AlarmName=disk_alarm, StateValue="OK", StateReason="cleaned up")
    assert telemetry.health("cw-disk-node") is True
    cloudwatch.delete_alarms(AlarmNames=[disk_alarm, f"cpu-other-{instance}"])
    ec2.terminate_instances(InstanceIds=[instance])


def test_a_service_alarm_in_alarm_state_makes_the_service_unhealthy(aws) -> None:
    """A service has no status checks; its own alarm (dimension naming the service) is the verdict."""
    session, endpoint, _ = aws
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    name = f"latency-checkout-{time.time_ns()}"
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="App", MetricName="p99_latency", Statistic="Maximum",
        Dimensions=[{"Name": "ServiceName", "Value": "checkout-cw"}],
        Period=60, EvaluationPeriods=1, Threshold=2.0, ComparisonOperator="GreaterThanThreshold")
    telemetry = CloudWatchTelemetry(session=session, endpoint_url=endpoint)
    assert telemetry.health("checkout-cw") is None  # nothing can tell
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="p99 3.1s")
    assert telemetry.health("checkout-cw") is False
    cloudwatch.delete_alarms(AlarmNames=[name])
