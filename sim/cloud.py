"""The simulated cloud: a real moto server in-process, and boto3 helpers pointed at it.

Why a real server (``ThreadedMotoServer``) and not ``mock_aws``: the platform under test talks to
the cloud over HTTP with boto3 exactly as it would talk to AWS, possibly from another thread or
process, so the simulator must expose a real endpoint. Note that moto keeps its state in process
globals: two servers started in one process share the same resources, so every fleet tags and
filters its resources by its own cluster name.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"
# the endpoint "URL" of an in-process moto (``moto.mock_aws``): no server, no HTTP, same backends
IN_PROCESS = "moto:in-process"


@dataclass
class MotoHandle:
    """A running moto server; ``endpoint_url`` is what boto3 clients (ours and the platform's) use."""

    host: str
    port: int
    _server: Any = field(repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MotoHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` right now (the one helper the repo uses: demo, tests, benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_moto(*, port: int = 0, host: str = "127.0.0.1") -> MotoHandle:
    """Start a ``ThreadedMotoServer`` on ``host`` (a free port when ``port`` is 0) and wait until it answers.

    IAM's AWS-managed policies are loaded (``MOTO_IAM_LOAD_MANAGED_POLICIES``) because the drift
    projects attach ``AWSLambdaBasicExecutionRole`` and friends; moto reads it when a backend is made.
    """
    import logging
    import os

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per boto3 call otherwise
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    install_reboot_hook()
    chosen = port or free_port(host)
    server = ThreadedMotoServer(ip_address=host, port=chosen, verbose=False)
    server.start()
    handle = MotoHandle(host=host, port=chosen, _server=server)
    _wait_ready(handle.endpoint_url)
    return handle


def _wait_ready(endpoint_url: str, *, attempts: int = 50) -> None:
    import httpx

    for _ in range(attempts):
        try:
            httpx.get(f"{endpoint_url}/moto-api/", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server at {endpoint_url} did not come up")


def boto_session(*, region: str = REGION) -> boto3.session.Session:
    """A boto3 session with fake credentials, so nothing ever reaches real AWS by accident."""
    return boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
        region_name=region,
    )


@functools.lru_cache(maxsize=64)
def boto_client(service: str, endpoint_url: str, *, region: str = REGION) -> Any:
    """A boto3 client for ``service`` against ``endpoint_url`` (the moto server), with short retries.

    Cached per (service, endpoint, region): building a client loads its service model (~0.4 s)
    and botocore clients are safe to share between threads.
    """
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    # IN_PROCESS: AWS's own endpoints, which moto's in-process ``mock_aws`` intercepts (benchmarks)
    return boto_session(region=region).client(service, endpoint_url=endpoint_url if endpoint_url != IN_PROCESS else None,
                                              config=config)


# ----------------------------------------------------------------- reboots seen by moto
# moto keeps no trace of a reboot (the instance just stays "running"), so a platform that calls
# ``ec2.reboot_instances`` directly would leave no evidence for the simulator to judge. When moto
# runs in this process (``start_moto``), we wrap its reboot handler to log (time, instance id).
# The hook only appends to a list: it runs on moto's request thread and must never take a fleet
# lock (the caller may be holding it while it waits for this very request).
_reboots: list[tuple[float, str]] = []
_reboots_lock = threading.Lock()
_hook_installed = False


def install_reboot_hook() -> None:
    """Make the in-process moto EC2 backend record every instance it reboots (idempotent)."""
    global _hook_installed
    with _reboots_lock:
        if _hook_installed:
            return
        from moto.ec2.models.instances import InstanceBackend

        original = InstanceBackend.reboot_instances

        def reboot_instances(self: Any, instance_ids: list[str]) -> Any:
            result = original(self, instance_ids)
            with _reboots_lock:
                _reboots.extend((time.time(), str(i)) for i in instance_ids)
            return result

        InstanceBackend.reboot_instances = reboot_instances  # type: ignore[method-assign]
        _hook_installed = True


def reboots_since(cursor: int) -> tuple[list[tuple[float, str]], int]:
    """Reboots recorded after position ``cursor``, and the new cursor."""
    with _reboots_lock:
        return list(_reboots[cursor:]), len(_reboots)
