"""CloudWatch telemetry: the agents' ``Telemetry`` Protocol over CloudWatch metrics and Logs.

WHY: an AWS fleet with no Prometheus still has CloudWatch. EC2 publishes CPU, network and status
checks for every instance, and most services ship their logs to CloudWatch Logs, so the observer
can read a node's vitals and recent log lines with nothing installed on it.

* ``metrics(target)``: ``GetMetricData`` for the instance (id ``i-...`` or ``Name`` tag) -
  ``CPUUtilization``, ``NetworkIn``/``NetworkOut``, ``StatusCheckFailed``;
* ``logs(target)``: ``FilterLogEvents`` on ``log_group`` - a pattern where ``{target}`` is the
  component (``/fleet/{target}``); a fixed group is filtered for the target's name instead;
* ``health(target)``: unhealthy when the latest ``StatusCheckFailed`` is 1 or a CloudWatch alarm
  in ``ALARM`` state names the component (its instance id, ``Name`` tag or service name) in its
  dimensions: a status check only says the instance answers, while a disk or CPU alarm still in
  ``ALARM`` says the operator's own rule still sees the fault; ``None`` when neither can tell.

Each call has botocore connect/read timeouts; a failing or unreachable API is "evidence
unavailable" (empty/``None``, logged once per outage), never an exception into the agents.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.connectors.cloud import boto3_session

log = logging.getLogger(__name__)

# series name -> (CloudWatch metric, statistic)
EC2_METRICS: dict[str, tuple[str, str]] = {
    "ec2_cpu_utilization": ("CPUUtilization", "Average"),
    "ec2_network_in_bytes": ("NetworkIn", "Sum"),
    "ec2_network_out_bytes": ("NetworkOut", "Sum"),
    "ec2_status_check_failed": ("StatusCheckFailed", "Maximum"),
}

_FAILURES = (BotoCoreError, ClientError)


class CloudWatchTelemetry:
    """EC2 metrics and CloudWatch Logs lines for a component; targets are instance ids or Name tags."""

    def __init__(self, *, session: boto3.session.Session | None = None, region: str | None = None,
                 endpoint_url: str | None = None, simulator: bool = False, log_group: str = "/fleet/{target}",
                 timeout_s: float = 10.0, period_s: int = 60, max_log_lines: int = 200) -> None:
        session = session or boto3_session(region=region, simulator=simulator)
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=timeout_s,
                        read_timeout=timeout_s)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url, config=config)
        self.logs_client = session.client("logs", endpoint_url=endpoint_url, config=config)
        self.ec2 = session.client("ec2", endpoint_url=endpoint_url, config=config)
        self.log_group, self.period_s, self.max_log_lines = log_group, period_s, max_log_lines
        self._unavailable = False

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return  # no such log group: this component simply has no logs here
        if not self._unavailable:
            log.warning("cloudwatch %s failed, evidence from it is missing: %s", what, exc)
        self._unavailable = True

    def _instance_id(self, target: str) -> str | None:
        if target.startswith("i-"):
            return target
        found = self.ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [target]}])
        ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        return ids[0] if ids else None

    def metrics(self, target: str, *, minutes: int = 15) -> dict[str, list[tuple[float, float]]]:
        try:
            instance_id = self._instance_id(target)
            if instance_id is None:
                return {}
            end = datetime.now(UTC)
            queries = [{"Id": f"m{i}", "Label": name, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/EC2", "MetricName": metric,
                           "Dimensions": [{"Name": "InstanceId", "Value": instance_id}]},
                "Period": self.period_s, "Stat": stat}}
                for i, (name, (metric, stat)) in enumerate(EC2_METRICS.items())]
            names = {f"m{i}": name for i, name in enumerate(EC2_METRICS)}
            series: dict[str, list[tuple[float, float]]] = {}
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": end - timedelta(minutes=minutes),
                                      "EndTime": end, "ScanBy": "TimestampAscending"}
            while True:
                page = self.cloudwatch.get_metric_data(**kwargs)
                for result in page["MetricDataResults"]:
                    points = series.setdefault(names[result["Id"]], [])
                    points.extend((ts.timestamp(), float(v)) for ts, v in zip(result["Timestamps"], result["Values"], strict=False))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        except _FAILURES as exc:
            self._failed(f"metrics of {target}", exc)
            return {}
        self._unavailable = False
        return {name: sorted(points) for name, points in series.items() if points}

    def logs(self, target: str, *, minutes: int = 15) -> list[str]:
        start_ms = int((datetime.now(UTC) - timedelta(minutes=minutes)).timestamp() * 1000)
        kwargs: dict[str, Any] = {"startTime": start_ms, "limit": self.max_log_lines}
        if "{target}" in self.log_group:
            kwargs["logGroupName"] = self.log_group.replace("{target}", target)
        else:
            # a shared group: keep the events that name the target (a quoted term is a literal match)
            kwargs["logGroupName"] = self.log_group
            kwargs["filterPattern"] = '"' + target.replace('"', "") + '"'
        lines: list[str] = []
        try:
            while len(lines) < self.max_log_lines:
                page = self.logs_client.filter_log_events(**kwargs)
                lines.extend(event["message"] for event in page.get("events", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except _FAILURES as exc:
            self._failed(f"logs of {target}", exc)
            return []
        return lines[: self.max_log_lines]

    def health(self, target: str) -> bool | None:
        status = self.metrics(target, minutes=15).get("ec2_status_check_failed")
        if status and status[-1][1] >= 1:
            return False
        try:
            names = {target, self._instance_id(target) or target}
            alarming = self.alarms_naming(names)
        except _FAILURES as exc:
            self._failed(f"alarms of {target}", exc)
            return None  # the alarms are unknown: passing status checks alone do not say "healthy"
        if alarming:
            return False
        return None if not status else True

    def alarms_naming(self, names: set[str]) -> list[str]:
        """Names of the metric alarms in ``ALARM`` whose dimensions (or metric-math inputs') name one of ``names``.

        WHY dimensions: a CloudWatch alarm is about the metric it watches, and the metric's dimensions
        (``InstanceId``, ``AutoScalingGroupName``, ``ServiceName``, ...) are what name the component.
        """
        found = []
        for page in self.cloudwatch.get_paginator("describe_alarms").paginate(
                StateValue="ALARM", AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                dimensions = list(alarm.get("Dimensions", []))
                for query in alarm.get("Metrics", []):
                    dimensions += query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
                if any(d.get("Value") in names for d in dimensions):
                    found.append(alarm["AlarmName"])
        return found
