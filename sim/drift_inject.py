"""Drift injection on real Terraform projects against a real moto server (reusable harness parts).

Why in ``sim/`` and not ``iac/``: it provisions a moto server and drives it like a user; ``iac/``
is the server-free library it exercises. The moto server itself comes from ``sim.cloud.start_moto``.

For a project: copy its configuration, create its supported resources in moto through boto3 with
a Terraform user agent (so the trace holds IaC's own calls, which must be filtered out), write the
v4 state Terraform would have written, then make out-of-band changes with a console user agent:
attribute edits, tag edits, security-group rules, new and deleted resources, policy edits, and
noisy sequences (retries, reverts, interleaved reads, shuffled record order). Ground truth is what
was changed; ``score`` decides pass/fail of a proposal against the live cloud.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from iac.config import Config
from iac.recorder import CONSOLE_UA, TERRAFORM_UA, Recorder
from iac.state import State, load_state, new_state_document
from iac.verify import LiveReader, check_fmt_of_patch_lines, config_value, flatten, live_identifier
from sim.cloud import REGION, boto_session

PROJECTS = ["learn-terraform-drift-and-policy", "learn-terraform-rds", "learn-terraform-aws-asg",
            "learn-terraform-lambda-api-gateway", "terraform-aws-vpc"]


# ----------------------------------------------------------------------------- moto server
def reset_moto(endpoint: str) -> None:
    req = urllib.request.Request(endpoint + "/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=30).read()


def make_session(region: str = REGION) -> Any:
    """moto's dummy credentials (``sim.cloud.boto_session``): the harness only ever talks to moto."""
    return boto_session(region=region)


# ----------------------------------------------------------------------------- context
class FakeClock:
    """Advancing event times so a scenario's records have a real order (then get shuffled)."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class Ctx:
    endpoint: str
    session: Any
    recorder: Recorder
    workdir: Path
    terraform_dir: Path
    rng: random.Random
    handles: dict[str, Any] = field(default_factory=dict)
    state_entries: list[dict[str, Any]] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)

    def c(self, name: str) -> Any:
        if name not in self._clients:
            self._clients[name] = self.session.client(name, endpoint_url=self.endpoint)
        return self._clients[name]

    def as_console(self) -> None:
        self.recorder.user_agent = CONSOLE_UA
        self.recorder.principal_arn = "arn:aws:iam::123456789012:user/alice"

    def as_terraform(self) -> None:
        self.recorder.user_agent = TERRAFORM_UA
        self.recorder.principal_arn = "arn:aws:iam::123456789012:role/terraform-ci"

    def add_state(self, rtype: str, name: str, attributes: dict[str, Any], *, module: str = "", index: Any = None) -> None:
        self.state_entries.append({"type": rtype, "name": name, "module": module, "index": index,
                                   "attributes": attributes})


@dataclass
class Truth:
    """What the injected drift changed: (address, attribute, key) triples, new and removed resources."""

    keys: list[tuple[str, str, str]] = field(default_factory=list)
    created: list[tuple[str, str]] = field(default_factory=list)  # (type, live identifier)
    deleted: list[str] = field(default_factory=list)
    companions: list[tuple[str, str, str]] = field(default_factory=list)  # (type, bucket, attribute)

    @property
    def empty(self) -> bool:
        return not (self.keys or self.created or self.deleted or self.companions)


def _rule_attrs(proto: str, fp: int, tp: int, cidrs: list[str] | None = None, sgs: list[str] | None = None) -> dict[str, Any]:
    return {"from_port": fp, "to_port": tp, "protocol": proto, "cidr_blocks": cidrs or [], "ipv6_cidr_blocks": [],
            "security_groups": sgs or [], "prefix_list_ids": [], "self": False, "description": ""}


def _sg_state(ctx: Ctx, gid: str, name: str, ingress: list, egress: list, tags: dict | None = None) -> dict[str, Any]:
    return {"id": gid, "arn": f"arn:aws:ec2:us-east-1:123456789012:security-group/{gid}", "name": name,
            "ingress": ingress, "egress": egress, "tags": tags or {}, "description": "Managed by Terraform"}


def _make_sg(ctx: Ctx, name: str, vpc: str, ingress: list[dict], egress: list[dict] | None, tags: dict | None = None) -> str:
    ec2 = ctx.c("ec2")
    gid = ec2.create_security_group(GroupName=name, Description="Managed by Terraform", VpcId=vpc)["GroupId"]
    if egress is not None:  # Terraform removes the default allow-all egress and writes its own
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        if egress:
            ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=egress)
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ingress)
    if tags:
        ec2.create_tags(Resources=[gid], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return gid


def _perm(proto: str, fp: int, tp: int, cidr: str | None = None, sg: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"IpProtocol": proto}
    if proto != "-1":
        p["FromPort"], p["ToPort"] = fp, tp
    if cidr:
        p["IpRanges"] = [{"CidrIp": cidr}]
    if sg:
        p["UserIdGroupPairs"] = [{"GroupId": sg}]
    return p


def _vpc(ctx: Ctx, cidr: str = "10.0.0.0/16", n_subnets: int = 2, base: int = 4, tags: dict | None = None) -> tuple[str, list[str]]:
    ec2 = ctx.c("ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    if tags:
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{base + i}.0/24",
                                 AvailabilityZone=f"us-east-1{'abc'[i % 3]}")["Subnet"]["SubnetId"] for i in range(n_subnets)]
    return vpc, subnets


def _ami(ctx: Ctx) -> str:
    # One of moto's built-in Amazon Linux AMIs (describe_images over the whole catalog is slow).
    return "ami-12c6146b"


# ----------------------------------------------------------------------------- projects
def copy_project(data_dir: Path, project: str, workdir: Path) -> Path:
    """Copy a project into ``workdir``; the VPC module is driven through its ``examples/simple``."""
    src = data_dir / "terraform" / project
    dst = workdir / project
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".git", "*.zip"))
    return dst / "examples" / "simple" if project == "terraform-aws-vpc" else dst


def provision_drift_and_policy(ctx: Ctx) -> None:
    vpc, subnets = _vpc(ctx, n_subnets=2, base=10)
    gid = _make_sg(ctx, "bastion_ssh", vpc, [_perm("tcp", 22, 22, "192.80.0.0/16")],
                   [_perm("-1", 0, 0, "0.0.0.0/0")])
    inst = ctx.c("ec2").run_instances(ImageId=_ami(ctx), InstanceType="t2.2xlarge", MinCount=1, MaxCount=1,
                                      SubnetId=subnets[0], SecurityGroupIds=[gid])["Instances"][0]["InstanceId"]
    ctx.handles.update(vpc=vpc, sg=gid, instance=inst, subnets=subnets)
    m = "module.network"
    ctx.add_state("aws_security_group", "bastion", _sg_state(ctx, gid, "bastion_ssh", [_rule_attrs("tcp", 22, 22, ["192.80.0.0/16"])],
                                                             [_rule_attrs("-1", 0, 0, ["0.0.0.0/0"])]) | {"vpc_id": vpc}, module=m)
    ctx.add_state("aws_instance", "bastion", {"id": inst, "instance_type": "t2.2xlarge", "subnet_id": subnets[0],
                                              "vpc_security_group_ids": [gid], "tags": {}}, module=m)


def provision_rds(ctx: Ctx) -> None:
    vpc, subnets = _vpc(ctx, n_subnets=3, base=4)
    rds = ctx.c("rds")
    gid = _make_sg(ctx, "education_rds", vpc, [_perm("tcp", 5432, 5432, "0.0.0.0/0")], [_perm("tcp", 5432, 5432, "0.0.0.0/0")],
                   tags={"Name": "education_rds"})
    rds.create_db_subnet_group(DBSubnetGroupName="education", DBSubnetGroupDescription="Managed by Terraform",
                               SubnetIds=subnets, Tags=[{"Key": "Name", "Value": "Education"}])
    rds.create_db_parameter_group(DBParameterGroupName="education", DBParameterGroupFamily="postgres13",
                                  Description="Managed by Terraform")
    db = rds.create_db_instance(DBInstanceIdentifier="education", DBName="education", DBInstanceClass="db.t3.micro",
                                AllocatedStorage=10, Engine="postgres", EngineVersion="13.1", MasterUsername="edu",
                                MasterUserPassword="not-a-secret-1", PubliclyAccessible=True, DBSubnetGroupName="education",
                                VpcSecurityGroupIds=[gid], BackupRetentionPeriod=7, DBParameterGroupName="education")["DBInstance"]
    rep = rds.create_db_instance_read_replica(DBInstanceIdentifier="education-replica", SourceDBInstanceIdentifier="education",
                                              DBInstanceClass="db.t3.micro", PubliclyAccessible=True)["DBInstance"]
    ctx.handles.update(vpc=vpc, sg=gid, db="education", replica="education-replica", subnets=subnets)
    ctx.add_state("aws_security_group", "rds", _sg_state(ctx, gid, "education_rds", [_rule_attrs("tcp", 5432, 5432, ["0.0.0.0/0"])],
                                                         [_rule_attrs("tcp", 5432, 5432, ["0.0.0.0/0"])], {"Name": "education_rds"}) | {"vpc_id": vpc})
    ctx.add_state("aws_db_subnet_group", "education", {"id": "education", "name": "education", "tags": {"Name": "Education"},
                                                       "arn": "arn:aws:rds:us-east-1:123456789012:subgrp:education"})
    ctx.add_state("aws_db_parameter_group", "education", {"id": "education", "name": "education", "family": "postgres13"})
    for name, d in (("education", db), ("education_replica", rep)):
        ctx.add_state("aws_db_instance", name, {
            "id": d["DBInstanceIdentifier"], "identifier": d["DBInstanceIdentifier"], "arn": d["DBInstanceArn"],
            "instance_class": "db.t3.micro", "allocated_storage": 10, "backup_retention_period": 7 if name == "education" else 0,
            "publicly_accessible": True, "engine": "postgres", "tags": {}})


def provision_asg(ctx: Ctx) -> None:
    default = {"hashicorp-learn": "aws-asg"}
    vpc, subnets = _vpc(ctx, n_subnets=3, base=4)
    lb_sg = _make_sg(ctx, "learn-asg-terramino-lb", vpc, [_perm("tcp", 80, 80, "0.0.0.0/0")], [_perm("-1", 0, 0, "0.0.0.0/0")], tags=default)
    inst_sg = _make_sg(ctx, "learn-asg-terramino-instance", vpc, [_perm("tcp", 80, 80, sg=lb_sg)], [_perm("-1", 0, 0, "0.0.0.0/0")], tags=default)
    asg = ctx.c("autoscaling")
    elb = ctx.c("elbv2")
    asg.create_launch_configuration(LaunchConfigurationName="learn-terraform-aws-asg-20240101", ImageId=_ami(ctx),
                                    InstanceType="t2.micro", SecurityGroups=[inst_sg])
    asg.create_auto_scaling_group(AutoScalingGroupName="terramino", MinSize=1, MaxSize=3, DesiredCapacity=1,
                                  LaunchConfigurationName="learn-terraform-aws-asg-20240101",
                                  VPCZoneIdentifier=",".join(subnets), HealthCheckType="ELB",
                                  Tags=[{"Key": "Name", "Value": "HashiCorp Learn ASG - Terramino", "PropagateAtLaunch": True}])
    lb = elb.create_load_balancer(Name="learn-asg-terramino-lb", Subnets=subnets, SecurityGroups=[lb_sg], Type="application",
                                  Tags=[{"Key": k, "Value": v} for k, v in default.items()])["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="learn-asg-terramino", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    asg.attach_load_balancer_target_groups(AutoScalingGroupName="terramino", TargetGroupARNs=[tg])
    ctx.handles.update(vpc=vpc, lb_sg=lb_sg, inst_sg=inst_sg, lb=lb, tg=tg, listener=listener, subnets=subnets)
    ctx.add_state("aws_security_group", "terramino_lb", _sg_state(ctx, lb_sg, "learn-asg-terramino-lb", [_rule_attrs("tcp", 80, 80, ["0.0.0.0/0"])],
                                                                  [_rule_attrs("-1", 0, 0, ["0.0.0.0/0"])], default) | {"vpc_id": vpc})
    ctx.add_state("aws_security_group", "terramino_instance", _sg_state(ctx, inst_sg, "learn-asg-terramino-instance",
                                                                        [_rule_attrs("tcp", 80, 80, sgs=[lb_sg])],
                                                                        [_rule_attrs("-1", 0, 0, ["0.0.0.0/0"])], default) | {"vpc_id": vpc})
    ctx.add_state("aws_launch_configuration", "terramino", {"id": "learn-terraform-aws-asg-20240101",
                                                            "name": "learn-terraform-aws-asg-20240101", "instance_type": "t2.micro"})
    ctx.add_state("aws_autoscaling_group", "terramino", {"id": "terramino", "name": "terramino", "min_size": 1, "max_size": 3,
                                                         "desired_capacity": 1, "health_check_type": "ELB"})
    ctx.add_state("aws_lb", "terramino", {"id": lb, "arn": lb, "name": "learn-asg-terramino-lb", "tags": default})
    ctx.add_state("aws_lb_target_group", "terramino", {"id": tg, "arn": tg, "name": "learn-asg-terramino", "port": 80, "tags": default})
    ctx.add_state("aws_lb_listener", "terramino", {"id": listener, "arn": listener, "port": 80, "protocol": "HTTP",
                                                   "load_balancer_arn": lb, "tags": default})
    ctx.add_state("aws_autoscaling_attachment", "terramino", {"id": "terramino-attachment", "autoscaling_group_name": "terramino",
                                                              "alb_target_group_arn": tg})


ASSUME = {"Version": "2012-10-17", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Sid": "",
                                                  "Principal": {"Service": "lambda.amazonaws.com"}}]}
BASIC_EXEC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def provision_lambda(ctx: Ctx) -> None:
    bucket = f"learn-terraform-functions-{ctx.rng.choice(['able', 'brave', 'calm'])}-{ctx.rng.choice(['ox', 'elk', 'emu'])}"
    s3 = ctx.c("s3")
    s3.create_bucket(Bucket=bucket)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.js", "module.exports.handler = async () => ({statusCode: 200});\n")
    s3.put_object(Bucket=bucket, Key="hello-world.zip", Body=buf.getvalue())
    iam = ctx.c("iam")
    role = iam.create_role(RoleName="serverless_lambda", AssumeRolePolicyDocument=json.dumps(ASSUME))["Role"]
    iam.attach_role_policy(RoleName="serverless_lambda", PolicyArn=BASIC_EXEC)
    fn = ctx.c("lambda").create_function(FunctionName="HelloWorld", Runtime="nodejs12.x", Handler="hello.handler",
                                         Role=role["Arn"], Code={"S3Bucket": bucket, "S3Key": "hello-world.zip"})
    logs = ctx.c("logs")
    for name in ("/aws/lambda/HelloWorld", "/aws/api_gw/serverless_lambda_gw"):
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=30)
    ctx.handles.update(bucket=bucket, role="serverless_lambda", function="HelloWorld")
    ctx.add_state("random_pet", "lambda_bucket_name", {"id": bucket, "prefix": "learn-terraform-functions", "length": 4})
    ctx.add_state("aws_s3_bucket", "lambda_bucket", {"id": bucket, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}",
                                                     "acl": "private", "force_destroy": True, "tags": {}})
    ctx.add_state("aws_iam_role", "lambda_exec", {"id": "serverless_lambda", "name": "serverless_lambda", "arn": role["Arn"],
                                                  "assume_role_policy": json.dumps(ASSUME), "tags": {}})
    ctx.add_state("aws_iam_role_policy_attachment", "lambda_policy", {"id": "serverless_lambda-20240101",
                                                                      "role": "serverless_lambda", "policy_arn": BASIC_EXEC})
    ctx.add_state("aws_lambda_function", "hello_world", {"id": "HelloWorld", "function_name": "HelloWorld", "arn": fn["FunctionArn"],
                                                         "runtime": "nodejs12.x", "handler": "hello.handler", "memory_size": 128,
                                                         "timeout": 3, "role": role["Arn"], "tags": {}})
    ctx.add_state("aws_cloudwatch_log_group", "hello_world", {"id": "/aws/lambda/HelloWorld", "name": "/aws/lambda/HelloWorld",
                                                              "retention_in_days": 30, "tags": {}})
    ctx.add_state("aws_cloudwatch_log_group", "api_gw", {"id": "/aws/api_gw/serverless_lambda_gw",
                                                         "name": "/aws/api_gw/serverless_lambda_gw", "retention_in_days": 30, "tags": {}})


def provision_vpc(ctx: Ctx) -> None:
    tags = {"Name": "ex-simple", "Example": "ex-simple", "GithubRepo": "terraform-aws-vpc", "GithubOrg": "terraform-aws-modules"}
    ec2 = ctx.c("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    ctx.handles.update(vpc=vpc)
    ctx.add_state("aws_vpc", "this", {"id": vpc, "arn": f"arn:aws:ec2:us-east-1:123456789012:vpc/{vpc}",
                                      "cidr_block": "10.0.0.0/16", "enable_dns_hostnames": True, "enable_dns_support": True,
                                      "tags": tags}, module="module.vpc", index=0)


PROVISIONERS: dict[str, Callable[[Ctx], None]] = {
    "learn-terraform-drift-and-policy": provision_drift_and_policy, "learn-terraform-rds": provision_rds,
    "learn-terraform-aws-asg": provision_asg, "learn-terraform-lambda-api-gateway": provision_lambda,
    "terraform-aws-vpc": provision_vpc,
}


# ----------------------------------------------------------------------------- drift catalog
def _tag_value(rng: random.Random) -> str:
    """Realistic and hostile tag values: quotes, template sequences and newlines must stay data."""
    return rng.choice(["team-a", "cost center 42", 'say "hi"', "${jndi:x}", "%{if true}y%{endif}", "line1\nline2",
                       "prod", "back\\slash", "ünïcödé"])


def d_sg_rule_add(ctx: Ctx, address: str, gid: str) -> Truth:
    cidr = f"{ctx.rng.randint(11, 200)}.{ctx.rng.randint(0, 255)}.0.0/16"
    port = ctx.rng.choice([443, 8080, 3389, 22, 9000])
    ctx.c("ec2").authorize_security_group_ingress(GroupId=gid, IpPermissions=[_perm("tcp", port, port, cidr)])
    return Truth(keys=[(address, "ingress", "")])


def d_sg_rule_remove(ctx: Ctx, address: str, gid: str, perm: dict) -> Truth:
    ctx.c("ec2").revoke_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    return Truth(keys=[(address, "ingress", "")])


def d_ec2_tag(ctx: Ctx, address: str, rid: str, key: str | None = None) -> Truth:
    key = key or ctx.rng.choice(["Owner", "CostCenter", "Env", "Team", "data:class"])
    ctx.c("ec2").create_tags(Resources=[rid], Tags=[{"Key": key, "Value": _tag_value(ctx.rng)}])
    return Truth(keys=[(address, "tags", key)])


def d_new_sg(ctx: Ctx, vpc: str) -> Truth:
    name = f"ops-hotfix-{ctx.rng.randint(100, 999)}"
    ec2 = ctx.c("ec2")
    gid = ec2.create_security_group(GroupName=name, Description="created in console", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[gid], Tags=[{"Key": "Name", "Value": name}])
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[_perm("tcp", 443, 443, "10.0.0.0/8")])
    return Truth(created=[("aws_security_group", gid)])


def with_retry(ctx: Ctx, fn: Callable[[], Any]) -> None:
    """A console retry: the same call twice (the second may fail, e.g. a duplicate rule)."""
    fn()
    try:
        fn()
    except Exception:
        pass


def catalog(project: str) -> list[tuple[str, Callable[[Ctx], Truth]]]:
    """(drift type, injector) pairs for a project; injectors read ids from ``ctx.handles``."""
    h = lambda ctx, k: ctx.handles[k]  # noqa: E731
    out: list[tuple[str, Callable[[Ctx], Truth]]] = []
    if project == "learn-terraform-drift-and-policy":
        inst, sg = "module.network.aws_instance.bastion", "module.network.aws_security_group.bastion"

        def itype(ctx: Ctx) -> Truth:
            t = ctx.rng.choice(["t2.micro", "t3.large", "t2.xlarge", "m5.large"])
            ctx.c("ec2").modify_instance_attribute(InstanceId=h(ctx, "instance"), InstanceType={"Value": t})
            return Truth(keys=[(inst, "instance_type", "")])

        out += [("attribute", itype), ("tags", lambda ctx: d_ec2_tag(ctx, inst, h(ctx, "instance"))),
                ("tags", lambda ctx: d_ec2_tag(ctx, sg, h(ctx, "sg"))),
                ("sg_rule_add", lambda ctx: d_sg_rule_add(ctx, sg, h(ctx, "sg"))),
                ("sg_rule_remove", lambda ctx: d_sg_rule_remove(ctx, sg, h(ctx, "sg"), _perm("tcp", 22, 22, "192.80.0.0/16"))),
                ("new_resource", lambda ctx: d_new_sg(ctx, h(ctx, "vpc"))),
                ("deleted_resource", lambda ctx: (ctx.c("ec2").terminate_instances(InstanceIds=[h(ctx, "instance")]),
                                                  Truth(deleted=[inst]))[1])]
    elif project == "learn-terraform-rds":
        db, sg, sng = "aws_db_instance.education", "aws_security_group.rds", "aws_db_subnet_group.education"

        def modify(ctx: Ctx) -> Truth:
            choice = ctx.rng.choice(["DBInstanceClass", "AllocatedStorage", "BackupRetentionPeriod", "PubliclyAccessible"])
            value = {"DBInstanceClass": ctx.rng.choice(["db.t3.small", "db.t3.medium", "db.m5.large"]),
                     "AllocatedStorage": ctx.rng.choice([20, 50, 100]), "BackupRetentionPeriod": ctx.rng.choice([1, 14, 30]),
                     "PubliclyAccessible": False}[choice]
            ctx.c("rds").modify_db_instance(DBInstanceIdentifier="education", ApplyImmediately=True, **{choice: value})
            attr = {"DBInstanceClass": "instance_class", "AllocatedStorage": "allocated_storage",
                    "BackupRetentionPeriod": "backup_retention_period", "PubliclyAccessible": "publicly_accessible"}[choice]
            return Truth(keys=[(db, attr, "")])

        def db_tag(ctx: Ctx) -> Truth:
            key = ctx.rng.choice(["Owner", "Backup", "Compliance"])
            arn = ctx.c("rds").describe_db_instances(DBInstanceIdentifier="education")["DBInstances"][0]["DBInstanceArn"]
            ctx.c("rds").add_tags_to_resource(ResourceName=arn, Tags=[{"Key": key, "Value": _tag_value(ctx.rng)}])
            return Truth(keys=[(db, "tags", key)])

        def sng_tag(ctx: Ctx) -> Truth:
            key = ctx.rng.choice(["Name", "Tier"])
            ctx.c("rds").add_tags_to_resource(ResourceName="arn:aws:rds:us-east-1:123456789012:subgrp:education",
                                              Tags=[{"Key": key, "Value": _tag_value(ctx.rng)}])
            return Truth(keys=[(sng, "tags", key)])

        out += [("attribute", modify), ("attribute", modify), ("tags", db_tag), ("tags", sng_tag),
                ("tags", lambda ctx: d_ec2_tag(ctx, sg, h(ctx, "sg"), key=ctx.rng.choice(["Name", "Owner"]))),
                ("sg_rule_add", lambda ctx: d_sg_rule_add(ctx, sg, h(ctx, "sg"))),
                ("sg_rule_remove", lambda ctx: d_sg_rule_remove(ctx, sg, h(ctx, "sg"), _perm("tcp", 5432, 5432, "0.0.0.0/0"))),
                ("deleted_resource", lambda ctx: (ctx.c("rds").delete_db_instance(DBInstanceIdentifier="education-replica",
                                                                                  SkipFinalSnapshot=True),
                                                  Truth(deleted=["aws_db_instance.education_replica"]))[1])]
    elif project == "learn-terraform-aws-asg":
        asg, lst, lbsg = "aws_autoscaling_group.terramino", "aws_lb_listener.terramino", "aws_security_group.terramino_lb"

        def sizes(ctx: Ctx) -> Truth:
            mn = ctx.rng.randint(0, 2)
            mx = ctx.rng.randint(max(mn, 1) + 1, 6)
            ds = ctx.rng.randint(mn, mx)
            ctx.c("autoscaling").update_auto_scaling_group(AutoScalingGroupName="terramino", MinSize=mn, MaxSize=mx, DesiredCapacity=ds)
            keys = [(asg, a, "") for a, v, old in (("min_size", mn, 1), ("max_size", mx, 3), ("desired_capacity", ds, 1)) if v != old]
            return Truth(keys=keys)

        def port(ctx: Ctx) -> Truth:
            ctx.c("elbv2").modify_listener(ListenerArn=h(ctx, "listener"), Port=ctx.rng.choice([8080, 8000, 81]))
            return Truth(keys=[(lst, "port", "")])

        def inst_rule_remove(ctx: Ctx) -> Truth:
            ctx.c("ec2").revoke_security_group_ingress(GroupId=h(ctx, "inst_sg"), IpPermissions=[_perm("tcp", 80, 80, sg=h(ctx, "lb_sg"))])
            return Truth(keys=[("aws_security_group.terramino_instance", "ingress", "")])

        out += [("attribute", sizes), ("attribute", port), ("tags", lambda ctx: d_ec2_tag(ctx, lbsg, h(ctx, "lb_sg"))),
                ("sg_rule_add", lambda ctx: d_sg_rule_add(ctx, lbsg, h(ctx, "lb_sg"))),
                ("sg_rule_remove", lambda ctx: d_sg_rule_remove(ctx, lbsg, h(ctx, "lb_sg"), _perm("tcp", 80, 80, "0.0.0.0/0"))),
                ("sg_rule_remove", inst_rule_remove),
                ("deleted_resource", lambda ctx: (ctx.c("elbv2").delete_listener(ListenerArn=h(ctx, "listener")),
                                                  Truth(deleted=[lst]))[1])]
    elif project == "learn-terraform-lambda-api-gateway":
        fn, role = "aws_lambda_function.hello_world", "aws_iam_role.lambda_exec"

        def conf(ctx: Ctx) -> Truth:
            choice = ctx.rng.choice(["MemorySize", "Timeout", "Runtime"])
            value = {"MemorySize": ctx.rng.choice([256, 512, 1024]), "Timeout": ctx.rng.choice([10, 30, 60]),
                     "Runtime": ctx.rng.choice(["nodejs18.x", "nodejs20.x"])}[choice]
            ctx.c("lambda").update_function_configuration(FunctionName="HelloWorld", **{choice: value})
            return Truth(keys=[(fn, {"MemorySize": "memory_size", "Timeout": "timeout", "Runtime": "runtime"}[choice], "")])

        def fn_tag(ctx: Ctx) -> Truth:
            key = ctx.rng.choice(["Owner", "Team"])
            arn = ctx.c("lambda").get_function(FunctionName="HelloWorld")["Configuration"]["FunctionArn"]
            ctx.c("lambda").tag_resource(Resource=arn, Tags={key: _tag_value(ctx.rng)})
            return Truth(keys=[(fn, "tags", key)])

        def retention(ctx: Ctx) -> Truth:
            ctx.c("logs").put_retention_policy(logGroupName="/aws/lambda/HelloWorld", retentionInDays=ctx.rng.choice([7, 14, 90]))
            return Truth(keys=[("aws_cloudwatch_log_group.hello_world", "retention_in_days", "")])

        def role_tag(ctx: Ctx) -> Truth:
            key = ctx.rng.choice(["Owner", "Purpose"])
            ctx.c("iam").tag_role(RoleName="serverless_lambda", Tags=[{"Key": key, "Value": _tag_value(ctx.rng)}])
            return Truth(keys=[(role, "tags", key)])

        def assume(ctx: Ctx) -> Truth:
            doc = json.loads(json.dumps(ASSUME))
            doc["Statement"][0]["Principal"]["Service"] = ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]
            ctx.c("iam").update_assume_role_policy(RoleName="serverless_lambda", PolicyDocument=json.dumps(doc))
            return Truth(keys=[(role, "assume_role_policy", "")])

        def attach(ctx: Ctx) -> Truth:
            arn = ctx.rng.choice(["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"])
            ctx.c("iam").attach_role_policy(RoleName="serverless_lambda", PolicyArn=arn)
            return Truth(created=[("aws_iam_role_policy_attachment", f"serverless_lambda/{arn}")])

        def versioning(ctx: Ctx) -> Truth:
            ctx.c("s3").put_bucket_versioning(Bucket=h(ctx, "bucket"), VersioningConfiguration={"Status": "Enabled"})
            return Truth(companions=[("aws_s3_bucket_versioning", h(ctx, "bucket"), "versioning_configuration.status")])

        def pab(ctx: Ctx) -> Truth:
            ctx.c("s3").put_public_access_block(Bucket=h(ctx, "bucket"), PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
            return Truth(companions=[("aws_s3_bucket_public_access_block", h(ctx, "bucket"), "block_public_acls")])

        def bucket_tags(ctx: Ctx) -> Truth:
            key = ctx.rng.choice(["Owner", "DataClass"])
            ctx.c("s3").put_bucket_tagging(Bucket=h(ctx, "bucket"), Tagging={"TagSet": [{"Key": key, "Value": _tag_value(ctx.rng)}]})
            return Truth(keys=[("aws_s3_bucket.lambda_bucket", "tags", key)])

        out += [("attribute", conf), ("attribute", retention), ("tags", fn_tag), ("tags", role_tag), ("tags", bucket_tags),
                ("policy", assume), ("policy", attach),
                ("policy", lambda ctx: (ctx.c("iam").detach_role_policy(RoleName="serverless_lambda", PolicyArn=BASIC_EXEC),
                                        Truth(deleted=["aws_iam_role_policy_attachment.lambda_policy"]))[1]),
                ("bucket_setting", versioning), ("bucket_setting", pab),
                ("deleted_resource", lambda ctx: (ctx.c("logs").delete_log_group(logGroupName="/aws/lambda/HelloWorld"),
                                                  Truth(deleted=["aws_cloudwatch_log_group.hello_world"]))[1])]
    elif project == "terraform-aws-vpc":
        vpc = "module.vpc.aws_vpc.this[0]"

        def dns(ctx: Ctx) -> Truth:
            which = ctx.rng.choice(["EnableDnsHostnames", "EnableDnsSupport"])
            ctx.c("ec2").modify_vpc_attribute(VpcId=h(ctx, "vpc"), **{which: {"Value": False}})
            return Truth(keys=[(vpc, "enable_dns_hostnames" if which == "EnableDnsHostnames" else "enable_dns_support", "")])

        out += [("attribute", dns), ("tags", lambda ctx: d_ec2_tag(ctx, vpc, h(ctx, "vpc"))),
                ("tags", lambda ctx: d_ec2_tag(ctx, vpc, h(ctx, "vpc"), key=ctx.rng.choice(["GithubOrg", "Example"]))),
                ("new_resource", lambda ctx: d_new_sg(ctx, h(ctx, "vpc")))]
    return out


# ----------------------------------------------------------------------------- noise
def noise_revert(ctx: Ctx, project: str) -> None:
    """Change something and set it back: must net out to nothing."""
    h = ctx.handles
    if "sg" in h or "lb_sg" in h:
        gid = h.get("sg") or h.get("lb_sg")
        perm = _perm("tcp", 6000, 6000, "203.0.113.0/24")
        ctx.c("ec2").authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
        ctx.c("ec2").revoke_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    elif "function" in h:
        ctx.c("lambda").update_function_configuration(FunctionName="HelloWorld", Timeout=99)
        ctx.c("lambda").update_function_configuration(FunctionName="HelloWorld", Timeout=3)
    elif "vpc" in h:
        ctx.c("ec2").create_tags(Resources=[h["vpc"]], Tags=[{"Key": "tmp", "Value": "x"}])
        ctx.c("ec2").delete_tags(Resources=[h["vpc"]], Tags=[{"Key": "tmp"}])


def noise_reads(ctx: Ctx) -> None:
    ctx.c("ec2").describe_vpcs()
    ctx.c("ec2").describe_security_groups()


# ----------------------------------------------------------------------------- scenario
@dataclass
class Scenario:
    project: str
    drift_type: str
    terraform_dir: Path
    state_file: Path
    trace_file: Path
    truth: Truth
    noise: list[str]
    handles: dict[str, Any]


_HARNESS: dict[str, tuple[Any, Recorder, dict[str, Any]]] = {}


def _harness(endpoint: str) -> tuple[Any, Recorder, dict[str, Any]]:
    """One session, recorder and client set per moto endpoint (client creation is slow)."""
    if endpoint not in _HARNESS:
        session = make_session()
        _HARNESS[endpoint] = (session, Recorder(session), {})
    return _HARNESS[endpoint]


def setup_project(project: str, *, data_dir: Path, workdir: Path, endpoint: str, seed: int) -> Ctx:
    """Reset moto, copy the project, provision it as Terraform would and write its state."""
    reset_moto(endpoint)
    workdir.mkdir(parents=True, exist_ok=True)
    tf_dir = copy_project(data_dir, project, workdir)
    session, recorder, clients = _harness(endpoint)
    recorder.clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=seed % 1000))
    recorder.records = []
    recorder.enabled = True
    ctx = Ctx(endpoint=endpoint, session=session, recorder=recorder, workdir=workdir, terraform_dir=tf_dir,
              rng=random.Random(seed), _clients=clients)
    ctx.as_terraform()
    PROVISIONERS[project](ctx)
    return ctx


def inject(project: str, index: int, *, data_dir: Path, workdir: Path, endpoint: str, seed: int = 0) -> Scenario:
    """Scenario ``index`` of ``project``: one drift from the catalog, with noise by index."""
    ctx = setup_project(project, data_dir=data_dir, workdir=workdir, endpoint=endpoint, seed=seed * 1000 + index)
    state_file = workdir / "terraform.tfstate"
    state_file.write_text(json.dumps(new_state_document(ctx.state_entries), indent=1))
    entries = catalog(project)
    drift_type, fn = entries[index % len(entries)]
    ctx.as_console()
    noise: list[str] = []
    mode = (index // len(entries)) % 4
    if mode >= 1:
        noise.append("reads")
        noise_reads(ctx)
    if mode >= 2:
        noise.append("revert")
        noise_revert(ctx, project)
    truth = fn(ctx)
    if mode == 3:  # a retry of the last change and a Terraform refresh in between
        noise.append("retry")
        last = ctx.recorder.records[-1]
        ctx.recorder.records.append(dict(last, eventID=last["eventID"] + "-retry"))
        ctx.as_terraform()
        ctx.c("ec2").describe_vpcs()
    records = list(ctx.recorder.records)
    if index % 2:
        noise.append("shuffled")
        ctx.rng.shuffle(records)
    ctx.recorder.records = records
    fmt = ["records", "array", "jsonl"][index % 3]
    trace = workdir / ("trace.json.gz" if fmt == "records" and index % 2 else f"trace.{'jsonl' if fmt == 'jsonl' else 'json'}")
    ctx.recorder.write(trace, fmt=fmt)
    ctx.recorder.enabled = False
    return Scenario(project=project, drift_type=drift_type if not truth.empty else "noop", terraform_dir=ctx.terraform_dir,
                    state_file=state_file, trace_file=trace, truth=truth, noise=noise, handles=dict(ctx.handles))


# ----------------------------------------------------------------------------- scoring
def score(files: dict[Path, str], scenario: Scenario, state: State, reader: LiveReader,
          *, needs_person: list[str] | None = None) -> tuple[bool, str]:
    """pass = the patched lines are fmt-clean, the patched config equals the live cloud on every drifted attribute, and
    nothing else in the evaluated configuration changed."""
    if needs_person:
        return False, "needs person: " + "; ".join(needs_person)[:200]
    if files:
        ok, out = check_fmt_of_patch_lines(scenario.terraform_dir, files)  # patched lines only: no collateral fmt
        if not ok:
            return False, "fmt -check failed"
    before = Config(scenario.terraform_dir, state=state)
    after = Config(scenario.terraform_dir, texts={Path(p).resolve(): t for p, t in files.items()}, state=state)
    for address, attribute, key in scenario.truth.keys:
        res = state.get(address)
        assert res is not None, f"{address}: the scenario's truth names a resource of its state"
        live = reader.value(res.type, live_identifier(res.type, res.attributes), attribute, key)
        cfg = config_value(after, address, attribute, key)
        if cfg != live:
            return False, f"{address}.{attribute}[{key}] config={cfg!r} live={live!r}"
    for address in scenario.truth.deleted:
        if after.resource(address) is not None:
            return False, f"{address} still in config"
    fa, fb = flatten(after), flatten(before)
    created_addrs = set(k[0] for k in fa) - set(k[0] for k in fb)
    for rtype, ident in scenario.truth.created:
        if not any(a.split(".")[-2] == rtype for a in created_addrs):
            return False, f"no {rtype} block for new {ident}"
    for rtype, bucket, attribute in scenario.truth.companions:
        hits = [a for a in created_addrs | set(k[0] for k in fa) if a.split(".")[-2] == rtype]
        if not hits:
            return False, f"no {rtype} for {bucket}"
        live = reader.value(rtype, bucket, attribute)
        if config_value(after, hits[0], attribute) != live:
            return False, f"{rtype}.{attribute} differs from live"
    allowed = {(a.split("[")[0], attr, k) for a, attr, k in scenario.truth.keys}
    deleted = {a.split("[")[0] for a in scenario.truth.deleted}
    for k in set(fa) | set(fb):
        if fa.get(k) == fb.get(k):
            continue
        addr = k[0]
        if addr in created_addrs or addr in deleted:
            continue
        if (addr, k[1], k[2]) in allowed or (addr, k[1], "") in allowed:
            continue
        return False, f"unrelated change at {k}: {fb.get(k)!r} -> {fa.get(k)!r}"
    return True, "ok"


def load_scenario_state(scenario: Scenario) -> State:
    return load_state(scenario.state_file)


def unrelated_lines(files: dict[Path, str], scenario: Scenario, state: State) -> int:
    """Lines a patch changes that the drift did not require (the benchmark's collateral measure).

    A hunk of the diff is unrelated when putting its original lines back leaves the evaluated
    configuration (every resource attribute, after variables/locals/modules) exactly as the whole
    patch makes it: reformatting, moved whitespace, comments, edits that cancel out. Its line count
    (the larger side of the hunk) is added up over every changed file.
    """
    import difflib
    import re

    originals = {Path(p).resolve(): (Path(p).read_text() if Path(p).exists() else "") for p in files}
    patched = {Path(p).resolve(): t for p, t in files.items()}
    target = flatten(Config(scenario.terraform_dir, texts=patched, state=state))
    before = {a for a, _attr, _k in flatten(Config(scenario.terraform_dir, state=state))}
    # a hunk that still reads a resource the patch removed must go with it (an output of a deleted resource)
    gone = {".".join(a.split(".")[-2:]).split("[")[0] for a in before - {a for a, _attr, _k in target}}
    dangling = re.compile("|".join(rf"(?<![\w.]){re.escape(g)}(?![\w-])" for g in gone)) if gone else None
    total = 0
    for path, new in patched.items():
        a, b = originals[path].splitlines(keepends=True), new.splitlines(keepends=True)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            if dangling is not None and dangling.search("".join(a[i1:i2])):
                continue
            reverted = "".join(b[:j1] + a[i1:i2] + b[j2:])
            try:
                got = flatten(Config(scenario.terraform_dir, texts={**patched, path: reverted}, state=state))
            except Exception:  # the hunk cannot go back alone (it is part of a larger edit): required
                continue
            if got == target:
                total += max(i2 - i1, j2 - j1)
    return total
