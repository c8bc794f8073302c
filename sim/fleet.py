"""The simulated fleet: real EC2/ASG resources on moto plus the simulator's own view of them.

Why both: the platform must see a real cloud (describe calls, instance ids, tags) and act on it
with real boto3 calls, while the simulator keeps the ground truth the cloud cannot hold (which
node is really broken, which service runs where, which release is deployed). ``apply_mitigation``
is the one place where an action both happens in the cloud and is judged against that truth.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.cloud import boto_client, reboots_since
from sim.faults import FAULT_KINDS, NODE_ACTIONS, SERVICE_ACTIONS, Fault

DEFAULT_SERVICES = ("checkout", "payments", "catalog", "search")
# who calls whom (caller -> callees): a fault on a callee shows up as latency/errors on its callers
DEFAULT_DEPENDENCIES: dict[str, tuple[str, ...]] = {"checkout": ("payments", "catalog"), "search": ("catalog",)}
SKUS = ("gen5-intel", "gen6-amd", "gen7-graviton")
DEFAULT_AMI = "ami-12c6146b"
INSTANCE_TYPE = "m5.large"

# the platform's connector vocabulary (EC2 "reimage" replaces the VM from its image) -> the simulator's
ACTION_ALIASES = {"reimage": "replace"}

# Rough VM downtime each action costs (seconds); the causal benchmark and the demo read it so that
# "replace everything" is correct but expensive, as in the Deoxys setting.
ACTION_DOWNTIME_S: dict[str, float] = {
    "wait": 0.0,
    "reboot": 300.0,
    "stop_start": 600.0,
    "migrate": 900.0,
    "redeploy": 900.0,
    "replace": 1800.0,
    "send_to_repair": 3600.0,
    "restart_service": 30.0,
    "rollback": 120.0,
    "scale_out": 180.0,
    "failover": 60.0,
    "shed_load": 10.0,
}


@dataclass
class Node:
    """One node of the fleet: a logical identity that survives instance replacement."""

    id: str
    instance_id: str
    cluster: str
    sku: str
    instance_type: str
    az: str
    private_ip: str
    age_days: int
    services: list[str] = field(default_factory=list)
    state: str = "running"  # running | stopped
    replaced_instances: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "cluster": self.cluster,
            "sku": self.sku,
            "instance_type": self.instance_type,
            "az": self.az,
            "private_ip": self.private_ip,
            "age_days": self.age_days,
            "services": list(self.services),
            "state": self.state,
            "replaced_instances": list(self.replaced_instances),
        }


@dataclass
class MitigationResult:
    """What an action did: the cloud calls made, and whether it cleared an active fault."""

    target: str
    action: str
    ok: bool
    fixed: bool
    resolved_fault_ids: list[str]
    cloud_calls: list[str]
    expected_downtime_s: float
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Fleet:
    """A cluster of nodes on moto, the services placed on them and the faults currently active."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        cluster: str,
        vpc_id: str,
        subnet_ids: list[str],
        launch_template_id: str,
        asg_name: str,
        nodes: list[Node],
        releases: dict[str, str],
        seed: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.cluster = cluster
        self.vpc_id = vpc_id
        self.subnet_ids = subnet_ids
        self.launch_template_id = launch_template_id
        self.asg_name = asg_name
        self.nodes = nodes
        self.releases = releases
        self.seed = seed
        self.clock = clock
        self._rng = random.Random(seed + 1)
        self._faults: list[Fault] = []
        self.dependencies: dict[str, tuple[str, ...]] = {
            c: tuple(d for d in callees if d in releases) for c, callees in DEFAULT_DEPENDENCIES.items() if c in releases
        }
        self.changes: list[dict[str, Any]] = []  # deploys and config pushes: {at, component, kind, detail}
        self._previous_release: dict[str, str] = {}
        self._own_reboots: dict[str, int] = {}
        # every action applied through apply_mitigation: {at, target, action, fixed, on_faulty}; on_faulty = the
        # target had an active fault when the action ran (the action was on a right component, fixing or not)
        self.mitigation_log: list[dict[str, Any]] = []
        _, self._reboot_cursor = reboots_since(0)
        self._lock = threading.RLock()
        self._ec2 = boto_client("ec2", endpoint_url)
        self._asg = boto_client("autoscaling", endpoint_url)
        self._ssm = boto_client("ssm", endpoint_url)

    # ----------------------------------------------------------------- provisioning
    @classmethod
    def provision(
        cls,
        endpoint_url: str,
        *,
        nodes: int = 6,
        services: tuple[str, ...] = DEFAULT_SERVICES,
        seed: int = 0,
        cluster: str | None = None,
        replicas: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> Fleet:
        """Create VPC, subnets, launch template and an ASG of ``nodes`` instances, tag them, place services.

        moto keeps state per process, so the default cluster name gets a suffix when ``sim-<seed>``
        already exists on this server.
        """
        if nodes < 1:
            raise ValueError("a fleet needs at least one node")
        ec2 = boto_client("ec2", endpoint_url)
        asg = boto_client("autoscaling", endpoint_url)
        cluster = cluster or _free_cluster_name(asg, f"sim-{seed}")
        rng = random.Random(seed)

        def tags(resource: str, name: str) -> list[dict[str, Any]]:
            return [
                {
                    "ResourceType": resource,
                    "Tags": [{"Key": "Name", "Value": name}, {"Key": "aiops:cluster", "Value": cluster}],
                }
            ]

        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tags("vpc", f"{cluster}-vpc"))[
            "Vpc"
        ]["VpcId"]
        subnet_ids = []
        for i, az in enumerate(("us-east-1a", "us-east-1b")):
            subnet_ids.append(
                ec2.create_subnet(
                    VpcId=vpc_id,
                    CidrBlock=f"10.0.{i + 1}.0/24",
                    AvailabilityZone=az,
                    TagSpecifications=tags("subnet", f"{cluster}-{az}"),
                )["Subnet"]["SubnetId"]
            )
        lt_id = ec2.create_launch_template(
            LaunchTemplateName=f"{cluster}-node",
            LaunchTemplateData={"ImageId": DEFAULT_AMI, "InstanceType": INSTANCE_TYPE},
        )["LaunchTemplate"]["LaunchTemplateId"]
        asg_name = f"{cluster}-nodes"
        asg.create_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "$Latest"},
            MinSize=1,
            MaxSize=nodes * 3,
            DesiredCapacity=nodes,
            VPCZoneIdentifier=",".join(subnet_ids),
            Tags=[
                {
                    "ResourceId": asg_name,
                    "ResourceType": "auto-scaling-group",
                    "Key": "aiops:cluster",
                    "Value": cluster,
                    "PropagateAtLaunch": True,
                }
            ],
        )
        fleet = cls(
            endpoint_url=endpoint_url,
            cluster=cluster,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            launch_template_id=lt_id,
            asg_name=asg_name,
            nodes=[],
            releases={s: f"v1.{rng.randint(0, 9)}.{rng.randint(0, 20)}" for s in services},
            seed=seed,
            clock=clock,
        )
        for instance_id in fleet._asg_instance_ids():
            fleet._adopt_instance(instance_id, rng=rng)
        fleet._place_services(list(services), replicas=min(replicas, nodes), rng=rng)
        return fleet

    def _asg_instance_ids(self) -> list[str]:
        group = self._asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg_name])[
            "AutoScalingGroups"
        ][0]
        return sorted(i["InstanceId"] for i in group["Instances"])

    def _adopt_instance(self, instance_id: str, *, rng: random.Random, node: Node | None = None) -> Node:
        """Give a fresh ASG instance a node identity (a new one, or ``node``'s when it replaces it)."""
        desc = self._ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        if node is None:
            node = Node(
                id=f"{self.cluster}-node-{len(self.nodes) + 1:02d}",
                instance_id=instance_id,
                cluster=self.cluster,
                sku=rng.choice(SKUS),
                instance_type=desc.get("InstanceType", INSTANCE_TYPE),
                az=desc.get("Placement", {}).get("AvailabilityZone", "us-east-1a"),
                private_ip=desc.get("PrivateIpAddress", "10.0.1.10"),
                age_days=rng.randint(3, 900),
            )
            self.nodes.append(node)
        else:
            node.replaced_instances.append(node.instance_id)
            node.instance_id = instance_id
            node.private_ip = desc.get("PrivateIpAddress", node.private_ip)
            node.az = desc.get("Placement", {}).get("AvailabilityZone", node.az)
            node.sku = rng.choice(SKUS)
            node.age_days = 0
            node.state = "running"
        self._tag_node(node)
        return node

    def _tag_node(self, node: Node) -> None:
        self._ec2.create_tags(
            Resources=[node.instance_id],
            Tags=[
                {"Key": "Name", "Value": node.id},
                {"Key": "aiops:node", "Value": node.id},
                {"Key": "aiops:cluster", "Value": node.cluster},
                {"Key": "aiops:sku", "Value": node.sku},
                {"Key": "aiops:services", "Value": ",".join(node.services)},
            ],
        )

    def _place_services(self, services: list[str], *, replicas: int, rng: random.Random) -> None:
        order = [n for n in self.nodes]
        rng.shuffle(order)
        slot = 0
        for service in services:
            for _ in range(replicas):
                node = order[slot % len(order)]
                if service not in node.services:
                    node.services.append(service)
                slot += 1
        for node in self.nodes:
            self._tag_node(node)

    # ----------------------------------------------------------------- views
    @property
    def services(self) -> dict[str, list[str]]:
        """Service name -> ids of the nodes it runs on."""
        with self._lock:
            placement: dict[str, list[str]] = {s: [] for s in self.releases}
            for node in self.nodes:
                for s in node.services:
                    placement.setdefault(s, []).append(node.id)
            return placement

    def now(self) -> float:
        return self.clock()

    def callers_of(self, service: str) -> list[str]:
        """Services that call ``service`` directly."""
        return sorted(c for c, callees in self.dependencies.items() if service in callees)

    def add_change(self, component: str, kind: str, detail: str, *, at: float) -> None:
        """Record a change event (what a deploy tool or config service would report)."""
        with self._lock:
            self.changes.append({"at": at, "component": component, "kind": kind, "detail": detail})

    def node(self, ref: str) -> Node:
        """A node by its id, its current instance id or its private IP."""
        with self._lock:
            for node in self.nodes:
                if ref in (node.id, node.instance_id, node.private_ip):
                    return node
        raise KeyError(f"unknown node {ref!r} in cluster {self.cluster}")

    def is_node(self, ref: str) -> bool:
        try:
            self.node(ref)
            return True
        except KeyError:
            return False

    def topology(self) -> dict[str, Any]:
        with self._lock:
            return {
                "cluster": self.cluster,
                "endpoint_url": self.endpoint_url,
                "region": "us-east-1",
                "vpc_id": self.vpc_id,
                "subnet_ids": list(self.subnet_ids),
                "asg_name": self.asg_name,
                "nodes": [n.to_dict() for n in self.nodes],
                "services": {
                    s: {"nodes": ids, "release": self.releases.get(s)} for s, ids in self.services.items()
                },
            }

    # ----------------------------------------------------------------- faults
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)
            change = FAULT_KINDS[fault.kind].change
            if change == "deploy" and fault.service:
                major, minor, _ = self.releases[fault.service].lstrip("v").split(".")
                self._previous_release[fault.service] = self.releases[fault.service]
                self.releases[fault.service] = f"v{major}.{int(minor) + 1}.0"
                self.add_change(fault.service, "deploy", f"release {self.releases[fault.service]} rolled out",
                                at=fault.started_at - 20.0)
            elif change and fault.service:
                self.add_change(fault.service, change, f"{change} revision pushed to {fault.service}",
                                at=fault.started_at - 20.0)

    def active_faults(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.active]

    def all_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def faults_at(self, t: float) -> list[Fault]:
        """Faults that were active at time ``t`` (telemetry of the past reflects the past)."""
        with self._lock:
            return [
                f for f in self._faults if f.started_at <= t and (f.resolved_at is None or t < f.resolved_at)
            ]

    def ground_truth(self) -> list[dict[str, Any]]:
        """Every fault ever injected: kind, target, injected_at, resolved_at, resolved_by, attempts."""
        with self._lock:
            return [f.to_dict() for f in self._faults]

    # ----------------------------------------------------------------- mitigation
    def apply_mitigation(self, target: str, action: str) -> MitigationResult:
        """Do ``action`` on ``target`` (node id / instance id / IP, or service name) in the cloud and judge it.

        The fault is cleared only when the action is in its kind's fixing set; anything else is
        recorded as a failed attempt, so the ground truth shows wrong tries too.
        """
        action = ACTION_ALIASES.get(action, action)
        with self._lock:
            if target in self.releases:
                level, node, service = "service", None, target
                allowed = SERVICE_ACTIONS
            else:
                level, node, service = "node", self.node(target), None
                allowed = NODE_ACTIONS
            if action not in allowed:
                raise ValueError(f"action {action!r} does not apply to a {level}; choose from {allowed}")
            calls: list[str] = []
            ok, message = True, ""
            try:
                if node is not None:
                    self._node_action(node, action, calls)
                else:
                    self._service_action(service or "", action, calls)
            except Exception as exc:  # the cloud call failed: nothing is fixed
                ok, message = False, f"{type(exc).__name__}: {exc}"
            key = node.id if node is not None else service
            now = self.now()
            resolved: list[str] = []
            faulty = [f for f in self.active_faults() if f.level == level and f.target == key]
            for fault in faulty:
                fixes = ok and action in fault.fixing_actions
                fault.attempts.append({"action": action, "at": now, "fixed": fixes})
                if fixes:
                    fault.resolved_at = now
                    fault.resolved_by = action
                    resolved.append(fault.id)
                    if fault.kind == "bad_deploy" and fault.service:
                        self.releases[fault.service] = self._previous_release.get(
                            fault.service, self.releases[fault.service]
                        )
            self.mitigation_log.append({"at": now, "target": key or target, "action": action, "fixed": bool(resolved),
                                        "on_faulty": bool(faulty)})
            return MitigationResult(
                target=key or target,
                action=action,
                ok=ok,
                fixed=bool(resolved),
                resolved_fault_ids=resolved,
                cloud_calls=calls,
                expected_downtime_s=ACTION_DOWNTIME_S[action],
                message=message
                or ("fixed " + ", ".join(resolved) if resolved else "no active fault cleared"),
            )

    def _node_action(self, node: Node, action: str, calls: list[str]) -> None:
        iid = node.instance_id
        if action == "wait":
            return
        if action == "reboot":
            self._own_reboots[iid] = self._own_reboots.get(iid, 0) + 1  # judged here, not as out-of-band
            try:
                self._ec2.reboot_instances(InstanceIds=[iid])
            except Exception:
                self._own_reboots[iid] -= 1
                raise
            calls.append(f"ec2:RebootInstances {iid}")
        elif action == "stop_start":
            self._ec2.stop_instances(InstanceIds=[iid])
            self._ec2.start_instances(InstanceIds=[iid])
            calls += [f"ec2:StopInstances {iid}", f"ec2:StartInstances {iid}"]
            node.state = "running"
        elif action == "replace":
            before = set(self._asg_instance_ids())
            self._asg.terminate_instance_in_auto_scaling_group(
                InstanceId=iid, ShouldDecrementDesiredCapacity=False
            )
            calls.append(f"autoscaling:TerminateInstanceInAutoScalingGroup {iid}")
            self._adopt_replacement(node, before, calls)
        elif action == "send_to_repair":
            before = set(self._asg_instance_ids())
            self._asg.detach_instances(
                InstanceIds=[iid], AutoScalingGroupName=self.asg_name, ShouldDecrementDesiredCapacity=False
            )
            self._ec2.stop_instances(InstanceIds=[iid])
            self._ec2.create_tags(Resources=[iid], Tags=[{"Key": "aiops:state", "Value": "repair"}])
            calls += [
                f"autoscaling:DetachInstances {iid}",
                f"ec2:StopInstances {iid}",
                f"ec2:CreateTags {iid} aiops:state=repair",
            ]
            self._adopt_replacement(node, before - {iid}, calls)
        elif action in ("migrate", "redeploy"):
            moved = list(node.services)
            targets = [n for n in self.nodes if n is not node and n.state == "running"]
            for service in moved:
                candidates = [n for n in targets if service not in n.services] or targets
                if candidates:
                    dest = min(candidates, key=lambda n: (len(n.services), n.id))
                    if service not in dest.services:
                        dest.services.append(service)
                    self._tag_node(dest)
            node.services = []
            self._tag_node(node)
            calls.append(f"ec2:CreateTags {iid} aiops:services= (moved {','.join(moved) or 'nothing'})")

    def _adopt_replacement(self, node: Node, before: set[str], calls: list[str]) -> None:
        """Find the instance the ASG launched in place of ``node``'s and move the node identity onto it."""
        group = self._asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg_name])[
            "AutoScalingGroups"
        ][0]
        current = {i["InstanceId"] for i in group["Instances"]}
        new = sorted(current - before - {n.instance_id for n in self.nodes})
        if not new and len(current) < group["DesiredCapacity"]:
            self._asg.set_desired_capacity(
                AutoScalingGroupName=self.asg_name, DesiredCapacity=group["DesiredCapacity"]
            )
            current = set(self._asg_instance_ids())
            new = sorted(current - before - {n.instance_id for n in self.nodes})
        if not new:
            raise RuntimeError(f"the ASG did not launch a replacement for {node.id}")
        self._adopt_instance(new[0], rng=self._rng, node=node)
        calls.append(f"autoscaling: replacement {new[0]} launched for {node.id}")

    def _service_action(self, service: str, action: str, calls: list[str]) -> None:
        if action == "wait":
            return
        hosts = [self.node(n) for n in self.services.get(service, [])]
        if action == "scale_out":
            group = self._asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg_name])[
                "AutoScalingGroups"
            ][0]
            before = {i["InstanceId"] for i in group["Instances"]}
            desired = group["DesiredCapacity"] + 1
            self._asg.set_desired_capacity(AutoScalingGroupName=self.asg_name, DesiredCapacity=desired)
            calls.append(f"autoscaling:SetDesiredCapacity {self.asg_name} {desired}")
            new = sorted(set(self._asg_instance_ids()) - before)
            if not new:
                raise RuntimeError("the ASG did not launch a new instance")
            node = self._adopt_instance(new[0], rng=self._rng)
            node.services.append(service)
            self._tag_node(node)
            calls.append(f"autoscaling: {new[0]} launched as {node.id} running {service}")
            return
        if action == "failover":  # move every replica to another running node that does not run it yet
            moved = []
            for host in hosts:
                candidates = [n for n in self.nodes if n.state == "running" and service not in n.services
                              and n not in hosts]
                if not candidates:
                    raise RuntimeError(f"no node to fail {service} over to")
                dest = min(candidates, key=lambda n: (len(n.services), n.id))
                host.services.remove(service)
                dest.services.append(service)
                self._tag_node(host)
                self._tag_node(dest)
                moved.append(f"{host.id}->{dest.id}")
            calls.append(f"ec2:CreateTags aiops:services ({service} failed over {', '.join(moved)})")
            return
        command = {
            "shed_load": f"edgectl shed {service} --priority low",
            "restart_service": f"systemctl restart {service}",
            "rollback": f"deployctl rollback {service}",
            "redeploy": f"deployctl redeploy {service} {self.releases.get(service, '')}",
        }[action]
        ids = [n.instance_id for n in hosts if n.state == "running"]
        if not ids:
            raise RuntimeError(f"{service} has no running node to act on")
        sent = self._ssm.send_command(
            InstanceIds=ids,
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": [command]},
            Comment=f"aiops {action} {service}",
        )
        calls.append(
            f"ssm:SendCommand {sent['Command']['CommandId']} AWS-RunShellScript '{command}' on {','.join(ids)}"
        )

    # ----------------------------------------------------------------- out-of-band changes
    def sync_from_cloud(self) -> list[MitigationResult]:
        """Notice actions the platform took with plain boto3 (reboot, stop/start, terminate) and judge them.

        Why: the platform may act on moto directly instead of through the simulator's API. Stops,
        starts and terminations are visible in describe calls; reboots are not, so they come from
        the hook ``sim.cloud`` puts on an in-process moto (with moto in another process, reboots
        must go through ``apply_mitigation`` / the sim API). Service-level actions always must.
        """
        results: list[MitigationResult] = []
        with self._lock:
            reboots, self._reboot_cursor = reboots_since(self._reboot_cursor)
            for _, iid in reboots:
                if self._own_reboots.get(iid, 0) > 0:
                    self._own_reboots[iid] -= 1
                    continue
                node = next((n for n in self.nodes if n.instance_id == iid), None)
                if node is not None:
                    results.append(
                        self._judge_out_of_band(node, "reboot", [f"observed: ec2:RebootInstances {iid}"])
                    )
            ids = [n.instance_id for n in self.nodes]
            states: dict[str, str] = {}
            for res in self._ec2.describe_instances(InstanceIds=ids)["Reservations"]:
                for inst in res["Instances"]:
                    states[inst["InstanceId"]] = inst["State"]["Name"]
            asg_members = set(self._asg_instance_ids())
            for node in list(self.nodes):
                state = states.get(node.instance_id, "terminated")
                if state in ("terminated", "shutting-down") or node.instance_id not in asg_members:
                    before = {n.instance_id for n in self.nodes}
                    try:
                        calls: list[str] = [f"observed: {node.instance_id} {state} out of band"]
                        self._adopt_replacement(node, before, calls)
                    except RuntimeError:
                        continue
                    results.append(self._judge_out_of_band(node, "replace", calls))
                elif state in ("stopped", "stopping"):
                    node.state = "stopped"
                elif state == "running" and node.state == "stopped":
                    node.state = "running"
                    results.append(
                        self._judge_out_of_band(node, "stop_start", [f"observed: {node.instance_id} started"])
                    )
        return results

    def _judge_out_of_band(self, node: Node, action: str, calls: list[str]) -> MitigationResult:
        now = self.now()
        resolved = []
        for fault in self.active_faults():
            if fault.level == "node" and fault.target == node.id:
                fixes = action in fault.fixing_actions
                fault.attempts.append({"action": action, "at": now, "fixed": fixes, "out_of_band": True})
                if fixes:
                    fault.resolved_at, fault.resolved_by = now, action
                    resolved.append(fault.id)
        return MitigationResult(
            target=node.id,
            action=action,
            ok=True,
            fixed=bool(resolved),
            resolved_fault_ids=resolved,
            cloud_calls=calls,
            expected_downtime_s=ACTION_DOWNTIME_S[action],
            message="observed in the cloud",
        )

    def describe(self) -> str:
        kinds = ", ".join(sorted(FAULT_KINDS))
        return f"Fleet {self.cluster}: {len(self.nodes)} nodes, services {sorted(self.releases)}; fault kinds: {kinds}"


def _free_cluster_name(asg: Any, base: str) -> str:
    # every page: DescribeAutoScalingGroups returns 50 groups a call, and a long-lived moto server holds more
    pages = asg.get_paginator("describe_auto_scaling_groups").paginate()
    existing = {g["AutoScalingGroupName"] for page in pages for g in page["AutoScalingGroups"]}
    name, i = base, 1
    while f"{name}-nodes" in existing:
        i += 1
        name = f"{base}-{i}"
    return name
