"""What kind of signal a metric is, from general naming conventions only.

WHY: fault typing asks "which kinds of signal moved" (cpu, memory, latency, errors, disk, network,
traffic, and liveness: is the component reporting at all). The kind is read from the metric name
with the vocabulary of node_exporter (``node_cpu_seconds_total``, ``node_memory_*``, ``node_disk_*``,
``node_network_*``), cAdvisor
(``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``, ``container_fs_*``,
``container_network_*``) and the OpenTelemetry semantic conventions (``system.cpu.utilization``,
``process.memory.usage``, ``http.server.request.duration``, ``rpc.client.duration``,
``http.server.request`` counts). None of these patterns was written for, or tuned on, a data set.

Direction: for most kinds a rise is the bad way; for success/availability/heartbeat-style series a
fall is (``bad_direction`` returns -1 for those).
"""

from __future__ import annotations

import re

KINDS = ("liveness", "cpu", "memory", "disk", "network", "latency", "errors", "traffic", "saturation", "leak", "other")

# order matters: the first matching kind wins ("http.server.request.duration" is latency, not traffic)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("latency", re.compile(r"latency|duration|response.?time|delay|rtt|\bp(50|75|90|95|99)\b|_seconds_bucket|elapsed")),
    # "is it there at all": node_exporter / Prometheus ``up``, heartbeats, liveness probes
    ("liveness", re.compile(r"heartbeat|\bup\b|\balive\b|liveness")),
    ("disk", re.compile(r"disk|filesystem|\bfs\b|fs_|blkio|block.?io|io.?time|iops|inode|volume")),
    ("errors", re.compile(r"error|fail|5xx|exception|success|availability|status.?code")),
    ("memory", re.compile(r"mem|rss|heap|oom|working.?set|swap|page.?fault|\bgc\b")),
    ("cpu", re.compile(r"cpu|load.?avg|load\d|throttl|steal")),
    ("network", re.compile(r"network|\bnet\b|net_|receive|transmit|packet|tcp|udp|socket|bytes.?(in|out|sent|recv)")),
    ("traffic", re.compile(r"request|workload|\bops\b|qps|rps|throughput|calls|invocation|count|rate_total")),
    ("saturation", re.compile(r"queue|pool|thread|connection|backlog|pending")),
)
_CLIENT = re.compile(r"client|outbound|upstream|downstream|egress|dependency")
_GOOD_WHEN_HIGH = re.compile(r"success|availability|heartbeat|\bup\b|\balive\b|liveness|healthy|uptime")


def _normalise(name: str) -> str:
    """``PodClientLatencyP90(s)`` -> ``pod client latency p90 s``: camel case, dots and underscores as words."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return re.sub(r"[._()\[\]%/:{}=\"-]+", " ", spaced).lower()


def signal_kind(metric: str) -> str:
    """The signal kind of a metric name (one of ``KINDS``)."""
    text = _normalise(metric)
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return "other"


def is_client_side(metric: str) -> bool:
    """Client-side (outgoing call) series describe the callee's behaviour as seen by the caller (OTel
    ``http.client.*`` / ``rpc.client.*``): their shift is evidence about a dependency, not the owner."""
    return bool(_CLIENT.search(_normalise(metric)))


def bad_direction(metric: str) -> int:
    """+1 when a rise is the bad way, -1 when a fall is (success rate, availability, heartbeat)."""
    return -1 if _GOOD_WHEN_HIGH.search(_normalise(metric)) else 1


# an error log line that says a process ran out of handles it should have given back: the OS's EMFILE text
# ("too many open files"), file descriptors, a connection pool with none free (HikariCP's "Connection is not
# available", database/sql and pgx's "waiting for (a) connection"), or a leak detector's own word
_LEAK = re.compile(r"too many open files|file descriptors?\b|\bleak|connection is not available"
                   r"|waiting for (a |an idle |a free )?connection")


def log_signal(template: str) -> str:
    """The signal kind of an error log template: ``leak`` for resource-exhaustion wording, else ``errors``."""
    return "leak" if _LEAK.search(template.lower()) else "errors"
