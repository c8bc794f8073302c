"""Schema migrations (Alembic) run from code, so ``aiops migrate`` needs no alembic.ini lookup."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData

from services.storage.base import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class NotMigratedError(RuntimeError):
    """The database is behind the code's schema; the fix is always ``aiops migrate``."""


def target_metadata() -> list[MetaData]:
    """All tables the platform owns, including the libraries' own (memory/ keeps its episodes in SQL)."""
    from services.storage.models import Base

    metadatas = [Base.metadata]
    try:
        from memory.models import MemoryBase

        metadatas.append(MemoryBase.metadata)
    except ImportError:  # pragma: no cover - memory library absent
        pass
    return metadatas


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, *, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, *, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def ensure_migrated(url: str) -> None:
    """Refuse to run on a database that ``aiops migrate`` has not brought to the code's schema."""
    current, head = current_revision(url), head_revision()
    if current != head:
        safe = url.split("@")[-1] if "@" in url else url
        raise NotMigratedError(
            f"database {safe} is at schema revision {current or 'none (empty)'}, the code needs {head}; "
            "run `aiops migrate` first"
        )
