"""AWS-native actions against a real moto server: ECS restart/rollback/scale, Lambda alias rollback,
ASG replace, SSM runbooks; each declares risk and blast radius, and a re-run under the same key
(a worker that died before ``finish_action``) changes nothing."""

from __future__ import annotations

import io
import uuid
import zipfile

import boto3
import pytest

from services.config import Settings
from services.connectors.aws import ACTIONS, AwsActions, action_spec, idempotency_key
from services.worker.runtime import Runtime

pytestmark = pytest.mark.integration


def _client(name: str, endpoint: str):
    return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _calls(aws: AwsActions) -> list[tuple[str, dict]]:
    """(operation, params) of every call the connector makes, in order."""
    seen: list[tuple[str, dict]] = []
    for client in (aws.ec2, aws.autoscaling, aws.ecs, aws.lambda_, aws.ssm):
        client.meta.events.register("provide-client-params",
                                    lambda params, model, **kw: seen.append((model.name, dict(params))))
    return seen


@pytest.fixture
def cluster(moto_endpoint) -> str:
    name = f"prod-{uuid.uuid4().hex[:6]}"
    _client("ecs", moto_endpoint).create_cluster(clusterName=name)
    return name


@pytest.fixture
def aws(moto_endpoint, cluster) -> AwsActions:
    return AwsActions(endpoint_url=moto_endpoint, region="us-east-1", simulator=True, ecs_cluster=cluster,
                      wait_delay_s=0.1, scale_max=5)


def _service(endpoint: str, cluster: str, *, revisions: int = 3, desired: int = 2) -> str:
    ecs = _client("ecs", endpoint)
    name = f"checkout-{uuid.uuid4().hex[:6]}"
    for i in range(revisions):
        ecs.register_task_definition(family=name, containerDefinitions=[{"name": "app", "image": f"app:{i}",
                                                                         "memory": 128}])
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=f"{name}:{revisions}", desiredCount=desired)
    return name


def _svc(endpoint: str, cluster: str, name: str) -> dict:
    return _client("ecs", endpoint).describe_services(cluster=cluster, services=[name])["services"][0]


def test_every_action_declares_risk_and_blast_radius():
    for name, spec in ACTIONS.items():
        assert spec.risk in {"low", "medium", "high", "critical"} and spec.blast, name
    assert action_spec("replace").risk == "high"
    assert action_spec("drain", ssm_runbooks={"drain": {"document": "D", "risk": "medium"}}).risk == "medium"
    assert action_spec("drain") is None
    # the derived key separates attempts and root causes, and a caller's key wins
    base = {"attempt": 0, "root_cause": "bad_deploy"}
    assert idempotency_key("rollback", "a", base) != idempotency_key("rollback", "a", {**base, "attempt": 1})
    assert idempotency_key("rollback", "a", {**base, "idempotency_key": "k"}) == "k"


def test_ecs_rollback_goes_to_the_previous_revision_once(aws, moto_endpoint, cluster):
    name = _service(moto_endpoint, cluster)
    step = {"attempt": 0, "root_cause": "bad_deploy"}
    first = aws.execute("rollback", name, params=step)
    assert first["taskDefinition"].endswith(f"{name}:2") and first["from"].endswith(f"{name}:3")
    assert first["risk"] == "medium" and "every task" in first["blast_radius"]
    assert _svc(moto_endpoint, cluster, name)["taskDefinition"].endswith(f"{name}:2")
    # a redelivered task runs the same step again: still revision 2, not 1
    again = aws.execute("rollback", name, params=step)
    assert again["reused"] is True and again["taskDefinition"].endswith(f"{name}:2")
    assert _svc(moto_endpoint, cluster, name)["taskDefinition"].endswith(f"{name}:2")
    # the next attempt is a new step: it rolls back one further
    aws.execute("rollback", name, params={**step, "attempt": 1})
    assert _svc(moto_endpoint, cluster, name)["taskDefinition"].endswith(f"{name}:1")
    with pytest.raises(LookupError, match="no ACTIVE revision"):
        aws.execute("rollback", name, params={**step, "attempt": 2})


def test_ecs_restart_forces_a_new_deployment_once_and_scale_is_absolute(aws, moto_endpoint, cluster):
    name = _service(moto_endpoint, cluster, desired=2)
    calls = _calls(aws)
    out = aws.execute("restart_service", name, params={"attempt": 0})
    updates = [p for op, p in calls if op == "UpdateService"]
    assert updates == [{"cluster": cluster, "service": name, "forceNewDeployment": True}]
    assert out["risk"] == "low"
    assert aws.execute("restart_service", name, params={"attempt": 0})["reused"] is True
    assert len([op for op, _ in calls if op == "UpdateService"]) == 1  # the replay made no second deployment

    assert aws.execute("scale_out", name, params={"attempt": 0})["desiredCount"] == 3
    aws.execute("scale_out", name, params={"attempt": 0})  # replay: stays 3, not 4
    assert _svc(moto_endpoint, cluster, name)["desiredCount"] == 3
    aws.execute("scale", name, params={"attempt": 1, "desired_count": 50})
    assert _svc(moto_endpoint, cluster, name)["desiredCount"] == 5  # capped at scale_max


def test_lambda_alias_rollback(aws, moto_endpoint):
    iam, lam = _client("iam", moto_endpoint), _client("lambda", moto_endpoint)
    role = iam.create_role(RoleName=f"r-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("h.py", "def h(event, context):\n    return 1\n")
    fn = f"resize-{uuid.uuid4().hex[:6]}"
    lam.create_function(FunctionName=fn, Runtime="python3.12", Role=role, Handler="h.h", Code={"ZipFile": buf.getvalue()})
    v1 = lam.publish_version(FunctionName=fn)["Version"]
    lam.update_function_code(FunctionName=fn, ZipFile=buf.getvalue())
    v2 = lam.publish_version(FunctionName=fn, Description="v2")["Version"]
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion=v2)
    out = aws.execute("rollback", fn, params={"attempt": 0, "root_cause": "bad_deploy"})
    assert (out["from"], out["version"]) == (v2, v1)
    assert lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == v1
    assert aws.execute("rollback", fn, params={"attempt": 0, "root_cause": "bad_deploy"})["reused"] is True
    assert lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == v1
    with pytest.raises(LookupError, match="no earlier version"):
        aws.execute("rollback", fn, params={"attempt": 1})
    with pytest.raises(NotImplementedError, match="does not apply to lambda"):
        aws.execute("restart_service", fn, params={})


def test_replace_through_the_auto_scaling_group_once(aws, moto_endpoint):
    ec2, autoscaling = _client("ec2", moto_endpoint), _client("autoscaling", moto_endpoint)
    name = f"web-{uuid.uuid4().hex[:6]}"
    ec2.create_launch_template(LaunchTemplateName=name,
                               LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "t3.micro"})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=1, MaxSize=3, DesiredCapacity=1,
                                          LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
                                          AvailabilityZones=["us-east-1a"])

    def members() -> list[str]:
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"]]

    old = members()[0]
    out = aws.execute("replace", old, params={"attempt": 0})
    assert out["replaced_by_group"] == name and out["risk"] == "high"
    new = members()
    assert old not in new and len(new) == 1
    assert aws.execute("replace", old, params={"attempt": 0})["reused"] is True
    assert members() == new  # the replacement was not terminated in turn
    standalone = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    with pytest.raises(NotImplementedError, match="Auto Scaling group"):
        aws.execute("replace", standalone, params={})
    # stop_start is the EC2 redeploy
    assert aws.execute("stop_start", standalone, params={})["effect"].startswith("stopped and started")


def test_ssm_runbook_runs_on_the_tagged_instances_once(moto_endpoint, cluster):
    ec2 = _client("ec2", moto_endpoint)
    service = f"search-{uuid.uuid4().hex[:6]}"
    ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Service", "Value": service}]}])
    runbooks = {"shed_load": {"document": "AWS-RunShellScript", "risk": "medium",
                              "parameters": {"commands": ["/opt/shed.sh {target}"]}}}
    aws = AwsActions(endpoint_url=moto_endpoint, region="us-east-1", simulator=True, ecs_cluster=cluster,
                     ssm_runbooks=runbooks, wait_delay_s=0.1)
    calls = _calls(aws)
    out = aws.execute("shed_load", service, params={"attempt": 0})
    assert out["command_status"] == "Success" and out["targets"] == 2 and out["risk"] == "medium"
    sent = [p for op, p in calls if op == "SendCommand"]
    assert sent[0]["Parameters"] == {"commands": [f"/opt/shed.sh {service}"]}
    assert sent[0]["Targets"] == [{"Key": "tag:Service", "Values": [service]}]
    again = aws.execute("shed_load", service, params={"attempt": 0})
    assert again["reused"] is True and again["command_id"] == out["command_id"]
    assert len([op for op, _ in calls if op == "SendCommand"]) == 1
    with pytest.raises(RuntimeError, match="matched no instance"):
        aws.execute("shed_load", "nothing-runs-this", params={})


def test_unknown_targets_and_actions_fail_with_a_reason(aws, moto_endpoint):
    with pytest.raises(LookupError, match="neither an ECS service"):
        aws.execute("restart_service", "ghost", params={})
    with pytest.raises(NotImplementedError, match="AIOPS_AWS_SSM_RUNBOOKS"):
        aws.execute("failover", "ghost", params={})
    assert aws.describe("ghost") == {"healthy": None}


def test_settings_select_the_aws_connector(moto_endpoint, tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", cloud_endpoint=moto_endpoint,
                        cloud_is_simulator=True, cloud_actions="aws", aws_ecs_cluster="c1",
                        aws_targets={"api": {"kind": "lambda", "function": "api-fn"}}, memory_enabled=False)
    cloud = Runtime(settings)._build_tools().cloud
    assert isinstance(cloud, AwsActions) and cloud.ecs_cluster == "c1"
    assert cloud.resolve("api", "rollback") == {"kind": "lambda", "function": "api-fn", "alias": "live"}


def test_a_worker_dying_mid_action_does_not_roll_back_twice(platform_env, moto_endpoint, cluster):
    """The ledger row is started but never finished (the worker died after the call): the redelivered
    step runs the connector again, which re-applies its recorded plan instead of rolling back further."""
    from agents import actor
    from services.incidents.models import Incident
    from services.storage.base import session_scope
    from tests.conftest import install_settings

    name = _service(moto_endpoint, cluster)
    settings = install_settings(cloud_actions="aws", aws_ecs_cluster=cluster, memory_enabled=False)
    tools = Runtime(settings)._build_tools()
    with session_scope(settings.database_url) as session:
        incident = Incident(title="checkout errors", group_key="g", service=name)
        session.add(incident)
        session.flush()
        incident_id = incident.id
    step = {"action": "rollback", "target": name, "target_kind": "service", "risk": "medium", "attempt": 0,
            "root_cause": "bad_deploy", "reason": "a deploy explains it"}
    key = f"incident:{incident_id}:attempt:0:rollback:{name}"
    assert tools.store.begin_action(key, incident_id=incident_id, kind="rollback", target=name, risk="medium",
                                    params={}) is None
    tools.cloud.execute("rollback", name, params={**step, "idempotency_key": key})  # ...the worker dies before finish_action
    assert _svc(moto_endpoint, cluster, name)["taskDefinition"].endswith(f"{name}:2")

    out = actor.execute({"plan": step, "incident_id": incident_id, "attempt": 0}, tools=tools)
    assert out["action_result"]["status"] == "succeeded" and out["action_result"]["reused"] is True
    assert _svc(moto_endpoint, cluster, name)["taskDefinition"].endswith(f"{name}:2")  # not :1
    again = actor.execute({"plan": step, "incident_id": incident_id, "attempt": 0}, tools=tools)
    assert again["action_result"]["taskDefinition"].endswith(f"{name}:2")  # the ledger's finished result


def test_a_refused_call_leaves_no_marker(aws, moto_endpoint, cluster):
    """IAM (or ECS) refusing UpdateService means nothing happened: the same step run later acts."""
    from botocore.exceptions import ClientError

    name = _service(moto_endpoint, cluster)
    refusals = [ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "UpdateService")]

    def deny(**kwargs):
        if refusals:
            raise refusals.pop()

    aws.ecs.meta.events.register("before-call.ecs.UpdateService", deny)
    step = {"attempt": 0, "root_cause": "bad_deploy"}
    with pytest.raises(ClientError, match="not allowed"):
        aws.execute("rollback", name, params=step)
    assert _svc(moto_endpoint, cluster, name)["taskDefinition"].endswith(f"{name}:3")
    out = aws.execute("rollback", name, params=step)
    assert "reused" not in out and out["taskDefinition"].endswith(f"{name}:2")
