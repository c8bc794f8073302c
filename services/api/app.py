"""FastAPI application factory: routers per domain, problem+json errors, the console, embedded workers."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from services.api import errors, health
from services.config import Settings
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
        yield

    app = FastAPI(
        title="AIOps platform",
        version="0.1.0",
        description="Alerts in, diagnosed and mitigated incidents out; causal node mitigation; IaC drift patches.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)

    from services.alerts.views import router as alerts_router
    from services.drift.views import router as drift_router
    from services.episodes.views import router as memory_router
    from services.incidents.views import router as incidents_router
    from services.mitigation.views import router as causal_router
    from services.notify.views import router as notify_router

    app.include_router(health.router)
    app.include_router(alerts_router)
    app.include_router(incidents_router)
    app.include_router(notify_router)
    app.include_router(causal_router)
    app.include_router(memory_router)
    app.include_router(drift_router)

    static = WEB_DIR / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def root():
        index = WEB_DIR / "index.html"
        return FileResponse(index) if index.exists() else RedirectResponse("/docs")

    return app
