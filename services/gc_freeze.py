"""Start-up objects out of the garbage collector's sight, once per process (the API and its ingest writer)."""

from __future__ import annotations

_frozen: set[str] = set()


def freeze_startup_objects(*, again: bool = False) -> None:
    """Move the objects alive now (the imported libraries: ~300k) out of the garbage collector's sight, once
    per process.

    WHY: a full collection walks every tracked object with all threads stopped: ~200 ms here, often
    enough under ingest load to be the /healthz p99 and the posts' p99. Start-up objects live as long as
    the process anyway. Once (``again``: a second time, after the first ingest's lazy imports): a test
    process builds many apps, and what is frozen is never collected.
    """
    step = "again" if again else "start"
    if step not in _frozen:
        import gc

        _frozen.add(step)
        gc.collect()
        gc.freeze()
