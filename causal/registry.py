"""A versioned model registry over a pluggable store.

`ModelRegistry` owns the rules (versions are never overwritten, promotion is gated by the
refutation tests, one version is active); a `RegistryStore` owns where the bytes live.

WHY a store protocol: the actor, the API and the training task run in different processes or
containers. A directory only works when they share a volume, so the platform plugs in a database
store (services/mitigation/registry.py) and this library keeps the directory store for notebooks,
benchmarks and tests. Pickles are only loaded from the registry's own store, never from user input.

Directory layout (`DirectoryStore`)::

    <root>/v0001/model.joblib   the fitted MitigationEffectModel (joblib pickle)
    <root>/v0001/meta.json      metrics, data window, refutation results, config, created_at
    <root>/ACTIVE               JSON {"version": "v0001", "promoted_at": ..., "forced": ...}
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import joblib

_VERSION_RE = re.compile(r"^v(\d{4,})$")


class RegistryError(RuntimeError):
    """Unknown version, or promotion refused by the refutation gate."""


def version_name(number: int) -> str:
    """The registry's version naming: 1 -> "v0001" (sorts by number, not by text, past 9999)."""
    return f"v{number:04d}"


def version_number(name: str) -> int:
    match = _VERSION_RE.match(name)
    if not match:
        raise RegistryError(f"not a model version name: {name!r}")
    return int(match.group(1))


@dataclass(frozen=True)
class StoredVersion:
    """What a store knows of one version, without its (possibly large) artifact."""

    version: str
    meta: dict[str, Any]
    active: bool = False
    location: str = ""


@runtime_checkable
class RegistryStore(Protocol):
    """Versioned blobs with metadata and one active pointer.

    Implementations must make `put` allocate a fresh version even when two trainers race, and
    `set_active` replace the pointer atomically, so readers see either the old or the new version.
    """

    def put(self, blob: bytes, *, meta: dict[str, Any]) -> StoredVersion:
        """Store a new version (never overwrites) and return it."""
        ...

    def get(self, version: str) -> bytes:
        """The artifact of a version; RegistryError if unknown."""
        ...

    def list(self) -> list[StoredVersion]:
        """Every complete version, oldest first, with its active flag."""
        ...

    def set_active(self, version: str, *, info: dict[str, Any]) -> None:
        """Point the active pointer at `version` (which exists), with promotion details."""
        ...

    def active_version(self) -> str | None:
        """The active version's name, cheaply (callers poll it to notice a promotion)."""
        ...


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


class DirectoryStore:
    """The registry on a plain directory (atomic renames, exclusive mkdir): one machine or a shared volume."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _names(self) -> list[str]:
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(names, key=version_number)

    def active_version(self) -> str | None:
        pointer = self.root / "ACTIVE"
        if not pointer.exists():
            return None
        return json.loads(pointer.read_text(encoding="utf-8")).get("version")

    def put(self, blob: bytes, *, meta: dict[str, Any]) -> StoredVersion:
        while True:
            existing = self._names()
            path = self.root / version_name(version_number(existing[-1]) + 1 if existing else 1)
            try:
                path.mkdir()          # exclusive: two concurrent trainers get distinct versions
                break
            except FileExistsError:
                continue
        (path / "model.joblib").write_bytes(blob)
        _atomic_write_json(path / "meta.json", meta)   # written last: marks the version complete
        return StoredVersion(path.name, meta, location=str(path))

    def get(self, version: str) -> bytes:
        path = self.root / version / "model.joblib"
        if not _VERSION_RE.match(version) or not (self.root / version / "meta.json").exists():
            raise RegistryError(f"unknown model version {version!r}")
        return path.read_bytes()

    def list(self) -> list[StoredVersion]:
        active = self.active_version()
        out = []
        for name in self._names():
            meta_path = self.root / name / "meta.json"
            if meta_path.exists():       # versions still being written are skipped
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                out.append(StoredVersion(name, meta, active=name == active, location=str(self.root / name)))
        return out

    def set_active(self, version: str, *, info: dict[str, Any]) -> None:
        _atomic_write_json(self.root / "ACTIVE", {"version": version, **info})


@dataclass(frozen=True)
class ModelVersion:
    version: str
    meta: dict[str, Any] = field(default_factory=dict)
    active: bool = False
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "location": self.location, "active": self.active, **self.meta}


def _from_stored(item: StoredVersion) -> ModelVersion:
    return ModelVersion(item.version, item.meta, active=item.active, location=item.location)


def dumps_model(model: Any) -> bytes:
    """The artifact bytes of a fitted model (compressed joblib pickle)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def loads_model(blob: bytes) -> Any:
    """Inverse of `dumps_model`; only ever called on bytes this registry's store wrote."""
    return joblib.load(io.BytesIO(blob))


class ModelRegistry:
    """list / get / save / load / promote / active over a `RegistryStore` (or a directory path)."""

    def __init__(self, store: RegistryStore | str | os.PathLike[str]) -> None:
        self.store: RegistryStore = DirectoryStore(store) if isinstance(store, str | os.PathLike) else store

    def save(self, model: Any, *, metrics: dict[str, Any], data_window: dict[str, Any],
             refutation: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> ModelVersion:
        """Store a new version (never overwrites); returns it, not yet active."""
        meta = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "metrics": metrics, "data_window": data_window, "refutation": refutation,
            **(extra or {}),
        }
        return _from_stored(self.store.put(dumps_model(model), meta=meta))

    def list(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        return [_from_stored(item) for item in self.store.list()]

    def get(self, version: str) -> ModelVersion:
        for item in self.list():
            if item.version == version:
                return item
        raise RegistryError(f"unknown model version {version!r}")

    def load(self, version: str) -> Any:
        """The fitted model object of a version."""
        return loads_model(self.store.get(version))

    def promote(self, version: str, *, force: bool = False) -> ModelVersion:
        """Make `version` the active one; refused if its refutation gate did not pass."""
        item = self.get(version)
        refutation = item.meta.get("refutation") or {}
        if not force and not refutation.get("passed", False):
            raise RegistryError(f"{version}: refutation gate not passed "
                                f"({refutation.get('summary', 'no refutation results')}); "
                                "use force=True to promote anyway")
        self.store.set_active(version, info={
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "forced": bool(force and not refutation.get("passed", False))})
        return ModelVersion(item.version, item.meta, active=True, location=item.location)

    def active_version(self) -> str | None:
        """Only the active version's name: one cheap read, for callers that cache loaded models."""
        return self.store.active_version()

    def active(self) -> ModelVersion | None:
        name = self.active_version()
        return self.get(name) if name else None

    def load_active(self) -> Any | None:
        item = self.active()
        return None if item is None else self.load(item.version)
