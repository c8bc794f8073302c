"""Shared fixtures: real servers (moto, Redis, Postgres) and a fresh platform database per test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.cloud import free_port, start_moto

__all__ = ["free_port"]  # re-exported: tests import the one helper from here or from sim.cloud

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REDIS_URL = os.environ.get("AIOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("AIOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server (HTTP) shared by the session, as the local AWS (``sim.cloud.start_moto``).

    The platform reads credentials through boto3's default chain, so the tests put moto's dummy
    credentials in the environment for the session (subprocesses inherit them): nothing a test
    starts can reach real AWS with someone's credentials.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        handle = start_moto()
        yield handle.endpoint_url
        handle.stop()


@pytest.fixture
def platform_env(tmp_path, monkeypatch, moto_endpoint) -> Iterator[dict[str, str]]:
    """A migrated SQLite platform database and a runtime installed with settings pointing at it.

    The variables are set too, for the processes a test starts; in-process code reads the
    installed runtime's settings (``install_settings`` re-installs with changes).
    """
    from services.storage.migrate import upgrade
    from services.worker import runtime

    env = {
        "AIOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'aiops.db'}",
        "AIOPS_CLOUD_ENDPOINT": moto_endpoint,
        "AIOPS_CLOUD_IS_SIMULATOR": "true",
        "AIOPS_CHROMA_PATH": str(tmp_path / "chroma"),
        "AIOPS_EMBEDDING": "hashing",  # the MiniLM path is covered by tests/memory; this keeps start-up fast
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    install_settings()
    upgrade(env["AIOPS_DATABASE_URL"])
    yield env
    runtime.reset()


def install_settings(**changes):
    """Install a runtime whose settings are the environment's plus ``changes``; returns the settings."""
    from services.config import Settings
    from services.worker import runtime

    settings = Settings(**changes)
    runtime.install(settings)
    return settings


def ec2_node(endpoint: str) -> str:
    """A real EC2 instance on the moto server, standing in for a fleet node; returns its id."""
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    return ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
