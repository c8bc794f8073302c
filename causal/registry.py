"""A versioned model registry on a plain directory.

Layout::

    <root>/v0001/model.joblib   the fitted MitigationEffectModel (joblib pickle)
    <root>/v0001/meta.json      metrics, data window, refutation results, config, created_at
    <root>/ACTIVE               JSON {"version": "v0001", "promoted_at": ...}

WHY a directory: the actor, the API and the training task may run in different processes or
containers sharing a volume; a directory with atomic renames needs no server. Promotion is
gated: a version whose refutation tests did not pass is refused unless `force=True`.
Pickles are only loaded from this trusted directory, never from user input.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib

_VERSION_RE = re.compile(r"^v(\d{4,})$")


class RegistryError(RuntimeError):
    """Unknown version, or promotion refused by the refutation gate."""


@dataclass(frozen=True)
class ModelVersion:
    version: str
    path: Path
    meta: dict[str, Any]
    active: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "path": str(self.path), "active": self.active, **self.meta}


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


class ModelRegistry:
    """list / get / save / load / promote / active over a directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _versions(self) -> list[str]:
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(names, key=lambda v: int(v[1:]))

    def _active_name(self) -> str | None:
        pointer = self.root / "ACTIVE"
        if not pointer.exists():
            return None
        return json.loads(pointer.read_text(encoding="utf-8")).get("version")

    def save(self, model: Any, *, metrics: dict[str, Any], data_window: dict[str, Any],
             refutation: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> ModelVersion:
        """Store a new version (never overwrites); returns it, not yet active."""
        while True:
            existing = self._versions()
            number = int(existing[-1][1:]) + 1 if existing else 1
            path = self.root / f"v{number:04d}"
            try:
                path.mkdir()          # exclusive: two concurrent trainers get distinct versions
                break
            except FileExistsError:
                continue
        joblib.dump(model, path / "model.joblib", compress=3)
        meta = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "metrics": metrics, "data_window": data_window, "refutation": refutation,
            **(extra or {}),
        }
        _atomic_write_json(path / "meta.json", meta)
        return ModelVersion(path.name, path, meta)

    def list(self) -> list[ModelVersion]:
        """All versions, oldest first (versions still being written are skipped)."""
        active = self._active_name()
        out = []
        for name in self._versions():
            meta_path = self.root / name / "meta.json"
            if meta_path.exists():
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                out.append(ModelVersion(name, self.root / name, meta, active=name == active))
        return out

    def get(self, version: str) -> ModelVersion:
        for item in self.list():
            if item.version == version:
                return item
        raise RegistryError(f"unknown model version {version!r}")

    def load(self, version: str) -> Any:
        """The fitted model object of a version."""
        return joblib.load(self.get(version).path / "model.joblib")

    def promote(self, version: str, *, force: bool = False) -> ModelVersion:
        """Make `version` the active one; refused if its refutation gate did not pass."""
        item = self.get(version)
        refutation = item.meta.get("refutation") or {}
        if not force and not refutation.get("passed", False):
            raise RegistryError(f"{version}: refutation gate not passed "
                                f"({refutation.get('summary', 'no refutation results')}); "
                                "use force=True to promote anyway")
        _atomic_write_json(self.root / "ACTIVE", {
            "version": version, "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "forced": bool(force and not refutation.get("passed", False))})
        return ModelVersion(item.version, item.path, item.meta, active=True)

    def active(self) -> ModelVersion | None:
        name = self._active_name()
        return self.get(name) if name else None

    def load_active(self) -> Any | None:
        item = self.active()
        return None if item is None else self.load(item.version)
