"""AWS-native actions: EC2/Auto Scaling nodes, ECS services, Lambda aliases, SSM Run Command runbooks.

``agents.protocols.CloudActions`` over boto3, chosen with ``AIOPS_CLOUD_ACTIONS=aws``. The actor
names an action (``reboot``, ``rollback``, ...) and a component; this connector finds what the
component is on AWS and makes the call that does what the action's name says:

===================  =======  ====================================================================
action               risk     call, and its blast radius
===================  =======  ====================================================================
reboot               medium   EC2 ``RebootInstances``: the instance's processes restart on the same host
redeploy/stop_start  medium   EC2 stop, wait, start: the instance moves to a new host (instance-store
/migrate                      data and a non-Elastic public IP are lost)
replace              high     ``TerminateInstanceInAutoScalingGroup`` keeping capacity: the group
                              launches a fresh instance from its launch template (ASG members only)
reimage              high     as replace in a group; ``CreateReplaceRootVolumeTask`` standalone
send_to_repair       high     detached from its group (a replacement launches), stopped, tagged
restart_service      low      ECS ``UpdateService(forceNewDeployment)``: a rolling replacement of the
                              service's tasks within its deployment configuration
rollback             medium   ECS: the service back to the previous ACTIVE revision of its task
                              definition family (every task rolls); Lambda: the alias back to the
                              previous published version (all of the alias' traffic moves)
scale_out / scale    low      ECS ``desiredCount`` up by ``scale_step`` (capped at ``scale_max``), or to
                              ``params["desired_count"]``; nothing running is stopped
<runbook>            config   SSM ``SendCommand`` of the runbook's document on its targets (the
                              instances it names or matches by tag), waited for to the end
wait                 low      no call
===================  =======  ====================================================================

Which resource: ``targets`` (``AIOPS_AWS_TARGETS``) maps a component to ``{"kind": "ecs", "cluster",
"service"}``, ``{"kind": "lambda", "function", "alias"}`` or ``{"kind": "ec2", "instance"}``; a component
not in it is an EC2 instance (id or Name tag) for a node action, and an ECS service of that name in
``ecs_cluster`` or else a Lambda function of that name for a service action. An action named in
``ssm_runbooks`` (``AIOPS_AWS_SSM_RUNBOOKS``) runs that runbook instead, whatever the target.

Idempotency. The actor's ledger stops a finished action from running twice, but a worker that dies
after the call and before ``finish_action`` runs it again. Relative actions are made absolute the
first time (rollback *to revision N*, scale *to M tasks*) and that plan is written on the resource
before the call as a tag ``aiops:action:<digest>`` (on the instance, its Auto Scaling group, the ECS
service or the Lambda function; an SSM command carries the digest as its comment). A second run with
the same idempotency key inside ``replay_window_s`` re-applies the recorded plan, which changes
nothing, or skips a restart/reboot/replace already made. The key is ``params["idempotency_key"]`` or
a digest of (action, target, attempt, root cause), so a new incident with the very same fingerprint
inside the window is taken for a replay: a double rollback or a double scale-out cannot happen.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from services.connectors.cloud import Boto3Cloud, boto3_session


@dataclass(frozen=True)
class ActionSpec:
    risk: str
    blast: str
    on: tuple[str, ...]  # resource kinds the action applies to


ACTIONS: dict[str, ActionSpec] = {
    "wait": ActionSpec("low", "none: no call", ("ec2",)),
    "reboot": ActionSpec("medium", "one instance: processes restart on the same host, memory state lost", ("ec2",)),
    "redeploy": ActionSpec("medium", "one instance: down for a stop/start, starts on a new host", ("ec2",)),
    "stop_start": ActionSpec("medium", "one instance: down for a stop/start, starts on a new host", ("ec2",)),
    "migrate": ActionSpec("medium", "one instance: down for a stop/start, starts on a new host", ("ec2",)),
    "replace": ActionSpec("high", "one instance terminated; its Auto Scaling group launches a fresh one", ("ec2",)),
    "reimage": ActionSpec("high", "one instance's root volume replaced (a fresh instance in a group)", ("ec2",)),
    "send_to_repair": ActionSpec("high", "one instance out of rotation and stopped; a group replaces it", ("ec2",)),
    "restart_service": ActionSpec("low", "every task of one ECS service, replaced in a rolling deployment", ("ecs",)),
    "rollback": ActionSpec("medium", "every task of one ECS service, or all traffic of one Lambda alias, "
                                     "moved to the previous version", ("ecs", "lambda")),
    "scale_out": ActionSpec("low", "one ECS service gains tasks; nothing running stops", ("ecs",)),
    "scale": ActionSpec("low", "one ECS service set to a task count (scaling in stops tasks)", ("ecs",)),
}
NODE_ACTIONS = {name for name, spec in ACTIONS.items() if spec.on == ("ec2",)}
MARKER_PREFIX = "aiops:action:"
TERMINAL_COMMAND = {"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"}


def action_spec(action: str, *, ssm_runbooks: dict[str, dict] | None = None) -> ActionSpec | None:
    """Risk and blast radius of ``action`` (a configured SSM runbook declares its own)."""
    runbook = (ssm_runbooks or {}).get(action)
    if runbook is not None:
        return ActionSpec(runbook.get("risk", "high"),
                          runbook.get("blast", "the instances the runbook's command targets"), ("ssm",))
    return ACTIONS.get(action)


def idempotency_key(action: str, target: str, params: dict[str, Any]) -> str:
    """The caller's key, or a digest of what makes a step the same step."""
    if params.get("idempotency_key"):
        return str(params["idempotency_key"])
    basis = [action, target, params.get("attempt", 0), params.get("root_cause") or ""]
    return hashlib.sha256(json.dumps(basis, default=str).encode()).hexdigest()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _fill(value: Any, target: str) -> Any:
    """``{target}`` substituted in every string of a runbook's parameters and targets."""
    if isinstance(value, str):
        return value.replace("{target}", target)
    if isinstance(value, list):
        return [_fill(v, target) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, target) for k, v in value.items()}
    return value


class AwsActions:
    """``CloudActions`` on EC2/Auto Scaling, ECS, Lambda and SSM; see the module docstring."""

    def __init__(self, *, endpoint_url: str | None = None, region: str | None = None, simulator: bool = False,
                 credentials: dict[str, str] | None = None, ecs_cluster: str = "default",
                 targets: dict[str, dict] | None = None, ssm_runbooks: dict[str, dict] | None = None,
                 scale_step: int = 1, scale_max: int = 20, replay_window_s: float = 900.0,
                 wait_delay_s: float = 5.0, wait_attempts: int = 60, command_timeout_s: float = 600.0) -> None:
        session = boto3_session(region=region, simulator=simulator, credentials=credentials)
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=15)
        self.nodes = Boto3Cloud(endpoint_url=endpoint_url, region=region, simulator=simulator,
                                credentials=credentials, wait_delay_s=wait_delay_s, wait_attempts=wait_attempts)
        self.ec2, self.autoscaling = self.nodes.ec2, self.nodes.autoscaling
        self.ecs = session.client("ecs", endpoint_url=endpoint_url, config=config)
        self.lambda_ = session.client("lambda", endpoint_url=endpoint_url, config=config)
        self.ssm = session.client("ssm", endpoint_url=endpoint_url, config=config)
        self.ecs_cluster, self.targets, self.ssm_runbooks = ecs_cluster, dict(targets or {}), dict(ssm_runbooks or {})
        self.scale_step, self.scale_max, self.replay_window_s = scale_step, scale_max, replay_window_s
        self.poll_s, self.command_timeout_s = wait_delay_s, command_timeout_s

    @classmethod
    def from_settings(cls, settings: Any) -> AwsActions:
        return cls(endpoint_url=settings.cloud_endpoint, region=settings.cloud_region,
                   simulator=bool(settings.cloud_is_simulator), ecs_cluster=settings.aws_ecs_cluster,
                   targets=settings.aws_targets, ssm_runbooks=settings.aws_ssm_runbooks,
                   scale_step=settings.aws_scale_step, scale_max=settings.aws_scale_max,
                   replay_window_s=settings.aws_replay_window_s, command_timeout_s=settings.aws_command_timeout_s)

    # -- which resource -------------------------------------------------------------------------------
    def resolve(self, target: str, action: str) -> dict[str, Any]:
        """``{"kind": "ec2"|"ecs"|"lambda", ...}`` for the component ``target``; LookupError when none fits."""
        declared = self.targets.get(target)
        if declared:
            kind = declared.get("kind")
            if kind == "ecs":
                return {"kind": "ecs", "cluster": declared.get("cluster", self.ecs_cluster),
                        "service": declared.get("service", target)}
            if kind == "lambda":
                return {"kind": "lambda", "function": declared.get("function", target),
                        "alias": declared.get("alias", "live")}
            if kind == "ec2":
                return {"kind": "ec2", "instance": declared.get("instance", target)}
            raise LookupError(f"AIOPS_AWS_TARGETS[{target!r}] has kind {kind!r}; known: ec2, ecs, lambda")
        if action in NODE_ACTIONS:
            return {"kind": "ec2", "instance": target}
        try:
            found = self.ecs.describe_services(cluster=self.ecs_cluster, services=[target])["services"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in {"ClusterNotFoundException", "InvalidParameterException"}:
                raise
            found = []
        if any(s.get("status") == "ACTIVE" for s in found):
            return {"kind": "ecs", "cluster": self.ecs_cluster, "service": target}
        try:
            self.lambda_.get_function(FunctionName=target)
            return {"kind": "lambda", "function": target, "alias": "live"}
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        raise LookupError(f"{target!r} is neither an ECS service in cluster {self.ecs_cluster!r} nor a Lambda "
                          "function; declare it in AIOPS_AWS_TARGETS")

    # -- the Protocol ---------------------------------------------------------------------------------
    def execute(self, action: str, target: str, *, params: dict[str, Any]) -> dict[str, Any]:
        spec = action_spec(action, ssm_runbooks=self.ssm_runbooks)
        if spec is None:
            raise NotImplementedError(f"no AWS action {action!r}; known: {', '.join(sorted(ACTIONS))}"
                                      + (f"; runbooks: {', '.join(sorted(self.ssm_runbooks))}" if self.ssm_runbooks
                                         else "; configure AIOPS_AWS_SSM_RUNBOOKS for scripted ones"))
        key = idempotency_key(action, target, params)
        out: dict[str, Any] = {"action": action, "risk": spec.risk, "blast_radius": spec.blast,
                               "idempotency_key": key}
        if "ssm" in spec.on:
            return {**out, **self._run_command(action, target, key=key)}
        resource = self.resolve(target, action)
        if resource["kind"] not in spec.on:
            raise NotImplementedError(f"{action} does not apply to {resource['kind']} ({target}); it acts on "
                                      f"{', '.join(spec.on)}")
        handler = {"ec2": self._ec2, "ecs": self._ecs, "lambda": self._lambda}[resource["kind"]]
        return {**out, **handler(action, resource, key=key, params=params)}

    def describe(self, target: str) -> dict[str, Any]:
        if target.startswith("i-") and target not in self.targets:
            return self.nodes.describe(target)
        try:
            resource = self.resolve(target, "restart_service")
        except LookupError:
            return self.nodes.describe(target)
        if resource["kind"] == "ec2":
            return self.nodes.describe(resource["instance"])
        if resource["kind"] == "ecs":
            svc = self._service(resource)
            primary: dict[str, Any] = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), {})
            rollout, running, desired = primary.get("rolloutState"), svc["runningCount"], svc["desiredCount"]
            # running tasks are the evidence; a rollout still in progress cannot tell yet
            healthy = (False if rollout == "FAILED" else True if desired and running >= desired
                       else None if rollout == "IN_PROGRESS" else False)
            return {"kind": "ecs", "task_definition": svc["taskDefinition"], "desired": desired, "running": running,
                    "rollout": rollout, "healthy": healthy}
        alias = self.lambda_.get_alias(FunctionName=resource["function"], Name=resource["alias"])
        return {"kind": "lambda", "alias": resource["alias"], "version": alias["FunctionVersion"], "healthy": None}

    def inventory(self, target: str) -> dict[str, Any]:
        """The EC2 inventory of a node (``Boto3Cloud.inventory``); LookupError for a non-EC2 component."""
        if target.startswith("i-") or target not in self.targets:
            return self.nodes.inventory(target)
        resource = self.resolve(target, "reboot")
        if resource["kind"] != "ec2":
            raise LookupError(f"{target!r} is a {resource['kind']} component, not a node")
        return self.nodes.inventory(resource["instance"])

    # -- markers: the plan of a keyed action, on the resource it changes --------------------------------
    def _marker(self, tags: dict[str, str], key: str) -> dict[str, Any] | None:
        raw = tags.get(MARKER_PREFIX + _digest(key))
        if not raw:
            return None
        at, _, plan = raw.partition(" ")
        if time.time() - float(at) > self.replay_window_s:
            return None
        return {"at": float(at), **json.loads(plan or "{}")}

    def _marker_value(self, plan: dict[str, Any]) -> str:
        return f"{time.time():.0f} {json.dumps(plan, separators=(',', ':'))}"[:256]

    @staticmethod
    @contextmanager
    def _unmarked_if_refused(unmark: Callable[[], Any]) -> Iterator[None]:
        """AWS refusing the call (a ClientError) means nothing happened: the marker goes, so a later run
        under the key acts. A timeout or a lost connection is ambiguous: the marker stays and a replay
        re-applies the recorded plan (or skips a restart), which is safe either way."""
        try:
            yield
        except ClientError:
            try:
                unmark()
            except Exception:  # the refusal is what the caller must see
                pass
            raise

    def _stale(self, tags: dict[str, str]) -> list[str]:
        now = time.time()
        return [k for k, v in tags.items()
                if k.startswith(MARKER_PREFIX) and now - float(v.partition(" ")[0] or 0) > self.replay_window_s]

    # -- EC2 / Auto Scaling ---------------------------------------------------------------------------
    def _ec2(self, action: str, resource: dict[str, Any], *, key: str, params: dict[str, Any]) -> dict[str, Any]:
        if action == "wait":
            return {"effect": "no call"}
        instance_id = self.nodes._instance_id(resource["instance"])
        group = self.nodes._asg_of(instance_id)
        # the marker goes on the instance and, for actions that take it out of its group, on the group too:
        # a replay then finds it by the old id (a terminated instance keeps its tags a while) and by a Name
        # tag that now resolves to the group's fresh instance
        instance_tags = self._instance_tags(instance_id)
        group_tags = self._asg_tags(group) if group else {}
        earlier = self._marker(instance_tags, key) or self._marker(group_tags, key)
        if earlier is not None:
            return {"instance_id": instance_id, "reused": True, "done_at": earlier["at"],
                    "effect": f"already done under this key; {action} not repeated"}
        if action == "replace" and not group:
            raise NotImplementedError(f"replace needs an Auto Scaling group; {instance_id} is in none")
        mark = {MARKER_PREFIX + _digest(key): self._marker_value({"a": action, "i": instance_id})}
        self._tag_instance(instance_id, mark, drop=self._stale(instance_tags))
        if group and action in {"replace", "reimage", "send_to_repair"}:
            self._tag_group(group, mark, drop=self._stale(group_tags))
        def unmark() -> None:
            self.ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": k} for k in mark])
            if group:
                self.autoscaling.delete_tags(Tags=[{"ResourceId": group, "ResourceType": "auto-scaling-group",
                                                    "Key": k} for k in mark])

        with self._unmarked_if_refused(unmark):
            if action == "replace":
                self.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id,
                                                                          ShouldDecrementDesiredCapacity=False)
                return {"instance_id": instance_id, "replaced_by_group": group,
                        "effect": "terminated; the group launches a fresh instance from its launch template"}
            name = "redeploy" if action in {"stop_start", "migrate"} else action
            result = self.nodes.execute(name, instance_id, params=params)
        return {**result, "action": action}

    def _instance_tags(self, instance_id: str) -> dict[str, str]:
        found = self.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    def _tag_instance(self, instance_id: str, tags: dict[str, str], *, drop: list[str]) -> None:
        if drop:
            self.ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": k} for k in drop])
        self.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def _asg_tags(self, group: str) -> dict[str, str]:
        found = self.autoscaling.describe_tags(Filters=[{"Name": "auto-scaling-group", "Values": [group]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    def _tag_group(self, group: str, tags: dict[str, str], *, drop: list[str]) -> None:
        ref = {"ResourceId": group, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}
        if drop:
            self.autoscaling.delete_tags(Tags=[{**ref, "Key": k} for k in drop])
        self.autoscaling.create_or_update_tags(Tags=[{**ref, "Key": k, "Value": v} for k, v in tags.items()])

    # -- ECS ------------------------------------------------------------------------------------------
    def _service(self, resource: dict[str, Any]) -> dict[str, Any]:
        found = self.ecs.describe_services(cluster=resource["cluster"], services=[resource["service"]])["services"]
        active = [s for s in found if s.get("status") == "ACTIVE"]
        if not active:
            raise LookupError(f"no ECS service {resource['service']!r} in cluster {resource['cluster']!r}")
        return active[0]

    def _previous_revision(self, task_definition: str) -> str:
        family_rev = task_definition.rsplit("/", 1)[-1]
        family, _, revision = family_rev.rpartition(":")
        earlier: list[tuple[int, str]] = []
        for page in self.ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status="ACTIVE"):
            for arn in page["taskDefinitionArns"]:
                fam, _, rev = arn.rsplit("/", 1)[-1].rpartition(":")
                if fam == family and int(rev) < int(revision):  # the prefix matches longer families too
                    earlier.append((int(rev), arn))
        if earlier:
            return max(earlier)[1]
        raise LookupError(f"no ACTIVE revision of {family} before {revision} to roll back to")

    def _ecs(self, action: str, resource: dict[str, Any], *, key: str, params: dict[str, Any]) -> dict[str, Any]:
        svc = self._service(resource)
        arn, cluster, name = svc["serviceArn"], resource["cluster"], resource["service"]
        tags = {t["key"]: t["value"] for t in self.ecs.list_tags_for_resource(resourceArn=arn).get("tags", [])}
        earlier = self._marker(tags, key)
        out: dict[str, Any] = {"cluster": cluster, "service": name}
        if earlier is not None and action == "restart_service":
            return {**out, "reused": True, "done_at": earlier["at"], "effect": "already restarted under this key"}
        if earlier is not None:  # re-apply the recorded absolute plan: no change the second time
            recorded: dict[str, Any] = {k: earlier[k] for k in ("taskDefinition", "desiredCount") if k in earlier}
            self.ecs.update_service(cluster=cluster, service=name, **recorded)
            return {**out, **recorded, "reused": True, "done_at": earlier["at"],
                    "effect": "the recorded plan re-applied; nothing new"}
        if action == "restart_service":
            plan: dict[str, Any] = {"forceNewDeployment": True}
            effect = "new deployment forced: tasks replaced on the same task definition"
        elif action == "rollback":
            plan = {"taskDefinition": self._previous_revision(svc["taskDefinition"])}
            out["from"] = svc["taskDefinition"]
            effect = f"rolled back to {plan['taskDefinition'].rsplit('/', 1)[-1]}"
        else:  # scale_out / scale
            wanted = params.get("desired_count")
            count = int(wanted) if wanted is not None else svc["desiredCount"] + int(params.get("scale_step")
                                                                                  or self.scale_step)
            plan = {"desiredCount": max(0, min(count, self.scale_max))}
            out["from_count"] = svc["desiredCount"]
            effect = f"desired count {svc['desiredCount']} -> {plan['desiredCount']} (max {self.scale_max})"
        stale = self._stale(tags)
        if stale:
            self.ecs.untag_resource(resourceArn=arn, tagKeys=stale)
        marker_plan = {"a": action, **{k: v for k, v in plan.items() if k != "forceNewDeployment"}}
        self.ecs.tag_resource(resourceArn=arn, tags=[{"key": MARKER_PREFIX + _digest(key),
                                                      "value": self._marker_value(marker_plan)}])
        with self._unmarked_if_refused(lambda: self.ecs.untag_resource(resourceArn=arn,
                                                                      tagKeys=[MARKER_PREFIX + _digest(key)])):
            self.ecs.update_service(cluster=cluster, service=name, **plan)
        return {**out, **plan, "effect": effect}

    # -- Lambda ---------------------------------------------------------------------------------------
    def _lambda(self, action: str, resource: dict[str, Any], *, key: str, params: dict[str, Any]) -> dict[str, Any]:
        function, alias_name = resource["function"], resource["alias"]
        fn_arn = self.lambda_.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
        tags = self.lambda_.list_tags(Resource=fn_arn).get("Tags", {})
        out: dict[str, Any] = {"function": function, "alias": alias_name}
        earlier = self._marker(tags, key)
        if earlier is not None:
            self.lambda_.update_alias(FunctionName=function, Name=alias_name, FunctionVersion=earlier["v"],
                                      RoutingConfig={"AdditionalVersionWeights": {}})
            return {**out, "version": earlier["v"], "reused": True, "done_at": earlier["at"],
                    "effect": "the recorded plan re-applied; nothing new"}
        alias = self.lambda_.get_alias(FunctionName=function, Name=alias_name)
        current = alias["FunctionVersion"]
        versions: list[int] = []
        for page in self.lambda_.get_paginator("list_versions_by_function").paginate(FunctionName=function):
            versions += [int(v["Version"]) for v in page["Versions"] if v["Version"].isdigit()]
        if not current.isdigit():
            raise LookupError(f"alias {alias_name} points at {current}; only a published version can roll back")
        earlier_versions = [v for v in versions if v < int(current)]
        if not earlier_versions:
            raise LookupError(f"{function}:{alias_name} is on version {current}; no earlier version to roll back to")
        target_version = str(max(earlier_versions))
        stale = self._stale(tags)
        if stale:
            self.lambda_.untag_resource(Resource=fn_arn, TagKeys=stale)
        self.lambda_.tag_resource(Resource=fn_arn, Tags={MARKER_PREFIX + _digest(key):
                                                         self._marker_value({"a": action, "v": target_version})})
        # a weighted alias (canary) sends part of its traffic elsewhere: the rollback takes all of it back
        with self._unmarked_if_refused(lambda: self.lambda_.untag_resource(Resource=fn_arn,
                                                                          TagKeys=[MARKER_PREFIX + _digest(key)])):
            self.lambda_.update_alias(FunctionName=function, Name=alias_name, FunctionVersion=target_version,
                                      RoutingConfig={"AdditionalVersionWeights": {}})
        return {**out, "from": current, "version": target_version,
                "effect": f"alias {alias_name} moved from version {current} to {target_version}"}

    # -- SSM Run Command ------------------------------------------------------------------------------
    def _run_command(self, action: str, target: str, *, key: str) -> dict[str, Any]:
        runbook = self.ssm_runbooks[action]
        comment = "aiops " + _digest(key)
        since = time.time() - self.replay_window_s
        earlier = next((c for c in self.ssm.list_commands(MaxResults=50)["Commands"]
                        if c.get("Comment") == comment and c["RequestedDateTime"].timestamp() >= since), None)
        if earlier is not None:
            command_id, reused = earlier["CommandId"], True
        else:
            request: dict[str, Any] = {"DocumentName": runbook["document"], "Comment": comment,
                                       "Parameters": _fill(runbook.get("parameters", {}), target),
                                       "TimeoutSeconds": int(runbook.get("timeout_s", self.command_timeout_s))}
            if runbook.get("instance_ids"):
                request["InstanceIds"] = _fill(runbook["instance_ids"], target)
            else:
                request["Targets"] = _fill(runbook.get("targets") or [{"Key": "tag:Service", "Values": ["{target}"]}],
                                           target)
            command_id, reused = self.ssm.send_command(**request)["Command"]["CommandId"], False
        deadline = time.monotonic() + float(runbook.get("timeout_s", self.command_timeout_s))
        while True:
            command = self.ssm.list_commands(CommandId=command_id)["Commands"][0]
            if command["Status"] in TERMINAL_COMMAND or time.monotonic() > deadline:
                break
            time.sleep(self.poll_s)
        out = {"command_id": command_id, "document": runbook["document"], "command_status": command["Status"],
               "targets": command.get("TargetCount"), "completed": command.get("CompletedCount"),
               "errors": command.get("ErrorCount"), "reused": reused}
        if command["Status"] != "Success":
            raise RuntimeError(f"SSM command {command_id} ({runbook['document']}) ended {command['Status']}: "
                               f"{command.get('ErrorCount', 0)} of {command.get('TargetCount', 0)} targets failed")
        if not command.get("TargetCount"):
            raise RuntimeError(f"SSM command {command_id} matched no instance for {target}")
        return {**out, "effect": f"{runbook['document']} ran on {command['TargetCount']} instance(s)"}
