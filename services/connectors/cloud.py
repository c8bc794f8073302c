"""Cloud connector: mitigations as real boto3 calls on EC2 (and EC2 Auto Scaling).

Credentials and region come from boto3's default chain (environment, shared config/profile, SSO,
container or instance role), exactly as for any AWS tool. moto's dummy credentials are used only
when the caller says the cloud is the simulator (``simulator=True``, from
``Settings.cloud_is_simulator``) or hands credentials in explicitly (tests, ``sim/``); an endpoint
URL alone no longer implies moto, since a real deployment may use a VPC endpoint or a proxy.

What each action does, and why it is that call:

- ``reboot``: ``RebootInstances``; the OS restarts on the same host, memory state is lost.
- ``redeploy``: ``StopInstances``, wait for ``stopped``, ``StartInstances``. On EC2 a stop/start
  (not a reboot) releases the instance's host and starts it on new hardware: the EC2 equivalent of
  moving the VM off a bad host. Instance-store data and a non-Elastic public IP are lost.
- ``reimage``: a fresh root volume from the image. For an Auto Scaling group member,
  ``TerminateInstanceInAutoScalingGroup`` without decrementing capacity: the group launches a
  replacement from its launch template (same AMI, a new root volume). For a standalone instance,
  ``CreateReplaceRootVolumeTask`` (restore the root volume to its launch state, old volume deleted);
  moto does not implement that call, so against moto only the ASG path can succeed.
- ``send_to_repair``: out of rotation and kept for inspection: when in an ASG,
  ``DetachInstances`` without decrementing capacity (the group launches a replacement, the
  instance survives), then ``StopInstances`` and the tag ``aiops:state=repair``.
- ``wait``: no call at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config

# mitigation -> EC2 calls; service-level mitigations need a deployment system this connector does not know
_NODE_ACTIONS = {"reboot", "redeploy", "send_to_repair", "reimage", "wait"}

# moto accepts any credentials; these are used only when the simulator or a test says so
SIMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

REPAIR_TAG = {"Key": "aiops:state", "Value": "repair"}


def boto3_session(*, region: str | None = None, simulator: bool = False,
                  credentials: dict[str, str] | None = None) -> boto3.session.Session:
    """A session on boto3's default credential chain, or on explicit/simulator credentials.

    ``region=None`` leaves the region to the chain too (``AWS_REGION``, profile, ...).
    """
    creds = credentials if credentials is not None else (SIMULATOR_CREDENTIALS if simulator else {})
    return boto3.session.Session(region_name=region, **creds)


class Boto3Cloud:
    """``agents.protocols.CloudActions`` on EC2: targets are instance ids or Name tags."""

    def __init__(self, *, endpoint_url: str | None = None, region: str | None = None, simulator: bool = False,
                 credentials: dict[str, str] | None = None, wait_delay_s: float = 5.0,
                 wait_attempts: int = 60) -> None:
        session = boto3_session(region=region, simulator=simulator, credentials=credentials)
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=15)
        self.ec2 = session.client("ec2", endpoint_url=endpoint_url, config=config)
        self.autoscaling = session.client("autoscaling", endpoint_url=endpoint_url, config=config)
        self._waiter_config = {"Delay": wait_delay_s, "MaxAttempts": wait_attempts}

    @classmethod
    def from_settings(cls, settings: Any) -> Boto3Cloud:
        """Built from ``Settings``: endpoint, region, and whether the cloud is the simulator."""
        return cls(endpoint_url=settings.cloud_endpoint, region=settings.cloud_region,
                   simulator=bool(getattr(settings, "cloud_is_simulator", False)))

    def _instance_id(self, target: str) -> str:
        if target.startswith("i-"):
            return target
        found = self.ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [target]}])
        for reservation in found["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] != "terminated":
                    return instance["InstanceId"]
        raise LookupError(f"no instance with id or Name tag {target!r}")

    def _asg_of(self, instance_id: str) -> str | None:
        """The Auto Scaling group the instance belongs to, if any."""
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
        return found[0]["AutoScalingGroupName"] if found else None

    def execute(self, action: str, target: str, *, params: dict[str, Any]) -> dict[str, Any]:
        if action not in _NODE_ACTIONS:
            raise NotImplementedError(f"{action} needs a deployment connector; EC2 can only act on nodes")
        instance_id = self._instance_id(target)
        out: dict[str, Any] = {"instance_id": instance_id, "action": action}
        if action == "reboot":
            self.ec2.reboot_instances(InstanceIds=[instance_id])
        elif action == "redeploy":
            self._stop(instance_id)
            self.ec2.start_instances(InstanceIds=[instance_id])
            out["effect"] = "stopped and started: the instance runs on a new host"
        elif action == "reimage":
            out.update(self._reimage(instance_id))
        elif action == "send_to_repair":
            group = self._asg_of(instance_id)
            if group:
                self.autoscaling.detach_instances(InstanceIds=[instance_id], AutoScalingGroupName=group,
                                                  ShouldDecrementDesiredCapacity=False)
                out["detached_from"] = group
            self.ec2.stop_instances(InstanceIds=[instance_id])
            self.ec2.create_tags(Resources=[instance_id], Tags=[REPAIR_TAG])
        else:  # wait: watching is the action
            out["effect"] = "no call"
        return out

    def _stop(self, instance_id: str) -> None:
        self.ec2.stop_instances(InstanceIds=[instance_id])
        self.ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig=self._waiter_config)

    def _reimage(self, instance_id: str) -> dict[str, Any]:
        group = self._asg_of(instance_id)
        if group:
            self.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id,
                                                                      ShouldDecrementDesiredCapacity=False)
            return {"replaced_by_group": group, "effect": "terminated; the group launches a fresh instance"}
        task = self.ec2.create_replace_root_volume_task(InstanceId=instance_id, DeleteReplacedRootVolume=True)
        return {"replace_root_volume_task": task["ReplaceRootVolumeTask"]["ReplaceRootVolumeTaskId"],
                "effect": "root volume restored to its launch state"}

    def describe(self, target: str) -> dict[str, Any]:
        try:
            instance_id = self._instance_id(target)
        except LookupError:
            return {"healthy": None}
        instance = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        state = instance["State"]["Name"]
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        in_repair = tags.get(REPAIR_TAG["Key"]) == REPAIR_TAG["Value"]
        # a node sent to repair is out of rotation: its impact on the fleet is removed, which is the goal
        return {"instance_id": instance_id, "state": state, "in_repair": in_repair,
                "healthy": state == "running" or (in_repair and state in {"stopping", "stopped"})}

    def inventory(self, target: str) -> dict[str, Any]:
        """What EC2 records of the node: ``instance_id``, ``instance_type``, ``created_at``.

        ``created_at`` is the earliest of ``LaunchTime`` and the primary network interface's
        ``AttachTime``: ``LaunchTime`` moves on every stop/start, the primary interface stays
        attached from the instance's creation. LookupError when no such instance exists.
        """
        instance_id = self._instance_id(target)
        found = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        if not found or not found[0]["Instances"]:
            raise LookupError(f"no instance {instance_id!r}")
        instance = found[0]["Instances"][0]
        times: list[datetime] = [t for t in [instance.get("LaunchTime")] if isinstance(t, datetime)]
        for interface in instance.get("NetworkInterfaces", []):
            attachment = interface.get("Attachment") or {}
            if attachment.get("DeviceIndex") == 0 and isinstance(attachment.get("AttachTime"), datetime):
                times.append(attachment["AttachTime"])
        return {"instance_id": instance_id, "instance_type": instance.get("InstanceType"),
                "created_at": min(times) if times else None}
