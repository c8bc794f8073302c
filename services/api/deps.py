"""Request dependencies and edge types shared by every router.

``SafeStr`` refuses NUL characters (PostgreSQL cannot store them, SQLite would); ``MAX_ID`` and
``MAX_PAGE`` keep path ids and offsets inside the database's integer range, so a huge number is
a 422 naming the parameter instead of a driver error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import AfterValidator
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from services.config import Settings

MAX_ID = 2**31 - 1  # ids are INTEGER columns (int4 on PostgreSQL)
MAX_PAGE = 100_000


async def app_settings(request: Request) -> Settings:
    """The ``Settings`` passed to ``create_app``; routes never read the environment themselves.

    ``async``: a sync dependency costs a threadpool hop per request, and this one only reads an attribute.
    """
    return request.app.state.settings


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must not contain lone UTF-16 surrogates") from None
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="a positive id")]


def page_of(session: Session, query: Select, *, order_by: Any, page: int, per_page: int,
            view: Callable[[Any], dict]) -> dict:
    """One page of ``query`` as every list route answers it: ``{total, page, per_page, items}``.

    Why one helper: the list routes (incidents, alerts, drift, audit, ...) must page the same way
    (count of the filtered query, newest first, offset bounded by ``MAX_PAGE``) for the console
    and API clients to page any of them with one piece of code.
    """
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    order = order_by if isinstance(order_by, tuple | list) else (order_by,)  # one key or several
    rows = session.scalars(query.order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    return {"total": total, "page": page, "per_page": per_page, "items": [view(r) for r in rows]}
