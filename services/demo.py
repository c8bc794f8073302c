"""``aiops demo``: the whole platform in one process against a simulated fleet.

API + console + embedded Celery workers + the simulator (moto as the cloud, a telemetry API,
fault injection that posts Alertmanager webhooks to our own ingest endpoint). The platform talks to
the simulator only through its HTTP connectors, exactly as it would talk to a real fleet.

When the Debian ``prometheus`` / ``prometheus-alertmanager`` are installed (on PATH or at the package
paths) the alerts come the real way by default: Prometheus scrapes the simulator's ``/probe`` exporter
with the rules shipped in deploy/, Alertmanager posts to our webhook, and the agents read metrics and
health from Prometheus (logs, topology and traces still from the simulator's API: Prometheus holds none
of them). Without them, or with ``--no-prometheus``, the simulator posts its alerts itself; the demo
prints which mode it runs in and why (``alerting_mode``).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from rich.console import Console
from sqlalchemy import select

from services.config import Settings
from services.incidents.flows import AlreadyDecided
from services.worker.queue import IAC_RECONCILE, enqueue


def _autopilot(settings: Settings, *, after_s: float, stop: threading.Event, console: Console) -> None:
    """Stand-in for an operator: approves pending mitigations after a delay so unattended demos finish."""
    from services.actions.models import Approval
    from services.incidents.flows import decide
    from services.storage.base import session_scope, utcnow

    while not stop.wait(1.0):
        cutoff = utcnow() - timedelta(seconds=after_s)
        with session_scope(settings.database_url) as session:
            due = session.scalars(select(Approval.id).where(Approval.status == "pending",
                                                            Approval.created_at <= cutoff)).all()
        for approval_id in due:
            try:
                decide(settings, approval_id, approved=True, user="demo-autopilot", comment="auto-approved by the demo")
                console.print(f"[yellow]autopilot approved approval #{approval_id}[/yellow]")
            except AlreadyDecided as exc:  # someone decided in the console first
                console.print(f"[dim]autopilot skipped #{approval_id}: {exc}[/dim]")


def _drift_loop(drift, *, interval_s: float, stop: threading.Event, console: Console) -> None:
    """Make an out-of-band change every interval and ask the reconciler to look (beat does this in production)."""
    while not stop.wait(interval_s):
        try:
            event = drift.step()
            console.print(f"[magenta]drift injected[/magenta]: {event['kind']} {event['keys']}")
            enqueue(IAC_RECONCILE, "demo-bastion", priority=5)
        except Exception as exc:  # the incident demo goes on even if a drift step fails
            console.print(f"[red]drift step failed[/red]: {exc}")


class _PrometheusWithSimLogs:
    """Metrics and health from Prometheus; logs, topology and traces from the simulator's probe API."""

    def __init__(self, prometheus, sim) -> None:
        self.prometheus, self.sim = prometheus, sim

    def metrics(self, target: str, *, minutes: int = 15):
        return self.prometheus.metrics(target, minutes=minutes)

    def health(self, target: str):
        return self.prometheus.health(target)

    def logs(self, target: str, *, minutes: int = 15):
        return self.sim.logs(target, minutes=minutes)

    def topology(self):
        return self.sim.topology()

    def traces(self, target: str, *, minutes: int = 15):
        return self.sim.traces(target, minutes=minutes)

    def changes(self, *, minutes: int = 60):
        return self.sim.changes(minutes=minutes)


# the demo runs the shipped rules 20x faster (for: 1m -> 3s, 10m -> 30s; rate ranges 5m -> 15s): a 60-75 s
# demo must see a fault's alerts within seconds, in the order the shipped rules fire them
ALERT_TIME_SCALE = 0.05


def alerting_mode(requested: bool | None, *, found: tuple[str, str] | None) -> tuple[bool, str]:
    """(use Prometheus + Alertmanager, why): by default whenever both binaries are installed."""
    if requested is False:
        return False, "--no-prometheus: the simulator posts its alerts itself"
    if found is None:
        return False, ("Prometheus/Alertmanager not installed (not on PATH nor at /usr/bin; apt-get install "
                       "prometheus prometheus-alertmanager): the simulator posts its alerts itself")
    return True, f"found {found[0]} and {found[1]}" + ("" if requested else " (--no-prometheus to skip them)")


def summarize(database_url: str, *, since: datetime, sim_summary: dict[str, Any],
              drifts_injected: int = 0) -> dict[str, Any]:
    from services.drift.models import DriftProposal
    from services.incidents.models import Hypothesis, Incident
    from services.storage.base import session_scope

    with session_scope(database_url) as session:
        proposals = session.scalars(select(DriftProposal).where(DriftProposal.created_at >= since)).all()
        incidents = session.scalars(select(Incident).where(Incident.opened_at >= since)).all()
        resolved = [i for i in incidents if i.status == "resolved" and i.resolved_at]
        ttr = [(i.resolved_at - i.opened_at).total_seconds() for i in resolved if i.resolved_at is not None]
        by_status: dict[str, int] = {}
        for incident in incidents:
            by_status[incident.status] = by_status.get(incident.status, 0) + 1
        # the top hypothesis' component of every incident, by the service its alert named
        top = {h.incident_id: h.component for h in session.scalars(
            select(Hypothesis).where(Hypothesis.incident_id.in_([i.id for i in incidents]), Hypothesis.rank == 0)).all()}
        diagnosed_on = [(i.service, top.get(i.id)) for i in incidents]
    cascades = sim_summary.get("cascades") or []
    # a cascade is diagnosed upstream when an incident raised on the alerting dependent names the faulty component
    upstream = sum(1 for c in cascades
                   if any(service == c["alert_service"] and component in {c["target"], c.get("node")} - {None}
                          and component != c["alert_service"] for service, component in diagnosed_on))
    executed = sim_summary.get("actions_executed", 0)
    return {
        "faults_injected": sim_summary.get("faults_injected", 0),
        "faults_recovered (simulator truth)": sim_summary.get("faults_resolved", 0),
        "wrong_mitigations (simulator truth)": sim_summary.get("wrong_mitigations", 0),
        "actions_executed (simulator truth)": executed,
        "acted_on_the_right_component (simulator truth)": (
            f"{sim_summary.get('actions_on_a_faulty_component', 0)} of {executed}"),
        "cascade_faults (alert on a dependent)": len(cascades),
        "cascades_diagnosed_upstream": upstream,
        "incidents_opened": len(incidents),
        "incidents_resolved": len(resolved),
        "incidents_escalated": by_status.get("escalated", 0),
        "incidents_in_progress": len(incidents) - len(resolved) - by_status.get("escalated", 0),
        "mean_time_to_resolve_s": (sum(ttr) / len(ttr)) if ttr else float("nan"),
        "simulator_mean_time_to_recover_s": float(sim_summary.get("mean_time_to_recover_s") or float("nan")),
        "drifts_injected": drifts_injected,
        "drift_proposals": len(proposals),
        "drift_proposals_verified": sum(1 for p in proposals if p.verification.get("ok")),
    }


def run_demo(*, duration: float, nodes: int, fault_interval: float, port: int | None, seed: int,
             auto_approve_after: float, console: Console, drift_interval: float = 15.0,
             prometheus: bool | None = None) -> dict[str, Any]:
    from pathlib import Path

    from services.api.app import create_app
    from services.connectors.http import HttpActions, HttpTelemetry
    from services.connectors.prometheus import PrometheusTelemetry
    from services.storage.migrate import upgrade
    from services.worker import runtime
    from sim.alerting import AlertingStack, binaries
    from sim.stack import SimStack

    settings = Settings()
    upgrade(settings.database_url)
    port = port or settings.api_port
    if port == settings.api_port:
        import socket

        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                from sim.cloud import free_port

                port = free_port()
    base = f"http://127.0.0.1:{port}"
    started_at = datetime.now(UTC)
    use_prometheus, why = alerting_mode(prometheus, found=binaries())
    console.print(f"[bold]alert mode:[/bold] {'Prometheus + Alertmanager' if use_prometheus else 'direct'}: {why}",
                  style=None if use_prometheus or prometheus is False else "yellow")
    # the demo compresses time (rules' `for:` 1m -> 6s, a fault every few seconds): so does the window in
    # which alerts on connected components count as one fault (300 s -> 30 s)
    if "incident_correlation_window_s" not in settings.model_fields_set:  # unless set (0 turns it off)
        settings = settings.model_copy(update={"incident_correlation_window_s": 30})
    with console.status("starting the simulated fleet (moto) ..."):
        stack = SimStack.start(emit_url=None if use_prometheus else f"{base}/api/v1/alerts", nodes=nodes, seed=seed,
                               fault_interval_s=fault_interval, first_fault_after_s=3.0 + 15.0 * use_prometheus)
    telemetry: Any = HttpTelemetry(stack.api_url)
    alerting = None
    if use_prometheus:
        with console.status("starting Prometheus and Alertmanager on deploy/ configs ..."):
            alerting = AlertingStack.start(
                exporter=stack.api_url.removeprefix("http://"), webhook=f"{base}/api/v1/alerts",
                workdir=Path(settings.state_dir) / "demo-alerting", nodes=[n.id for n in stack.fleet.nodes],
                services=sorted(stack.fleet.releases), interval="2s", rule_for=None, rate_range=None, time_scale=ALERT_TIME_SCALE,
                group_wait="2s")
        telemetry = _PrometheusWithSimLogs(
            PrometheusTelemetry(alerting.prometheus_url, timeout_s=5, window=f"{round(300 * ALERT_TIME_SCALE)}s",
                                min_step_s=2, max_points=900),
            telemetry)
    drift = None
    if drift_interval > 0:
        from sim.drift import DriftSimulator

        with console.status("provisioning a Terraform project beside the fleet (drift demo) ..."):
            workdir = Path(settings.state_dir) / "demo-iac"
            drift = DriftSimulator(endpoint=stack.moto_endpoint, workdir=workdir, seed=seed)
            settings = settings.model_copy(update={"iac_workspaces": [drift.setup()]})
    runtime.install(settings, cloud=HttpActions(stack.api_url), telemetry=telemetry)
    if settings.memory_enabled:
        with console.status("loading the agents' memory (embedding model) ..."):
            from services.episodes.service import agent_memory

            agent_memory(settings).embedding(["warm up"])  # loads the model once, before the first incident
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="aiops-api", daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    console.print(f"[bold green]console:[/bold green] {base}/   [bold]API docs:[/bold] {base}/docs")
    console.print(f"fleet: {len(stack.fleet.nodes)} nodes in {stack.fleet.cluster}, cloud {stack.moto_endpoint}, "
                  f"telemetry {stack.api_url}")
    if alerting is not None:
        console.print(f"alerts: Prometheus {alerting.prometheus_url} (deploy/prometheus/rules.yml, scraping the "
                      f"simulator) -> Alertmanager {alerting.alertmanager_url} -> {base}/api/v1/alerts; "
                      "agents read metrics from Prometheus")
    else:
        console.print("alerts: posted by the simulator itself (Prometheus/Alertmanager not used)")
    stop = threading.Event()
    if auto_approve_after >= 0:
        threading.Thread(target=_autopilot, args=(settings,),
                         kwargs={"after_s": auto_approve_after, "stop": stop, "console": console}, daemon=True).start()
    stack.run_in_background(duration or 10**9)
    if drift is not None:
        threading.Thread(target=_drift_loop, args=(drift,), kwargs={"interval_s": drift_interval, "stop": stop,
                                                                     "console": console}, daemon=True).start()
    try:
        if duration:
            _progress(duration, console=console, database_url=settings.database_url, since=started_at)
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        stop.set()
        stack.stop_loop()
    summary = summarize(settings.database_url, since=started_at, sim_summary=stack.summary(),
                        drifts_injected=len(drift.injected) if drift else 0)
    from services.worker.embedded import stop_embedded_worker

    server.should_exit = True
    thread.join(10)
    stop_embedded_worker(timeout=5)
    if alerting is not None:
        alerting.stop()
    stack.stop()
    return summary


def _progress(duration: float, *, console: Console, database_url: str, since: datetime) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from services.incidents.models import Incident
    from services.storage.base import session_scope

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("demo running", total=duration)
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            with session_scope(database_url) as session:
                rows = session.scalars(select(Incident.status).where(Incident.opened_at >= since)).all()
            resolved = sum(1 for r in rows if r == "resolved")
            progress.update(task, completed=elapsed, description=f"incidents: {len(rows)} opened, {resolved} resolved")
            time.sleep(1.0)
        progress.update(task, completed=duration)
