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


def table_after(text: str, heading: str) -> list[dict[str, str]]:
    """Rows of the first Markdown table after the line ``heading``, as dicts by column name."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows: list[dict[str, str]] = []
    columns: list[str] | None = None
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            if columns is not None:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if columns is None:
            columns = cells
        elif not set(line) <= set("|-: "):
            rows.append(dict(zip(columns, cells, strict=False)))
    return rows
