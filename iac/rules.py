"""The rule table: which API call means which attribute-level change of which Terraform type.

CloudTrail request shapes differ per service protocol (EC2 wraps lists in ``{"items": [...]}``,
S3 keeps the XML names, RDS lower-cases the first letter of ``DBInstanceIdentifier`` ...). The
accessors below are tolerant of those spellings so the same rule reads real CloudTrail and the
records our recorder writes.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from iac.models import Intent, TraceRecord

READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Batch Get", "Select", "Scan", "Query")
# Mutating calls that change no configuration Terraform manages (power state, sessions, data).
OPERATIONAL = {
    "StartInstances", "StopInstances", "RebootInstances", "ConsoleLogin", "AssumeRole",
    "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "GetFederationToken", "PutObject", "DeleteObject",
    "CreateLogStream", "PutLogEvents", "Invoke", "InvokeModel", "StartSession", "SendCommand",
    "CreateMultipartUpload", "CompleteMultipartUpload", "UploadPart", "CopyObject", "RebootDBInstance",
    "StartDBInstance", "StopDBInstance", "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey",
    "CreateNetworkInterface", "DeleteNetworkInterface", "AttachNetworkInterface", "CreateSnapshot",
    "CreateDBSnapshot", "SetInstanceHealth", "RecordLifecycleActionHeartbeat", "CompleteLifecycleAction",
}


def is_read(record: TraceRecord) -> bool:
    if record.read_only is True:
        return True
    name = record.event_name
    return name.startswith(READ_PREFIXES)


def canonical_event(name: str) -> str:
    """Lambda appends API versions (``UpdateFunctionConfiguration20150331v2``); drop them."""
    return re.sub(r"\d{8}(v\d+)?$", "", name)


# ----------------------------------------------------------------- tolerant accessors
def get(d: Any, *names: str, default: Any = None) -> Any:
    """Case-insensitive lookup of the first present name (``DBInstanceClass`` = ``dBInstanceClass``)."""
    if not isinstance(d, dict):
        return default
    lowered = {str(k).lower(): v for k, v in d.items()}
    for n in names:
        if n.lower() in lowered:
            return lowered[n.lower()]
    return default


def items(x: Any) -> list[Any]:
    """Unwrap EC2 ``{"items": [...]}``, S3 ``{"Tag": [...]}`` and single objects into a list."""
    if x is None:
        return []
    if isinstance(x, list):
        return x
    if isinstance(x, dict):
        for key in ("items", "item", "Tag", "member", "Rule"):
            if key in x:
                inner = x[key]
                return inner if isinstance(inner, list) else [inner]
        return [x] if x else []
    return [x]


def scalar(x: Any) -> Any:
    """EC2 wraps attribute values: ``{"value": "t2.large"}``."""
    if isinstance(x, dict) and len(x) == 1:
        only = next(iter(x))
        if only.lower() == "value":
            return x[only]
    return x


def as_bool(x: Any) -> Any:
    x = scalar(x)
    if isinstance(x, str) and x.lower() in ("true", "false"):
        return x.lower() == "true"
    return x


def as_int(x: Any) -> Any:
    x = scalar(x)
    if isinstance(x, str) and re.fullmatch(r"-?\d+", x):
        return int(x)
    return x


def policy_json(x: Any) -> Any:
    """IAM/S3 policies arrive URL-encoded or as JSON text; normalize to a Python object."""
    if isinstance(x, dict):
        return x
    if not isinstance(x, str):
        return x
    text = x
    if "%7B" in text or "%22" in text:
        text = urllib.parse.unquote(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def tag_pairs(x: Any) -> list[tuple[str, Any]]:
    """Tags in any CloudTrail spelling -> [(key, value)]."""
    if isinstance(x, dict) and not any(k.lower() in ("items", "tag", "tagset") for k in x):
        if get(x, "key") is None:
            return [(str(k), v) for k, v in x.items()]  # lambda style {"k": "v"}
    if isinstance(x, dict) and get(x, "TagSet") is not None:
        x = get(x, "TagSet")
    out = []
    for t in items(x):
        if isinstance(t, dict) and get(t, "key") is not None:
            out.append((str(get(t, "key")), get(t, "value", default="")))
    return out


def tag_keys(x: Any) -> list[str]:
    out = []
    for t in items(x):
        if isinstance(t, dict):
            if get(t, "key") is not None:
                out.append(str(get(t, "key")))
        else:
            out.append(str(t))
    return out


# ----------------------------------------------------------------- rules
Rule = Callable[[TraceRecord], list[Intent]]
RULES: dict[tuple[str, str], Rule] = {}


def rule(service: str, *names: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for n in names:
            RULES[(service, n)] = fn
        return fn

    return deco


def _intent(rec: TraceRecord, kind: str, rtype: str, ident: str, attribute: str = "", value: Any = None) -> Intent:
    return Intent(kind=kind, address=None, resource_type=rtype, attribute=attribute, value=value,
                  resource_id=str(ident or ""), records=[rec])


EC2_TAGGABLE = {
    "i-": "aws_instance", "sg-": "aws_security_group", "vpc-": "aws_vpc", "subnet-": "aws_subnet",
    "rtb-": "aws_route_table", "igw-": "aws_internet_gateway", "nat-": "aws_nat_gateway",
    "eipalloc-": "aws_eip", "vol-": "aws_ebs_volume", "acl-": "aws_network_acl", "lt-": "aws_launch_template",
    "ami-": "aws_ami", "dopt-": "aws_vpc_dhcp_options",
}


def ec2_type_for(resource_id: str) -> str:
    for prefix, t in EC2_TAGGABLE.items():
        if resource_id.startswith(prefix):
            return t
    return ""


@rule("ec2", "CreateTags", "DeleteTags")
def _ec2_tags(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    ids = [get(r, "resourceId") if isinstance(r, dict) else r for r in items(get(req, "resourcesSet", "resources"))]
    out = []
    for rid in ids:
        rtype = ec2_type_for(str(rid))
        if rec.event_name == "CreateTags":
            for k, v in tag_pairs(get(req, "tagSet", "tags")):
                out.append(_intent(rec, "tag_set", rtype, rid, "tags", (k, v)))
        else:
            for k, _v in tag_pairs(get(req, "tagSet", "tags")):
                out.append(_intent(rec, "tag_unset", rtype, rid, "tags", (k, None)))
    return out


INSTANCE_ATTRS = {
    "instanceType": ("instance_type", scalar), "disableApiTermination": ("disable_api_termination", as_bool),
    "ebsOptimized": ("ebs_optimized", as_bool), "sourceDestCheck": ("source_dest_check", as_bool),
    "instanceInitiatedShutdownBehavior": ("instance_initiated_shutdown_behavior", scalar),
    "disableApiStop": ("disable_api_stop", as_bool),
}


@rule("ec2", "ModifyInstanceAttribute")
def _modify_instance(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    iid = get(req, "instanceId")
    out = []
    attr_name = get(req, "attribute")
    for api, (tf, conv) in INSTANCE_ATTRS.items():
        v = get(req, api)
        if v is None and attr_name and attr_name.lower() == api.lower():
            v = get(req, "value")
        if v is not None:
            out.append(_intent(rec, "set", "aws_instance", iid, tf, conv(v)))
    if get(req, "userData") is not None or (attr_name or "").lower() == "userdata":
        # CloudTrail redacts the content: the change is real, its value is not in the record
        out.append(_intent(rec, "review", "aws_instance", iid, "", "user data replaced out of band (ModifyInstanceAttribute)"))
    if get(req, "groupSet") is not None:
        out.append(_intent(rec, "set", "aws_instance", iid, "vpc_security_group_ids",
                           sorted(get(g, "groupId") for g in items(get(req, "groupSet")))))
    return out


@rule("ec2", "ModifyVpcAttribute")
def _modify_vpc(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    out = []
    for api, tf in (("enableDnsHostnames", "enable_dns_hostnames"), ("enableDnsSupport", "enable_dns_support")):
        if get(req, api) is not None:
            out.append(_intent(rec, "set", "aws_vpc", get(req, "vpcId"), tf, as_bool(get(req, api))))
    return out


@rule("ec2", "ModifySubnetAttribute")
def _modify_subnet(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    v = get(req, "mapPublicIpOnLaunch")
    if v is None:
        return []
    return [_intent(rec, "set", "aws_subnet", get(req, "subnetId"), "map_public_ip_on_launch", as_bool(v))]


def sg_rules(req: dict[str, Any], direction: str) -> list[tuple]:
    """Normalized rules (direction, protocol, from, to, source) of an Authorize/Revoke request."""
    out: list[tuple] = []
    perms = items(get(req, "ipPermissions"))
    if not perms and get(req, "cidrIp") is not None:  # the flat (legacy) form
        perms = [{"ipProtocol": get(req, "ipProtocol"), "fromPort": get(req, "fromPort"),
                  "toPort": get(req, "toPort"), "ipRanges": [{"cidrIp": get(req, "cidrIp")}]}]
    for p in perms:
        if not isinstance(p, dict):
            continue
        proto = normalize_protocol(get(p, "ipProtocol"))
        fp, tp = as_int(get(p, "fromPort", default=0)), as_int(get(p, "toPort", default=0))
        if proto == "-1":
            fp, tp = 0, 0
        for r in items(get(p, "ipRanges")):
            out.append((direction, proto, fp, tp, "cidr:" + str(get(r, "cidrIp"))))
        for r in items(get(p, "ipv6Ranges")):
            out.append((direction, proto, fp, tp, "cidr6:" + str(get(r, "cidrIpv6"))))
        for r in items(get(p, "groups", "userIdGroupPairs")):
            out.append((direction, proto, fp, tp, "sg:" + str(get(r, "groupId"))))
        for r in items(get(p, "prefixListIds")):
            out.append((direction, proto, fp, tp, "pl:" + str(get(r, "prefixListId"))))
    return out


def normalize_protocol(p: Any) -> str:
    p = str(p if p is not None else "-1").lower()
    return {"all": "-1", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}.get(p, p)


@rule("ec2", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
      "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress")
def _sg_rule(rec: TraceRecord) -> list[Intent]:
    direction = "ingress" if rec.event_name.endswith("Ingress") else "egress"
    kind = "rule_add" if rec.event_name.startswith("Authorize") else "rule_remove"
    gid = get(rec.request, "groupId")
    return [_intent(rec, kind, "aws_security_group", gid, direction, r) for r in sg_rules(rec.request, direction)]


@rule("ec2", "CreateSecurityGroup")
def _create_sg(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    gid = get(rec.response, "groupId") or ""
    attrs = {"name": get(req, "groupName"), "description": get(req, "groupDescription", "description"),
             "vpc_id": get(req, "vpcId")}
    return [_intent(rec, "create", "aws_security_group", gid, "", {k: v for k, v in attrs.items() if v})]


@rule("ec2", "DeleteSecurityGroup")
def _delete_sg(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_security_group", get(rec.request, "groupId") or get(rec.request, "groupName"))]


@rule("ec2", "RunInstances")
def _run_instances(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    out = []
    for inst in items(get(get(rec.response, "instancesSet") or {}, "items") or get(rec.response, "instancesSet")):
        iid = get(inst, "instanceId")
        attrs = {"ami": get(req, "imageId") or get(inst, "imageId"),
                 "instance_type": get(req, "instanceType") or get(inst, "instanceType"),
                 "subnet_id": get(req, "subnetId") or get(inst, "subnetId")}
        tags = {}
        for spec in items(get(req, "tagSpecificationSet", "tagSpecifications")):
            tags.update(dict(tag_pairs(get(spec, "tags", "tagSet"))))
        if tags:
            attrs["tags"] = tags
        out.append(_intent(rec, "create", "aws_instance", iid, "", {k: v for k, v in attrs.items() if v}))
    return out


@rule("ec2", "TerminateInstances")
def _terminate(rec: TraceRecord) -> list[Intent]:
    ids = [get(i, "instanceId") if isinstance(i, dict) else i for i in items(get(rec.request, "instancesSet", "instanceIds"))]
    return [_intent(rec, "delete", "aws_instance", i) for i in ids]


# ----------------------------------------------------------------- S3
def _bucket(rec: TraceRecord) -> str:
    return str(get(rec.request, "bucketName", "bucket") or "")


@rule("s3", "PutBucketTagging")
def _s3_tags(rec: TraceRecord) -> list[Intent]:
    pairs = tag_pairs(get(get(rec.request, "Tagging") or {}, "TagSet"))
    return [_intent(rec, "tags_replace", "aws_s3_bucket", _bucket(rec), "tags", dict(pairs))]


@rule("s3", "DeleteBucketTagging")
def _s3_untag(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "tags_replace", "aws_s3_bucket", _bucket(rec), "tags", {})]


@rule("s3", "PutBucketVersioning")
def _s3_versioning(rec: TraceRecord) -> list[Intent]:
    status = get(get(rec.request, "VersioningConfiguration") or {}, "Status")
    return [_intent(rec, "sub_set", "aws_s3_bucket_versioning", _bucket(rec),
                    "versioning_configuration.status", status)]


@rule("s3", "PutBucketPolicy")
def _s3_policy(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "sub_set", "aws_s3_bucket_policy", _bucket(rec), "policy",
                    policy_json(get(rec.request, "bucketPolicy", "policy")))]


@rule("s3", "DeleteBucketPolicy")
def _s3_policy_delete(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_s3_bucket_policy", _bucket(rec))]


@rule("s3", "PutBucketEncryption")
def _s3_encryption(rec: TraceRecord) -> list[Intent]:
    conf = get(rec.request, "ServerSideEncryptionConfiguration") or {}
    rules_ = items(get(conf, "Rule"))
    algo = None
    for r in rules_:
        algo = get(get(r, "ApplyServerSideEncryptionByDefault") or {}, "SSEAlgorithm")
    return [_intent(rec, "sub_set", "aws_s3_bucket_server_side_encryption_configuration", _bucket(rec),
                    "rule.apply_server_side_encryption_by_default.sse_algorithm", algo)]


PAB = {"BlockPublicAcls": "block_public_acls", "IgnorePublicAcls": "ignore_public_acls",
       "BlockPublicPolicy": "block_public_policy", "RestrictPublicBuckets": "restrict_public_buckets"}


@rule("s3", "PutPublicAccessBlock", "PutBucketPublicAccessBlock")
def _s3_pab(rec: TraceRecord) -> list[Intent]:
    conf = get(rec.request, "PublicAccessBlockConfiguration") or {}
    return [_intent(rec, "sub_set", "aws_s3_bucket_public_access_block", _bucket(rec), tf, as_bool(get(conf, api)))
            for api, tf in PAB.items() if get(conf, api) is not None]


@rule("s3", "CreateBucket")
def _s3_create(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "create", "aws_s3_bucket", _bucket(rec), "", {"bucket": _bucket(rec)})]


@rule("s3", "DeleteBucket")
def _s3_delete(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_s3_bucket", _bucket(rec))]


# ----------------------------------------------------------------- IAM
@rule("iam", "UpdateAssumeRolePolicy")
def _assume(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "set", "aws_iam_role", get(rec.request, "roleName"), "assume_role_policy",
                    policy_json(get(rec.request, "policyDocument")))]


@rule("iam", "UpdateRole", "UpdateRoleDescription")
def _update_role(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    out = []
    if get(req, "description") is not None:
        out.append(_intent(rec, "set", "aws_iam_role", get(req, "roleName"), "description", get(req, "description")))
    if get(req, "maxSessionDuration") is not None:
        out.append(_intent(rec, "set", "aws_iam_role", get(req, "roleName"), "max_session_duration",
                           as_int(get(req, "maxSessionDuration"))))
    return out


@rule("iam", "TagRole", "UntagRole")
def _role_tags(rec: TraceRecord) -> list[Intent]:
    role = get(rec.request, "roleName")
    if rec.event_name == "TagRole":
        return [_intent(rec, "tag_set", "aws_iam_role", role, "tags", (k, v)) for k, v in tag_pairs(get(rec.request, "tags"))]
    return [_intent(rec, "tag_unset", "aws_iam_role", role, "tags", (k, None)) for k in tag_keys(get(rec.request, "tagKeys"))]


@rule("iam", "AttachRolePolicy", "DetachRolePolicy")
def _attach(rec: TraceRecord) -> list[Intent]:
    kind = "attach" if rec.event_name.startswith("Attach") else "detach"
    return [_intent(rec, kind, "aws_iam_role", get(rec.request, "roleName"), "policy_arn", get(rec.request, "policyArn"))]


@rule("iam", "PutRolePolicy")
def _put_role_policy(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    return [_intent(rec, "inline_policy", "aws_iam_role", get(req, "roleName"), get(req, "policyName"),
                    policy_json(get(req, "policyDocument")))]


@rule("iam", "CreatePolicyVersion")
def _policy_version(rec: TraceRecord) -> list[Intent]:
    if as_bool(get(rec.request, "setAsDefault")) is False:
        return []
    return [_intent(rec, "set", "aws_iam_policy", get(rec.request, "policyArn"), "policy",
                    policy_json(get(rec.request, "policyDocument")))]


@rule("iam", "CreateRole")
def _create_role(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    attrs = {"name": get(req, "roleName"), "assume_role_policy": policy_json(get(req, "assumeRolePolicyDocument"))}
    if get(req, "description"):
        attrs["description"] = get(req, "description")
    return [_intent(rec, "create", "aws_iam_role", get(req, "roleName"), "", attrs)]


@rule("iam", "DeleteRole")
def _delete_role(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_iam_role", get(rec.request, "roleName"))]


# ----------------------------------------------------------------- RDS
RDS_ATTRS = {
    "dBInstanceClass": ("instance_class", scalar), "allocatedStorage": ("allocated_storage", as_int),
    "backupRetentionPeriod": ("backup_retention_period", as_int), "multiAZ": ("multi_az", as_bool),
    "publiclyAccessible": ("publicly_accessible", as_bool), "engineVersion": ("engine_version", scalar),
    "deletionProtection": ("deletion_protection", as_bool), "storageType": ("storage_type", scalar),
    "maxAllocatedStorage": ("max_allocated_storage", as_int), "iops": ("iops", as_int),
    "autoMinorVersionUpgrade": ("auto_minor_version_upgrade", as_bool),
    "preferredBackupWindow": ("backup_window", scalar), "preferredMaintenanceWindow": ("maintenance_window", scalar),
    "copyTagsToSnapshot": ("copy_tags_to_snapshot", as_bool), "monitoringInterval": ("monitoring_interval", as_int),
}


@rule("rds", "ModifyDBInstance")
def _modify_db(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    ident = get(req, "dBInstanceIdentifier")
    return [_intent(rec, "set", "aws_db_instance", ident, tf, conv(get(req, api)))
            for api, (tf, conv) in RDS_ATTRS.items() if get(req, api) is not None]


@rule("rds", "DeleteDBInstance")
def _delete_db(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_db_instance", get(rec.request, "dBInstanceIdentifier"))]


@rule("rds", "AddTagsToResource", "RemoveTagsFromResource")
def _rds_tags(rec: TraceRecord) -> list[Intent]:
    arn = str(get(rec.request, "resourceName") or "")
    rtype = "aws_db_instance" if ":db:" in arn else ("aws_db_subnet_group" if ":subgrp:" in arn else "aws_db_parameter_group")
    ident = arn.rsplit(":", 1)[-1]
    if rec.event_name.startswith("Add"):
        return [_intent(rec, "tag_set", rtype, ident, "tags", (k, v)) for k, v in tag_pairs(get(rec.request, "tags"))]
    return [_intent(rec, "tag_unset", rtype, ident, "tags", (k, None)) for k in tag_keys(get(rec.request, "tagKeys"))]


# ----------------------------------------------------------------- Lambda
LAMBDA_ATTRS = {"memorySize": ("memory_size", as_int), "timeout": ("timeout", as_int), "runtime": ("runtime", scalar),
                "handler": ("handler", scalar), "description": ("description", scalar)}


def _function(rec: TraceRecord) -> str:
    name = str(get(rec.request, "functionName", "resource") or "")
    return name.split(":function:", 1)[1].split(":")[0] if ":function:" in name else name


@rule("lambda", "UpdateFunctionConfiguration")
def _lambda_conf(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    out = [_intent(rec, "set", "aws_lambda_function", _function(rec), tf, conv(get(req, api)))
           for api, (tf, conv) in LAMBDA_ATTRS.items() if get(req, api) is not None]
    if get(req, "layers") is not None:
        out.append(_intent(rec, "set", "aws_lambda_function", _function(rec), "layers", list(items(get(req, "layers")))))
    if get(req, "role") is not None:
        out.append(_intent(rec, "set", "aws_lambda_function", _function(rec), "role", get(req, "role")))
    if get(req, "kMSKeyArn") is not None:
        out.append(_intent(rec, "set", "aws_lambda_function", _function(rec), "kms_key_arn", get(req, "kMSKeyArn")))
    if get(req, "vpcConfig") is not None:
        out.append(_intent(rec, "review", "aws_lambda_function", _function(rec), "", "VPC config changed (UpdateFunctionConfiguration)"))
    env = get(req, "environment")
    if env is not None:
        out.append(_intent(rec, "set", "aws_lambda_function", _function(rec), "environment.variables",
                           dict(get(env, "variables") or {})))
    return out


@rule("lambda", "PutFunctionConcurrency", "DeleteFunctionConcurrency")
def _lambda_concurrency(rec: TraceRecord) -> list[Intent]:
    value = as_int(get(rec.request, "reservedConcurrentExecutions")) if rec.event_name.startswith("Put") else None
    return [_intent(rec, "set", "aws_lambda_function", _function(rec), "reserved_concurrent_executions", value)]


@rule("lambda", "TagResource", "UntagResource")
def _lambda_tags(rec: TraceRecord) -> list[Intent]:
    fn = _function(rec)
    if rec.event_name == "TagResource":
        return [_intent(rec, "tag_set", "aws_lambda_function", fn, "tags", (k, v)) for k, v in tag_pairs(get(rec.request, "tags"))]
    return [_intent(rec, "tag_unset", "aws_lambda_function", fn, "tags", (k, None)) for k in tag_keys(get(rec.request, "tagKeys"))]


@rule("lambda", "DeleteFunction")
def _lambda_delete(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_lambda_function", _function(rec))]


# ----------------------------------------------------------------- Auto Scaling, ELB, logs
ASG_ATTRS = {"minSize": ("min_size", as_int), "maxSize": ("max_size", as_int),
             "desiredCapacity": ("desired_capacity", as_int), "healthCheckType": ("health_check_type", scalar),
             "healthCheckGracePeriod": ("health_check_grace_period", as_int), "defaultCooldown": ("default_cooldown", as_int)}


@rule("autoscaling", "UpdateAutoScalingGroup", "SetDesiredCapacity")
def _asg(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    name = get(req, "autoScalingGroupName")
    return [_intent(rec, "set", "aws_autoscaling_group", name, tf, conv(get(req, api)))
            for api, (tf, conv) in ASG_ATTRS.items() if get(req, api) is not None]


@rule("elasticloadbalancing", "ModifyListener")
def _listener(rec: TraceRecord) -> list[Intent]:
    req = rec.request
    arn = get(req, "listenerArn")
    out = []
    if get(req, "port") is not None:
        out.append(_intent(rec, "set", "aws_lb_listener", arn, "port", as_int(get(req, "port"))))
    if get(req, "protocol") is not None:
        out.append(_intent(rec, "set", "aws_lb_listener", arn, "protocol", get(req, "protocol")))
    return out


@rule("elasticloadbalancing", "DeleteListener")
def _listener_delete(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_lb_listener", get(rec.request, "listenerArn"))]


@rule("elasticloadbalancing", "AddTags", "RemoveTags")
def _elb_tags(rec: TraceRecord) -> list[Intent]:
    out = []
    for arn in items(get(rec.request, "resourceArns")):
        rtype = "aws_lb_target_group" if ":targetgroup/" in str(arn) else ("aws_lb_listener" if ":listener/" in str(arn) else "aws_lb")
        if rec.event_name == "AddTags":
            out += [_intent(rec, "tag_set", rtype, arn, "tags", (k, v)) for k, v in tag_pairs(get(rec.request, "tags"))]
        else:
            out += [_intent(rec, "tag_unset", rtype, arn, "tags", (k, None)) for k in tag_keys(get(rec.request, "tagKeys"))]
    return out


@rule("logs", "PutRetentionPolicy", "DeleteRetentionPolicy")
def _retention(rec: TraceRecord) -> list[Intent]:
    value = as_int(get(rec.request, "retentionInDays")) if rec.event_name.startswith("Put") else 0
    return [_intent(rec, "set", "aws_cloudwatch_log_group", get(rec.request, "logGroupName"), "retention_in_days", value)]


@rule("logs", "DeleteLogGroup")
def _log_delete(rec: TraceRecord) -> list[Intent]:
    return [_intent(rec, "delete", "aws_cloudwatch_log_group", get(rec.request, "logGroupName"))]


def infer(record: TraceRecord) -> list[Intent] | None:
    """Intents of one record, ``[]`` for a known call with no config effect, None when unknown."""
    name = canonical_event(record.event_name)
    fn = RULES.get((record.service, name))
    if fn is None:
        return [] if no_config_reason(name) else None
    return fn(record)


def no_config_reason(event_name: str) -> str | None:
    """Why a mutating call changes no configuration (``OPERATIONAL`` and the catalog's reasons), else None."""
    name = canonical_event(event_name)
    if name in OPERATIONAL:
        return "power state, sessions or data: no configuration"
    return NO_CONFIG_EFFECT.get(name)


from iac.rules_catalog import NO_CONFIG_EFFECT  # noqa: E402  (the catalog registers into RULES defined above)
