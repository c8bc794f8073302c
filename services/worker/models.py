"""Beat schedule state: when each periodic entry last ran, so a restarted beat (any container) resumes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.storage.base import Base, utcnow


class BeatEntryState(Base):
    __tablename__ = "beat_schedule_state"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    last_run_at: Mapped[datetime | None] = mapped_column()
    total_run_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
