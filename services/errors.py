"""Domain errors: raised by service and flow functions, mapped to HTTP by ``services/api/errors.py``.

Flows are called from the API, Slack, the CLI, the demo and Celery tasks; they speak in these
types, never in HTTP status codes, and no caller decides a status by reading message text.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller may show to a person as is."""


class NotFound(DomainError, LookupError):
    """The thing named does not exist (HTTP 404)."""


class Conflict(DomainError):
    """The request is valid but the thing's state forbids it now (HTTP 409)."""


class Invalid(DomainError, ValueError):
    """The request itself is wrong, whatever the state (HTTP 422)."""


class Unavailable(DomainError):
    """A dependency the operation needs is down or not configured (HTTP 503)."""


class OperationFailed(DomainError):
    """The operation was accepted but failed on our side; nothing was half-done (HTTP 500)."""
