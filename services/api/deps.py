"""Request dependencies: the settings the app was built with, handed to every route."""

from __future__ import annotations

from fastapi import Request

from services.config import Settings


def app_settings(request: Request) -> Settings:
    """The ``Settings`` passed to ``create_app``; routes never read the environment themselves."""
    return request.app.state.settings
