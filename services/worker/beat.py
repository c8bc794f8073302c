"""A celery beat scheduler that keeps each entry's last run in the platform database.

WHY: celery's default PersistentScheduler keeps a shelve file next to the beat process. In a
container that file dies with the container, so a restarted beat runs every entry again at once
(or, with a long interval like the nightly retrain, restarts its countdown); the database outlives
any container, and no file path has to be derived from anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from sqlalchemy import select

from services.storage.base import session_scope, utcnow
from services.storage.upsert import upsert
from services.worker.models import BeatEntryState


class DatabaseScheduler(Scheduler):
    """Entries come from ``app.conf.beat_schedule``; ``last_run_at``/``total_run_count`` from a table.

    State is written after every sent task (``sync_every_tasks = 1``): a handful of small rows, and
    a beat killed right after sending does not send the same entry again when it comes back.
    Use `database_scheduler(url)` to get a class bound to a database (celery instantiates it).
    """

    database_url: str = ""
    sync_every_tasks = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not self.database_url:
            raise RuntimeError("DatabaseScheduler needs a database: use database_scheduler(url)")
        kwargs.setdefault("sync_every_tasks", 1)
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        self.merge_inplace(self.app.conf.beat_schedule)
        self.install_default_entries(self.data)
        with session_scope(self.database_url) as session:
            stored = {row.name: row for row in session.scalars(select(BeatEntryState))}
        for name, entry in self.data.items():
            row = stored.get(name)
            if row is not None and row.task == entry.task and row.last_run_at is not None:
                entry.last_run_at = row.last_run_at.astimezone(UTC)
                entry.total_run_count = row.total_run_count
        self.sync()

    def sync(self) -> None:
        entries: list[ScheduleEntry] = list(self.data.values())
        with session_scope(self.database_url) as session:
            for entry in entries:
                upsert(session, BeatEntryState, keys=["name"], values={
                    "name": entry.name, "task": entry.task, "last_run_at": _aware(entry.last_run_at),
                    "total_run_count": entry.total_run_count, "updated_at": utcnow()})

    @property
    def info(self) -> str:
        safe = self.database_url.split("@")[-1]
        return f"    . state -> database {safe} (table beat_schedule_state)"


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def database_scheduler(database_url: str) -> type[DatabaseScheduler]:
    """A DatabaseScheduler class bound to `database_url` (celery beat takes a class, not an instance)."""
    return type("BoundDatabaseScheduler", (DatabaseScheduler,), {"database_url": database_url})
