"""The ``aiops`` command line: run the platform's processes and operate it from a terminal."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.config import get_settings

app = typer.Typer(help="AIOps platform: incidents, causal node mitigation, IaC drift reconciliation.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
causal_app = typer.Typer(help="Causal node mitigation (Deoxys): train, list and promote models.", no_args_is_help=True)
app.add_typer(causal_app, name="causal")
console = Console()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema to the code's version."""
    from services.storage.migrate import current_revision, head_revision, upgrade

    settings = get_settings()
    before = current_revision(settings.database_url)
    upgrade(settings.database_url)
    console.print(f"database migrated: {before or 'empty'} -> {head_revision()}")


@app.command()
def api(host: str = typer.Option(None, help="bind address"), port: int = typer.Option(None, help="port")) -> None:
    """Serve the REST API and the console (embedded workers too when no broker is configured)."""
    import uvicorn

    from services.api.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port, log_level="info")


@app.command()
def worker(
    queues: str = typer.Option("observe,diagnose,act", help="comma-separated queues: observe,diagnose,act,causal,iac,notify"),
    concurrency: int = typer.Option(2, help="worker processes"),
    loglevel: str = typer.Option("INFO"),
) -> None:
    """Run a Celery worker for some queues (distributed mode; needs AIOPS_BROKER_URL)."""
    from services.worker.celery_app import app as celery_app

    celery_app.worker_main(["worker", "-Q", queues, "-c", str(concurrency), "-l", loglevel, "-n", f"aiops-{queues.replace(',', '-')}@%h"])


@app.command()
def beat(loglevel: str = typer.Option("INFO")) -> None:
    """Run the scheduler (redispatch, reconciliation, retraining, memory upkeep); its state is in the database."""
    from services.worker.beat import database_scheduler
    from services.worker.celery_app import app as celery_app

    celery_app.Beat(scheduler=database_scheduler(get_settings().database_url), loglevel=loglevel).run()


@app.command()
def dispatch(once: bool = typer.Option(False, help="drain the outbox once and exit")) -> None:
    """Hand new incidents from the database outbox to the queue (each API process does this too, unless
    AIOPS_DISPATCH_IN_API=false); any number of dispatchers can run, none sends a row another one sends."""
    from services.incidents.dispatch import Dispatcher, drain

    settings = get_settings()
    if once:
        console.print(f"dispatched {len(drain(settings, limit=settings.dispatch_batch))} incident(s)")
        return
    dispatcher = Dispatcher(settings).start()
    dispatcher.wake()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        dispatcher.stop()


@app.command()
def ingest(file: Path = typer.Argument(..., exists=True, readable=True, help="JSON file, JSON array or JSON lines of alerts"),
           url: str = typer.Option(None, help="API base URL; default: store directly in the database")) -> None:
    """Replay alerts from a file through the same ingest path the API uses."""
    import httpx

    text = file.read_text()
    try:
        payloads = [json.loads(text)]
    except json.JSONDecodeError:
        payloads = [json.loads(line) for line in text.splitlines() if line.strip()]
    base = url or f"http://{get_settings().api_host}:{get_settings().api_port}"
    totals = {"accepted": 0, "new": 0, "duplicates": 0, "rejected": 0}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("replaying alerts", total=len(payloads))
        with httpx.Client(base_url=base, timeout=30, headers=_auth_headers()) as client:
            for payload in payloads:
                response = client.post("/api/v1/alerts", json=payload)
                if response.status_code == 202:
                    body = response.json()
                    totals["accepted"] += body["accepted"]
                    totals["new"] += len(body["new"])
                    totals["duplicates"] += len(body["duplicates"])
                else:
                    totals["rejected"] += 1
                    console.print(f"[red]rejected[/red] ({response.status_code}): {response.json().get('detail')}")
                progress.advance(task)
    console.print(totals)
    if totals["rejected"]:
        raise typer.Exit(1)



@app.command()
def replay(case_dir: Path = typer.Argument(..., help="recorded case directory (format: README, Replaying a recorded case)"),
           top: int = typer.Option(5, help="hypotheses to print")) -> None:
    """Run a recorded incident through the real observer and diagnoser and print the ranking."""
    from services.connectors.replay import CaseFormatError, replay_case

    try:
        result = replay_case(case_dir)
    except CaseFormatError as exc:
        console.print(f"[red]malformed case[/red]: {exc}")
        raise typer.Exit(2) from exc
    table = Table(title=f"diagnosis of {case_dir}")
    for column in ("rank", "component", "kind", "fault", "confidence", "evidence"):
        table.add_column(column)
    for i, h in enumerate(result["hypotheses"][:top], start=1):
        table.add_row(str(i), h["component"], h["component_kind"], h["fault"], f"{h['confidence']:.2f}",
                      "; ".join(e["detail"] for e in h["evidence"][:2]))
    console.print(table)
    label = result["label"]
    if label:
        ranked = [h["component"] for h in result["hypotheses"]]
        where = ranked.index(label["component"]) + 1 if label.get("component") in ranked else None
        console.print(f"label: {label.get('component')} / {label.get('fault')}; rank of the labelled component: "
                      f"{where or 'not ranked'}")

def _auth_headers() -> dict[str, str]:
    token = os.environ.get("AIOPS_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


@app.command()
def status() -> None:
    """Database, broker and incident counts at a glance."""
    from sqlalchemy import func, select

    from services.api.health import _check_broker, _check_db, queue_depths
    from services.incidents.models import Incident
    from services.storage.base import session_scope

    settings = get_settings()
    db_problem = _check_db(settings.database_url)
    table = Table(title="aiops status")
    table.add_column("check")
    table.add_column("value")
    table.add_row("database", db_problem or f"ok ({settings.database_url.split('@')[-1]})")
    table.add_row("broker", _check_broker(settings) or ("embedded (in-process)" if settings.embedded else "ok"))
    if not db_problem:
        with session_scope(settings.database_url) as session:
            for status_name, count in session.execute(select(Incident.status, func.count()).group_by(Incident.status)):
                table.add_row(f"incidents {status_name}", str(count))
        if not settings.embedded:
            for queue, depth in queue_depths(settings).items():
                table.add_row(f"queue {queue}", str(depth))
    console.print(table)
    if db_problem:
        raise typer.Exit(1)


@token_app.command("create")
def token_create(user: str = typer.Argument(...),
                 role: str = typer.Option("operator", help="viewer | operator | approver | admin"),
                 label: str = "",
                 expires_in: float = typer.Option(0, help="seconds until the token expires; 0 = never")) -> None:
    """Create an API token for a user (printed once; only its hash is kept)."""
    from services.auth.service import create_token

    print(create_token(get_settings().database_url, user=user, role=role, label=label,
                       expires_in_s=expires_in or None))


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="the id shown by `aiops token list`")) -> None:
    """Revoke a token now (audited as done by the local operator)."""
    from services.auth.service import revoke_token
    from services.errors import DomainError

    try:
        row = revoke_token(get_settings().database_url, token_id=token_id, actor=f"cli:{os.environ.get('USER', '?')}")
    except DomainError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"token {row['id']} of {row['user']} revoked at {row['revoked_at']}")


@token_app.command("list")
def token_list() -> None:
    """Tokens with their role, expiry and revocation (never their text)."""
    from services.auth.service import list_tokens

    table = Table(title="API tokens")
    for column in ("id", "user", "role", "label", "created", "expires", "revoked"):
        table.add_column(column)
    for t in list_tokens(get_settings().database_url):
        table.add_row(str(t["id"]), t["user"], str(t["role"]), t["label"], t["created_at"] or "",
                      t["expires_at"] or "", t["revoked_at"] or "")
    console.print(table)


@causal_app.command("train")
def causal_train(
    data: Path = typer.Option(None, help="event table (CSV or JSON lines); default: the events in the database"),
    synthetic: int = typer.Option(0, help="train on N simulated events instead (first run, evaluation)"),
    quick: bool = typer.Option(False, help="small forest and refutation gate, for a fast first model"),
    select_estimators: bool = typer.Option(False, help="score candidate CATE estimators per action; cards go in the model card"),
    schema: Path = typer.Option(None, help="JSON schema declaring the log's features, actions and baseline "
                                           "(causal/schema.py); needs --data"),
) -> None:
    """Train, refute and promote a new model version, with progress (with --schema: stored, not promoted)."""
    from services.mitigation.service import train_model

    stages = ["load", "evaluate", "fit", "refute", "save"]
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as progress:
        bars = {stage: progress.add_task(stage, total=1.0) for stage in stages}

        def report(stage: str, fraction: float) -> None:
            if stage in bars:
                progress.update(bars[stage], completed=fraction)

        try:
            result = train_model(get_settings(), data=str(data) if data else None, synthetic=synthetic,
                                 quick=quick, progress=report, select_estimator=select_estimators,
                                 schema=str(schema) if schema else None)
        except ValueError as exc:  # EventFileError and unusable data: one plain line, exit status 2
            progress.stop()
            _data_error(exc)
    if result.get("skipped"):
        console.print(f"nothing to train: {result['skipped']}")
        return
    gate = (result.get("refutation") or {}).get("passed")
    from services.audit.service import record
    from services.storage.base import session_scope

    try:  # training needs no database; the audit entry does, so an unmigrated one only costs the entry
        with session_scope(get_settings().database_url) as session:
            record(session, actor=f"cli:{os.environ.get('USER', '?')}", action="causal.train",
                   subject=result["version"], data={"promoted": bool(result.get("promoted")),
                                                    "refutation_passed": gate, "synthetic": synthetic})
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        console.print(f"[yellow]not audited ({type(exc).__name__}); run `aiops migrate`[/yellow]")
    console.print(f"model {result['version']}: refutation gate {'passed' if gate else 'FAILED'}, "
                  f"{'promoted' if result['promoted'] else 'not promoted'}")
    metrics = result.get("metrics", {})
    table = Table(title="training metrics")
    table.add_column("metric")
    table.add_column("value")
    for key, value in metrics.items():
        if isinstance(value, (int, float, str)):
            table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    for contrast, card in (metrics.get("estimator_selection") or {}).items():
        scores = ", ".join(f"{c['name']} {c['score']:.3f}" for c in card.get("candidates", []) if c.get("score") is not None)
        console.print(f"estimator selection {contrast}: chose {card.get('chosen')} ({scores})")
    for warning in metrics.get("warnings", []):
        console.print(f"[yellow]warning[/yellow] {warning}")
    for row in result.get("rejected_rows", [])[:10]:
        console.print(f"[yellow]rejected row[/yellow] {row}")


def _data_error(exc: Exception) -> None:
    """Print a data problem as one line on stderr and exit with status 2 (no traceback)."""
    message = " ".join(str(exc).split())
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code=2)


@causal_app.command("models")
def causal_models() -> None:
    """List model versions (the active one is marked)."""
    from services.mitigation.registry import model_registry

    table = Table(title="causal models")
    for column in ("version", "active", "gate", "rows"):
        table.add_column(column)
    for item in model_registry(get_settings().database_url).list():
        gate = (item.meta.get("refutation") or {}).get("passed")
        rows = (item.meta.get("metrics") or {}).get("rows_valid", "")
        table.add_row(item.version, "*" if item.active else "", str(gate), str(rows))
    console.print(table)


@causal_app.command("import-events")
def causal_import_events(file: Path = typer.Argument(..., help="CSV or JSON lines")) -> None:
    """Load an event table into the database (invalid rows and known event ids are skipped)."""
    from causal.data import EventFileError
    from services.mitigation.events import import_events

    try:
        result = import_events(get_settings().database_url, path=file)
    except EventFileError as exc:
        _data_error(exc)
    console.print(f"imported {result['imported']} events, {result['duplicates']} duplicates, "
                  f"{len(result['rejected'])} rejected")
    for row in result["rejected"][:10]:
        console.print(f"[yellow]rejected row[/yellow] {row}")


@causal_app.command("export-events")
def causal_export_events(file: Path = typer.Argument(..., help="CSV, or JSON lines for .jsonl")) -> None:
    """Write the events recorded in the database to a file (inspection, a notebook, another install)."""
    from services.mitigation.events import export_events

    console.print(f"exported {export_events(get_settings().database_url, path=file)} events to {file}")


@app.command()
def demo(
    duration: float = typer.Option(0, help="seconds to run, then print a summary and exit; 0 = until Ctrl-C"),
    nodes: int = typer.Option(6, help="simulated nodes"),
    fault_interval: float = typer.Option(8.0, help="seconds between injected faults"),
    port: int = typer.Option(None, help="API/console port"),
    seed: int = typer.Option(7),
    auto_approve_after: float = typer.Option(5.0, help="demo autopilot approves pending approvals after N s (<0: never)"),
    drift_interval: float = typer.Option(15.0, help="seconds between out-of-band cloud changes (0: no drift demo)"),
    prometheus: bool | None = typer.Option(None, "--prometheus/--no-prometheus",
                                    help="alerts through a real Prometheus + Alertmanager (deploy/ configs); "
                                         "default: whenever the Debian packages are installed"),
) -> None:
    """Everything in one process: API + console + embedded workers + a simulated fleet on moto."""
    from services.demo import run_demo

    summary = run_demo(duration=duration, nodes=nodes, fault_interval=fault_interval, port=port, seed=seed,
                       auto_approve_after=auto_approve_after, console=console, drift_interval=drift_interval,
                       prometheus=prometheus)
    if duration:
        table = Table(title="demo summary")
        table.add_column("measure")
        table.add_column("value")
        for key, value in summary.items():
            table.add_row(key, f"{value:.1f}" if isinstance(value, float) else str(value))
        console.print(table)
        sys.stdout.flush()
        # in-flight verifications run on pool threads; their checkpoints make them resumable, so don't wait
        os._exit(0 if summary.get("incidents_resolved", 0) > 0 else 1)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    time.sleep(0)
    main()
