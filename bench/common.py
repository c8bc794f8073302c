"""Helpers shared by the benchmarks: where the data is, and how a table is printed."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The real-data root: an explicit path, ``$AIOPS_DATA_DIR``, or ``../shared/data`` beside the project."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("AIOPS_DATA_DIR")
    if env:
        return Path(env)
    return PROJECT_ROOT.parent / "shared" / "data"


def markdown_table(rows: Iterable[dict[str, object]], columns: Sequence[str] | None = None) -> str:
    """Render rows as a GitHub Markdown table; floats get 3 significant decimals."""
    rows = list(rows)
    if not rows:
        return "_no rows_\n"
    columns = list(columns or rows[0].keys())

    def fmt(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"
