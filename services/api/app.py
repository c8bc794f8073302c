"""FastAPI application factory: routers per domain, problem+json errors, the console, embedded workers."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.api import errors, health
from services.api.limits import BodyLimit
from services.config import Settings
from services.gc_freeze import freeze_startup_objects
from services.storage.migrate import ensure_migrated
from services.worker import runtime

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"


def create_app(settings: Settings | None = None, *, start_workers: bool | None = None) -> FastAPI:
    """Build the API; refuses to start on an unmigrated database (run ``aiops migrate``).

    Without ``settings`` the process's runtime settings are used; with them, the runtime is
    installed from them unless it already runs with that very object (the demo installs its own
    cloud and telemetry first), so embedded workers and routes see the same settings.
    """
    if settings is None:
        settings = runtime.current().settings
    elif runtime.current().settings is not settings:
        runtime.install(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ensure_migrated(settings.database_url)
        if settings.embedded and (start_workers if start_workers is not None else True):
            from services.worker.celery_app import app as celery_app
            from services.worker.embedded import ensure_embedded_worker

            ensure_embedded_worker(celery_app)
            _resume_outbox(settings)
        dispatcher = None
        if settings.dispatch_in_api:  # new incidents go from the database outbox to the queue (embedded too)
            from services.incidents.dispatch import Dispatcher

            dispatcher = Dispatcher(settings).start()
            dispatcher.wake()  # rows a previous process (or an outage) left
        freeze_startup_objects()
        try:
            yield
        finally:
            if dispatcher is not None:
                dispatcher.stop()

    app = FastAPI(
        title="AIOps platform",
        version="0.1.0",
        description="Alerts in, diagnosed and mitigated incidents out; causal node mitigation; IaC drift patches.",
        lifespan=lifespan,
        docs_url=None,  # served by the console from vendored Swagger UI assets: works offline
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # 413 while streaming, problem+json

    from services.alerts.views import router as alerts_router
    from services.audit.views import router as audit_router
    from services.auth.views import router as tokens_router
    from services.changes.views import router as changes_router
    from services.drift.views import router as drift_router
    from services.episodes.views import router as memory_router
    from services.incidents.views import router as incidents_router
    from services.mitigation.views import router as causal_router
    from services.notify.views import router as notify_router
    from services.traces.views import router as traces_router

    routers = [health.router, alerts_router, incidents_router, notify_router, causal_router, memory_router,
               drift_router, changes_router, traces_router, audit_router,
               tokens_router]  # tokens last: the role-matrix test revokes token 1 through it
    for router in routers:
        app.include_router(router)
    _publish_roles(app, routers)

    static = WEB_DIR / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    from services.console.views import install as install_console

    install_console(app)

    return app


def _resume_outbox(settings: Settings) -> None:
    """Embedded mode has no beat: re-queue the deliveries a previous process left pending, at start."""
    from services.notify.service import sweep_outbox

    try:
        sweep_outbox(settings, overdue_s=0)
    except Exception:  # the rows stay pending; the next start (or a beat, distributed) sends them
        log.warning("could not resume pending webhook deliveries", exc_info=True)


def _publish_roles(app: FastAPI, routers: list) -> None:
    """Put each operation's required role in the OpenAPI document (``x-required-role``).

    Clients and the role x route matrix test read it from there; an operation without a
    ``Require`` dependency is published without one, which that test reports.
    """
    from fastapi.openapi.utils import get_openapi
    from fastapi.routing import APIRoute

    from services.auth.deps import required_role

    roles: dict[tuple[str, str], str] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and (role := required_role(route.dependant)):
                for method in route.methods or ():
                    roles[(route.path, method.lower())] = role  # the path includes the prefix

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if (path, method) in roles:
                        operation["x-required-role"] = roles[(path, method)]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema; its stubs call it a method
