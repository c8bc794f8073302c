"""Cloud connector: mitigations as real boto3 calls (moto locally, AWS in production)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# mitigation -> EC2 calls; service-level mitigations need a deployment system this connector does not know
_NODE_ACTIONS = {"reboot", "redeploy", "send_to_repair", "reimage", "wait"}


class Boto3Cloud:
    """``agents.protocols.CloudActions`` on EC2: targets are instance ids or Name tags."""

    def __init__(self, *, endpoint_url: str | None, region: str = "us-east-1") -> None:
        kwargs: dict[str, Any] = {"region_name": region, "config": Config(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=15)}
        if endpoint_url:
            kwargs.update(endpoint_url=endpoint_url, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.ec2 = boto3.client("ec2", **kwargs)

    def _instance_id(self, target: str) -> str:
        if target.startswith("i-"):
            return target
        found = self.ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [target]}])
        for reservation in found["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] != "terminated":
                    return instance["InstanceId"]
        raise LookupError(f"no instance with id or Name tag {target!r}")

    def execute(self, action: str, target: str, *, params: dict[str, Any]) -> dict[str, Any]:
        if action not in _NODE_ACTIONS:
            raise NotImplementedError(f"{action} needs a deployment connector; EC2 can only act on nodes")
        instance_id = self._instance_id(target)
        if action == "reboot":
            self.ec2.reboot_instances(InstanceIds=[instance_id])
        elif action in {"redeploy", "reimage"}:
            self.ec2.stop_instances(InstanceIds=[instance_id])
            self.ec2.start_instances(InstanceIds=[instance_id])
        elif action == "send_to_repair":
            self.ec2.stop_instances(InstanceIds=[instance_id])
            self.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "aiops:state", "Value": "repair"}])
        return {"instance_id": instance_id, "action": action}

    def describe(self, target: str) -> dict[str, Any]:
        try:
            instance_id = self._instance_id(target)
        except LookupError:
            return {"healthy": None}
        instance = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        state = instance["State"]["Name"]
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        in_repair = tags.get("aiops:state") == "repair"
        # a node sent to repair is out of rotation: its impact on the fleet is removed, which is the goal
        return {"instance_id": instance_id, "state": state, "in_repair": in_repair,
                "healthy": state == "running" or (in_repair and state in {"stopping", "stopped"})}
