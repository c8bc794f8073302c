"""Task priority from severity, impact and age (Redis transport: 0 is served first, 9 last)."""

from __future__ import annotations

_SEVERITY_BASE = {"critical": 0, "high": 2, "warning": 4, "info": 7}


def task_priority(severity: str, *, impacted: int = 1, age_s: float = 0.0) -> int:
    """Severe, wide and old incidents first: more impacted targets or waiting >10 min raises priority."""
    base = _SEVERITY_BASE.get(severity, 5)
    if impacted >= 3:
        base -= 1
    if age_s >= 600:
        base -= 1
    return max(0, min(9, base))
