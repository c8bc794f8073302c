"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from sqlalchemy import func, select, text

from services.api.deps import app_settings
from services.auth.deps import require
from services.config import Settings
from services.storage.base import engine_for, session_scope, utcnow

router = APIRouter(tags=["health"])
REGISTRY = CollectorRegistry()
ALERTS_INGESTED = Counter("aiops_alerts_ingested", "Alerts accepted by this API process", registry=REGISTRY)
STARTED = Gauge("aiops_process_start_time_seconds", "API process start time", registry=REGISTRY)
STARTED.set(time.time())


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(caller: str = Depends(require("public"))) -> dict:
    """On the event loop: a liveness probe must not queue behind ingest work for a threadpool slot."""
    return {"status": "ok"}


def _check_db(url: str) -> str | None:
    try:
        with engine_for(url).connect() as conn:
            conn.execute(text("SELECT 1"))
        from services.storage.migrate import current_revision, head_revision

        if current_revision(url) != head_revision():
            return "database schema is not at head; run `aiops migrate`"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker(settings: Settings) -> str | None:
    if settings.embedded:
        return None
    from services.worker.celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@router.get("/readyz", summary="Readiness: database migrated (required) and broker reachable (else degraded)")
def readyz(caller: str = Depends(require("public")), settings: Settings = Depends(app_settings)) -> JSONResponse:
    """503 only when the database is unusable: without the broker the API still stores alerts (their new
    incidents wait in the dispatch outbox; the dispatcher sends them when it is back), so it stays in
    rotation and says ``degraded``."""
    checks = {"database": _check_db(settings.database_url), "broker": _check_broker(settings)}
    if checks["database"] is not None:
        status, code = "not ready", 503
    elif checks["broker"] is not None:
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    return JSONResponse({"status": status, "checks": {k: v or "ok" for k, v in checks.items()}}, status_code=code)


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting per queue (Redis lists, one per priority step); embedded mode reports what it can."""
    from services.worker.celery_app import QUEUES, app

    depths = {}
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            for name in QUEUES:
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except Exception:
                    depths[name] = 0
    except Exception:
        return {}
    return depths


class _DbCollector:
    """Reads the shared database at scrape time, so numbers agree across API and worker processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self):
        from services.alerts.models import Alert
        from services.incidents.models import OPEN_STATUSES, Incident, TimelineEvent
        from services.notify.models import WebhookDelivery

        with session_scope(self.settings.database_url) as session:
            total_alerts = session.scalar(select(func.coalesce(func.sum(Alert.count), 0)))
            open_incidents = session.scalar(select(func.count(Incident.id)).where(Incident.status.in_(OPEN_STATUSES)))
            runs = session.scalars(select(TimelineEvent.data).where(
                TimelineEvent.kind == "task", TimelineEvent.at >= utcnow() - timedelta(hours=1))).all()
            outbox = session.execute(select(WebhookDelivery.status, func.count(WebhookDelivery.id))
                                     .group_by(WebhookDelivery.status).order_by(WebhookDelivery.status)).all()
        g = GaugeMetricFamily("aiops_alerts_received_total", "Alert notifications received (incl. duplicates)")
        g.add_metric([], float(total_alerts or 0))
        yield g
        g = GaugeMetricFamily("aiops_incidents_open", "Incidents not yet resolved or escalated")
        g.add_metric([], float(open_incidents or 0))
        yield g
        s = SummaryMetricFamily("aiops_task_latency_seconds", "Task run time over the last hour", labels=["stage"])
        by_stage: dict[str, list[float]] = {}
        for data in runs:
            by_stage.setdefault(data.get("stage", "?"), []).append(float(data.get("run_s", 0.0)))
        for stage, values in sorted(by_stage.items()):
            s.add_metric([stage], count_value=len(values), sum_value=sum(values))
        yield s
        w = GaugeMetricFamily("aiops_webhook_deliveries", "Outbox rows per status (dead = dead-lettered, "
                              "needs a look)", labels=["status"])
        for status, count in outbox:
            w.add_metric([status], float(count))
        yield w
        q = GaugeMetricFamily("aiops_queue_depth", "Tasks waiting per queue", labels=["queue"])
        for name, depth in queue_depths(self.settings).items():
            q.add_metric([name], float(depth))
        yield q


@router.get("/metrics", summary="Prometheus metrics")
def metrics(caller: str = Depends(require("viewer", unless_setting="metrics_public")),
            settings: Settings = Depends(app_settings)) -> Response:
    registry = CollectorRegistry()
    registry.register(_DbCollector(settings))
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
