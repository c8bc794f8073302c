"""Roles, lowest first: viewer < operator < approver < admin (``services.auth.deps`` enforces them)."""

from __future__ import annotations

ROLES: tuple[str, ...] = ("viewer", "operator", "approver", "admin")
PUBLIC = "public"
ANONYMOUS = "operator"  # the name actions are recorded under when auth is off (embedded demo)


def rank(role: str) -> int:
    """Position of a role; unknown roles (a row edited by hand) rank below viewer."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role
