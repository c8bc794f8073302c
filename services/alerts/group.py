"""Group commit for alert ingest: one writer thread per database stores every waiting post in ONE transaction.

Why: a post's own work is a handful of statements, but its transaction (the commit's fsync on
SQLite and PostgreSQL, the audit chain's lock, a pooled connection checkout, a threadpool hop)
cost more than the statements. Posts that arrive while a group is being written wait in the queue
and go together in the next one, so the cost is paid once per group, not once per post.

Rules:
- durable before 202: a post's result (its reply) is handed back only after its group committed;
- a failing group is retried post by post, each in its own transaction, so one bad post fails
  alone (with its own error) and the others are stored;
- posts that share an alert fingerprint or a group key never go in the same group (the later one
  waits for the next): each stored, repeated or resolved alert and each incident belongs to one
  post, and the database rules (one firing row per fingerprint, one open incident per group key)
  see the same statements as with posts stored one at a time;
- the thread never dies on an error: anything raised outside a post's own store fails the posts
  it was writing (they get an error, not a 202), and the queue goes on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.gc_freeze import freeze_startup_objects

log = logging.getLogger(__name__)

MAX_POSTS = 256  # posts per transaction
MAX_ALERTS = 2000  # alerts per transaction (a group stops growing at either)
PG_THREADS = 1  # writer threads per PostgreSQL database (see ``writer_for``)


@dataclass(eq=False)
class Post:
    """One ingest post waiting for the writer; ``settle(ok, value)`` is called once, from the writer thread."""

    alerts: list[Any]
    user: str
    settings: Any
    settle: Callable[[bool, Any], None]
    fingerprints: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)


StoreOne = Callable[[Post], Any]
StoreMany = Callable[[list[Post]], list[Any]]


class GroupWriter:
    """The writer thread of one database; ``one`` stores a post alone, ``many`` a group in one transaction."""

    def __init__(self, name: str, *, one: StoreOne, many: StoreMany, threads: int = 1) -> None:
        self.one, self.many = one, many
        self._pending: deque[Post] = deque()
        self._cond = threading.Condition()
        self._busy_fps: set[str] = set()  # the fingerprints and group keys of the groups being written
        self._busy_keys: set[str] = set()
        self.groups = 0  # transactions written (for tests and the curious)
        self._threads = [threading.Thread(target=self._run, name=f"ingest-writer-{name}-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, post: Post) -> None:
        with self._cond:
            self._pending.append(post)
            self._cond.notify()

    def _take(self) -> list[Post]:
        """The next group, in arrival order: posts that clash with an earlier one (queued or being written
        by another thread) stay queued, in order."""
        with self._cond:
            while True:
                group = self._next_group() if self._pending else []
                if group:
                    return group
                self._cond.wait()

    def _next_group(self) -> list[Post]:
        group: list[Post] = []
        fps, keys = set(self._busy_fps), set(self._busy_keys)
        alerts = 0
        left: deque[Post] = deque()
        blocked = False
        while self._pending:
            post = self._pending.popleft()
            full = len(group) >= MAX_POSTS or (bool(group) and alerts + len(post.alerts) > MAX_ALERTS)
            if blocked or full or not fps.isdisjoint(post.fingerprints) or not keys.isdisjoint(post.keys):
                left.append(post)
                # a clashing post blocks its own keys only: later posts with other keys still go
                fps.update(post.fingerprints)
                keys.update(post.keys)
                blocked = blocked or full
                continue
            group.append(post)
            fps.update(post.fingerprints)
            keys.update(post.keys)
            alerts += len(post.alerts)
        self._pending = left
        for post in group:
            self._busy_fps.update(post.fingerprints)
            self._busy_keys.update(post.keys)
        return group

    def _done(self, group: list[Post]) -> None:
        with self._cond:
            for post in group:
                self._busy_fps.difference_update(post.fingerprints)
                self._busy_keys.difference_update(post.keys)
            self._cond.notify_all()  # posts held back by this group may go now

    def _run(self) -> None:
        first = True
        while True:
            group = self._take()
            try:
                self._write(group)
            except BaseException as exc:  # noqa: BLE001 - never leave a post waiting, never stop the queue
                log.exception("ingest writer failed a group of %d posts", len(group))
                for post in group:
                    _settle(post, False, exc)
            finally:
                self._done(group)
            if first:  # the store's lazily imported modules (the broker client...) join the start-up objects
                first = False
                freeze_startup_objects(again=True)

    def _write(self, group: list[Post]) -> None:
        self.groups += 1
        if len(group) > 1:
            try:
                replies = self.many(group)
            except Exception:  # noqa: BLE001 - rolled back; each post alone says whose it was
                log.debug("group of %d posts failed; storing them one by one", len(group), exc_info=True)
            else:
                for post, reply in zip(group, replies, strict=True):
                    _settle(post, True, reply)
                return
        for post in group:
            try:
                reply = self.one(post)
            except Exception as exc:  # noqa: BLE001 - this post's own error, raised in its request
                _settle(post, False, exc)
            else:
                _settle(post, True, reply)


def _settle(post: Post, ok: bool, value: Any) -> None:
    try:
        post.settle(ok, value)
    except Exception:  # noqa: BLE001 - the request is gone (its loop closed): its data is committed or not, as said
        log.debug("could not hand a result back to its request", exc_info=True)


_writers: dict[str, GroupWriter] = {}
_writers_lock = threading.Lock()


def writer_for(url: str, *, one: StoreOne, many: StoreMany) -> GroupWriter:
    """This process's writer for the database at ``url`` (started on first use).

    PostgreSQL gets ``PG_THREADS`` threads: while one group waits for the server (its statements, its
    commit) the next is built and sent; groups being written never share a fingerprint or group key, and
    their transactions meet only at the audit chain's lock, taken last. SQLite has one writer at a time
    anyway (``write_turn``): one thread.
    """
    writer = _writers.get(url)
    if writer is None:
        with _writers_lock:
            writer = _writers.get(url)
            if writer is None:
                writer = _writers[url] = GroupWriter(str(len(_writers) + 1), one=one, many=many,
                                                     threads=1 if url.startswith("sqlite") else PG_THREADS)
    return writer
