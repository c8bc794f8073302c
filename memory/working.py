"""Working memory: the per-incident scratchpad with a token budget.

WHY: tools return raw text (logs, describe calls, metric dumps) far larger than any agent prompt.
Probes and executors append raw context; the compressor folds only what is new into a persistent
compressor state and writes the compressed context; the observer and diagnoser read only that.
Everything expires with the incident. Two stores: Redis (distributed: workers on several hosts
share it, keys carry a TTL) and in-process (embedded mode and tests without a server).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, Protocol

from memory.compressor import ContextCompressor
from memory.llm import Complete
from memory.metrics import normalise_series


class Role(StrEnum):
    PROBE = "probe"
    EXECUTOR = "executor"
    COMPRESSOR = "compressor"
    OBSERVER = "observer"
    DIAGNOSER = "diagnoser"


# Who may do what (AOI access rules). The actor reads the compressed context through the diagnoser's
# output in the incident graph; it is not granted direct access here.
PERMISSIONS: dict[str, set[Role]] = {
    "write_raw": {Role.PROBE, Role.EXECUTOR},
    "compress": {Role.COMPRESSOR},
    "read_compressed": {Role.OBSERVER, Role.DIAGNOSER, Role.COMPRESSOR},
    "expire": {Role.OBSERVER, Role.COMPRESSOR},
}


class Store(Protocol):
    """Minimal storage the working memory needs (lists, values, TTL, a per-incident lock)."""

    def append(self, key: str, item: str) -> None: ...
    def take(self, key: str) -> list[str]: ...
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...
    def delete(self, *keys: str) -> None: ...
    def touch(self, *keys: str) -> None: ...
    def lock(self, key: str) -> Any: ...


class InProcessStore:
    """Dict-backed store with TTL, for embedded mode. Thread-safe."""

    def __init__(self, *, ttl_seconds: float = 24 * 3600) -> None:
        self.ttl_seconds = ttl_seconds
        self._data: dict[str, tuple[float, Any]] = {}
        self._mutex = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}

    def _live(self, key: str) -> Any:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._data[key]
            return None
        return item[1]

    def _put(self, key: str, value: Any) -> None:
        self._data[key] = (time.monotonic() + self.ttl_seconds, value)

    def append(self, key: str, item: str) -> None:
        with self._mutex:
            items = self._live(key) or []
            items.append(item)
            self._put(key, items)

    def take(self, key: str) -> list[str]:
        with self._mutex:
            items = self._live(key) or []
            self._data.pop(key, None)
            return list(items)

    def get(self, key: str) -> str | None:
        with self._mutex:
            return self._live(key)

    def set(self, key: str, value: str) -> None:
        with self._mutex:
            self._put(key, value)

    def delete(self, *keys: str) -> None:
        with self._mutex:
            for k in keys:
                self._data.pop(k, None)

    def touch(self, *keys: str) -> None:
        with self._mutex:
            for k in keys:
                value = self._live(k)
                if value is not None:
                    self._put(k, value)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        with self._mutex:
            lk = self._locks.setdefault(key, threading.Lock())
        with lk:
            yield


class RedisStore:
    """Redis-backed store; every key gets ``ttl_seconds`` (refreshed on write)."""

    def __init__(self, url: str, *, ttl_seconds: int = 24 * 3600, prefix: str = "aiops:wm:") -> None:
        import redis

        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.ttl_seconds = int(ttl_seconds)
        self.prefix = prefix

    def _k(self, key: str) -> str:
        return self.prefix + key

    def append(self, key: str, item: str) -> None:
        pipe = self.redis.pipeline()
        pipe.rpush(self._k(key), item)
        pipe.expire(self._k(key), self.ttl_seconds)
        pipe.execute()

    def take(self, key: str) -> list[str]:
        # LRANGE + LTRIM in one MULTI: items pushed concurrently after the read stay for next time.
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrange(self._k(key), 0, -1)
        pipe.ltrim(self._k(key), 1, 0)
        items, _ = pipe.execute()
        return list(items)

    def get(self, key: str) -> str | None:
        value = self.redis.get(self._k(key))  # the client decodes responses to str
        return value if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        self.redis.set(self._k(key), value, ex=self.ttl_seconds)

    def delete(self, *keys: str) -> None:
        if keys:
            self.redis.delete(*[self._k(k) for k in keys])

    def touch(self, *keys: str) -> None:
        pipe = self.redis.pipeline()
        for k in keys:
            pipe.expire(self._k(k), self.ttl_seconds)
        pipe.execute()

    def lock(self, key: str) -> Any:
        return self.redis.lock(self._k(key) + ":lock", timeout=120, blocking_timeout=60)


class WorkingMemory:
    """Per-incident scratchpad: raw in (probes/executors), compressed out (observer/diagnoser)."""

    def __init__(self, store: Store, *, budget_tokens: int = 2000, llm: Complete | None = None) -> None:
        self.store = store
        self.budget_tokens = budget_tokens
        self.llm = llm

    @staticmethod
    def _keys(incident_id: str) -> tuple[str, str, str]:
        base = f"{incident_id}:"
        return base + "raw", base + "state", base + "compressed"

    def write_raw(self, incident_id: str, *, source: str, text: str) -> None:
        """Append a tool's raw output (log text, one line per log line)."""
        raw, state, compressed = self._keys(incident_id)
        self.store.append(raw, json.dumps({"kind": "text", "source": source, "text": text, "at": time.time()}))
        self.store.touch(state, compressed)

    def write_metric(self, incident_id: str, *, source: str, name: str, series: list[Any]) -> None:
        """Append metric points (values or (time, value) pairs) for the compressor to screen."""
        raw, state, compressed = self._keys(incident_id)
        points = [list(p) for p in normalise_series(series)]
        item = {"kind": "metric", "source": source, "name": name, "points": points, "at": time.time()}
        self.store.append(raw, json.dumps(item))
        self.store.touch(state, compressed)

    def compress(self, incident_id: str) -> str:
        """Fold raw items written since the last call into the incident's compressor state and
        write the compressed context. Raw items are consumed: nothing is re-read."""
        raw, state_key, compressed_key = self._keys(incident_id)
        with self.store.lock(incident_id):
            compressor = ContextCompressor(budget_tokens=self.budget_tokens, llm=self.llm)
            state = self.store.get(state_key)
            if state:
                compressor.load_state(json.loads(state))
            for item in map(json.loads, self.store.take(raw)):
                if item["kind"] == "metric":
                    compressor.fold_metrics(item["name"], [tuple(p) for p in item["points"]])
                else:
                    compressor.fold(item["text"].splitlines())
            text = compressor.render()
            self.store.set(state_key, json.dumps(compressor.dump_state()))
            self.store.set(compressed_key, text)
            return text

    def read_compressed(self, incident_id: str) -> str:
        """The last compressed context ('' before the first ``compress``)."""
        return self.store.get(self._keys(incident_id)[2]) or ""

    def expire(self, incident_id: str) -> None:
        """Forget the incident's working memory (called when the incident closes)."""
        self.store.delete(*self._keys(incident_id))

    def as_role(self, role: Role | str) -> RoleView:
        """A view that enforces the access rules for one agent role."""
        return RoleView(self, Role(role))


class RoleView:
    """WorkingMemory restricted to what ``role`` may do; anything else raises PermissionError."""

    def __init__(self, memory: WorkingMemory, role: Role) -> None:
        self._memory = memory
        self.role = role

    def _check(self, op: str) -> None:
        if self.role not in PERMISSIONS[op]:
            raise PermissionError(f"role {self.role.value!r} may not {op}")

    def write_raw(self, incident_id: str, *, source: str, text: str) -> None:
        self._check("write_raw")
        self._memory.write_raw(incident_id, source=source, text=text)

    def write_metric(self, incident_id: str, *, source: str, name: str, series: list[Any]) -> None:
        self._check("write_raw")
        self._memory.write_metric(incident_id, source=source, name=name, series=series)

    def compress(self, incident_id: str) -> str:
        self._check("compress")
        return self._memory.compress(incident_id)

    def read_compressed(self, incident_id: str) -> str:
        self._check("read_compressed")
        return self._memory.read_compressed(incident_id)

    def expire(self, incident_id: str) -> None:
        self._check("expire")
        self._memory.expire(incident_id)
