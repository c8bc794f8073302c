"""A real Prometheus and Alertmanager around the simulator, on the configs shipped in deploy/.

WHY: the platform should be shown (``aiops demo --prometheus``) and tested (tests/platform/
test_prometheus_chain.py) against the same alerting path a real fleet has: Prometheus scrapes the
simulator's ``/probe`` exporter, evaluates deploy/prometheus/rules.yml and sends to Alertmanager, which
routes with deploy/alertmanager/alertmanager.yml to the platform's webhook. Only timings and addresses
differ from the shipped files (a demo cannot wait minutes for ``for:`` clauses).

Uses the Debian binaries (``prometheus``, ``prometheus-alertmanager``); ``binaries()`` says whether they
are installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from sim.cloud import free_port

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


# where Debian's packages put them, for a PATH without /usr/bin (a service unit, cron, a trimmed shell)
DEBIAN_PATHS = {"prometheus": ("/usr/bin/prometheus",),
                "alertmanager": ("/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager")}


def _installed(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def binaries() -> tuple[str, str] | None:
    """(prometheus, alertmanager) executables on PATH or at the Debian package paths; None when either is missing."""
    prometheus = shutil.which("prometheus") or next(filter(_installed, DEBIAN_PATHS["prometheus"]), None)
    alertmanager = (shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
                    or next(filter(_installed, DEBIAN_PATHS["alertmanager"]), None))
    return (prometheus, alertmanager) if prometheus and alertmanager else None


@dataclass
class AlertingStack:
    prometheus_url: str
    alertmanager_url: str
    workdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def start(cls, *, exporter: str, webhook: str, workdir: Path, nodes: list[str], services: list[str] | tuple[str, ...] = (),
              interval: str = "1s", rule_for: str | None = "2s", rate_range: str | None = "10s",
              group_wait: str = "1s", time_scale: float | None = None) -> AlertingStack:
        """Start both servers; ``exporter`` is the simulator's host:port, ``webhook`` the platform's alert URL.

        ``rule_for`` / ``rate_range`` replace every ``for:`` and ``[5m]`` of the shipped rules with one
        value; set to None with a ``time_scale`` they are each multiplied by it instead (the demo's
        0.1 turns ``for: 1m`` into 6s and ``for: 10m`` into 60s), which keeps the shipped order in
        which a fault's alerts fire (critical symptoms before warnings).
        """
        found = binaries()
        if found is None:
            raise RuntimeError("prometheus and prometheus-alertmanager are not installed "
                               "(apt-get install prometheus prometheus-alertmanager)")
        prometheus, alertmanager = found
        workdir.mkdir(parents=True, exist_ok=True)
        prom_port, am_port = free_port(), free_port()
        stack = cls(prometheus_url=f"http://127.0.0.1:{prom_port}", alertmanager_url=f"http://127.0.0.1:{am_port}",
                    workdir=workdir)
        try:
            am_config = _alertmanager_config(workdir, webhook=webhook, group_wait=group_wait)
            stack.procs.append(subprocess.Popen(
                [alertmanager, f"--config.file={am_config}", f"--storage.path={workdir / 'alertmanager'}",
                 f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                stdout=(workdir / "alertmanager.log").open("wb"), stderr=subprocess.STDOUT))
            prom_config = _prometheus_config(workdir, exporter=exporter, alertmanager=f"127.0.0.1:{am_port}",
                                             nodes=nodes, services=list(services), interval=interval,
                                             rule_for=rule_for, rate_range=rate_range, time_scale=time_scale)
            stack.procs.append(subprocess.Popen(
                [prometheus, f"--config.file={prom_config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}", f"--rules.alert.resend-delay={interval}"],
                stdout=(workdir / "prometheus.log").open("wb"), stderr=subprocess.STDOUT))
            stack.wait_ready()
        except BaseException:
            stack.stop()
            raise
        return stack

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        for url in (self.alertmanager_url, self.prometheus_url):
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    raise RuntimeError(f"{url} did not become ready; see the logs in {self.workdir}")
                time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()

    def __enter__(self) -> AlertingStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _prometheus_config(work: Path, *, exporter: str, alertmanager: str, nodes: list[str], services: list[str],
                       interval: str, rule_for: str | None, rate_range: str | None,
                       time_scale: float | None = None) -> Path:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    for job in config["scrape_configs"]:
        job["scrape_timeout"] = interval
    rules = (DEPLOY / "prometheus/rules.yml").read_text()
    floor = _seconds(interval)

    def scaled(duration: str, *, at_least: float) -> str:
        return f"{max(at_least, round(_seconds(duration) * (time_scale or 1.0)))}s"

    rules = re.sub(r"for: (\S+)", lambda m: f"for: {rule_for or scaled(m.group(1), at_least=floor)}", rules)
    # a rate needs at least two samples in its range: never below four scrape intervals
    rules = re.sub(r"\[(\d+[smh])\]", lambda m: f"[{rate_range or scaled(m.group(1), at_least=4 * floor)}]", rules)
    (work / "rules.yml").write_text(rules)
    (work / "targets").mkdir(exist_ok=True)
    for name, targets in (("nodes", nodes), ("services", services)):
        groups = [{"targets": targets, "labels": {"__exporter__": exporter}}] if targets else []
        (work / f"targets/{name}.json").write_text(json.dumps(groups))
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    return work / "prometheus.yml"


def _seconds(duration: str) -> float:
    """A Prometheus duration of one unit (``90s``, ``5m``, ``1h``) in seconds."""
    value, unit = float(duration[:-1]), duration[-1]
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def _alertmanager_config(work: Path, *, webhook: str, group_wait: str) -> Path:
    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    config["route"].update(group_wait=group_wait, group_interval=group_wait, repeat_interval="1m")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
    return work / "alertmanager.yml"
