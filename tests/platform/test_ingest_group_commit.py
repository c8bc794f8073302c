"""Group commit of alert posts (services.alerts.group): one transaction for every waiting post, 202 after it.

Each test holds the database's writer thread on a first post (a gate in its single-post store) so
that the next posts queue up behind it, then lets it go: what they do next is one group.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import install_settings
from tests.platform.pgdb import fresh_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, platform_env, monkeypatch):
    from services.storage.migrate import upgrade

    if request.param == "sqlite":
        install_settings()
        yield platform_env["AIOPS_DATABASE_URL"]
        return
    with fresh_postgres("aiops_group") as url:
        monkeypatch.setenv("AIOPS_DATABASE_URL", url)
        install_settings()
        upgrade(url)
        yield url


class Gate:
    """Holds the writer in its first single-post store until ``open``; counts the groups it writes."""

    def __init__(self, monkeypatch) -> None:
        import services.alerts.views as views

        self.entered, self.release = threading.Event(), threading.Event()
        self.groups: list[int] = []  # sizes of the multi-post transactions
        self.singles = 0
        real_one, real_many = views._store, views._store_group

        def one(alerts, **kwargs):
            self.singles += 1
            if self.singles == 1:
                self.entered.set()
                assert self.release.wait(30)
            return real_one(alerts, **kwargs)

        def many(posts):
            self.groups.append(len(posts))
            return real_many(posts)

        monkeypatch.setattr(views, "_store", one)
        monkeypatch.setattr(views, "_store_group", many)


def _names(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT name FROM alerts"))]
    finally:
        engine.dispose()


async def _gated(app, gate: Gate, bodies: list[dict], *, on_reply=None) -> list[httpx.Response]:
    """Post a first alert (held by the gate), then ``bodies`` concurrently; open the gate once all are queued."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t",
                                 timeout=60) as client:
        async def post(body: dict) -> httpx.Response:
            response = await client.post("/api/v1/alerts", json=body)
            if on_reply is not None:
                on_reply(body, response)
            return response

        first = asyncio.create_task(post({"name": "first", "service": "gate"}))
        while not gate.entered.is_set():
            await asyncio.sleep(0.01)
        rest = [asyncio.create_task(post(b)) for b in bodies]
        await asyncio.sleep(0.3)  # every post read, parsed and queued behind the held one
        gate.release.set()
        return [await first, *await asyncio.gather(*rest)]


def _app():
    from services.api.app import create_app
    from services.worker.embedded import stop_embedded_worker

    stop_embedded_worker()  # an earlier test's worker would diagnose the incidents these posts open
    return create_app(start_workers=False)


def test_concurrent_posts_are_one_transaction_and_each_202_follows_the_commit(db_url, monkeypatch):
    from sqlalchemy.orm import Session

    gate = Gate(monkeypatch)
    real_commit = Session.commit

    def slow_commit(self):  # a 202 sent before the commit would find its alert missing below
        time.sleep(0.2)
        return real_commit(self)

    monkeypatch.setattr(Session, "commit", slow_commit)
    missing: list[str] = []

    def check(body: dict, response: httpx.Response) -> None:
        if response.status_code == 202 and body["name"] not in _names(db_url):
            missing.append(body["name"])

    bodies = [{"name": f"a{i}", "service": f"s{i}"} for i in range(20)]
    app = _app()
    with TestClient(app):
        replies = asyncio.run(_gated(app, gate, bodies, on_reply=check))
    assert [r.status_code for r in replies] == [202] * 21, [r.text for r in replies]
    assert gate.groups == [20]  # the 20 waiting posts in one transaction
    assert missing == []
    stored = sorted(_names(db_url))
    assert stored == sorted(["first", *(b["name"] for b in bodies)])
    news = [r.json()["new"] for r in replies[1:]]
    assert all(len(n) == 1 for n in news) and len({n[0] for n in news}) == 20  # each post its own alert
    assert all(r.json()["accepted"] == 1 and len(r.json()["incidents_opened"]) == 1 for r in replies[1:])
    _audit_chain_whole(db_url, entries=21)


def _audit_chain_whole(url: str, *, entries: int) -> None:
    """One audit entry per post (a group's chained by ``record_many``), the chain valid."""
    from services.audit.service import verify_chain
    from services.storage.base import session_scope

    with session_scope(url) as session:
        check = verify_chain(session)
        actions = session.execute(text("SELECT action FROM audit_log")).scalars().all()
    assert check.ok, check.to_dict()
    assert actions.count("alerts.ingest") == entries


def _refuse_name(url: str, name: str) -> None:
    """A database-side refusal of one alert (as a bad value would be), in a trigger."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if url.startswith("sqlite"):
                conn.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON alerts WHEN NEW.name = '{name}' "
                                  "BEGIN SELECT RAISE(ABORT, 'value out of range'); END"))
            else:
                conn.execute(text(f"CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.name = '{name}' "
                                  "THEN RAISE EXCEPTION 'value out of range' USING ERRCODE = '22003'; END IF; "
                                  "RETURN NEW; END $$ LANGUAGE plpgsql"))
                conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION refuse()"))
    finally:
        engine.dispose()


def test_a_bad_post_in_a_group_fails_alone(db_url, monkeypatch):
    _refuse_name(db_url, "bad")
    gate = Gate(monkeypatch)
    bodies = [{"name": f"ok{i}", "service": f"s{i}"} for i in range(8)]
    bodies.insert(4, {"name": "bad", "service": "sbad"})
    app = _app()
    with TestClient(app):
        replies = asyncio.run(_gated(app, gate, bodies))
    codes = {b["name"]: r.status_code for b, r in zip(bodies, replies[1:], strict=True)}
    assert gate.groups == [9]  # tried together, then one by one
    assert codes.pop("bad") in (422, 500)
    assert set(codes.values()) == {202}
    assert sorted(_names(db_url)) == sorted(["first", *codes])
    _audit_chain_whole(db_url, entries=9)  # the bad post's rolled back with it


def test_posts_sharing_a_fingerprint_or_group_are_not_grouped(db_url, monkeypatch):
    gate = Gate(monkeypatch)
    same = {"name": "disk-full", "service": "db"}
    bodies = [same, dict(same), {"name": "other-alert", "service": "db"}, {"name": "x", "service": "elsewhere"}]
    app = _app()
    with TestClient(app):
        replies = asyncio.run(_gated(app, gate, bodies))
    assert [r.status_code for r in replies] == [202] * 5
    # one group: the first disk-full and "elsewhere"; the repeat and db's other alert (same group key) each
    # wait for the next transaction, one after the other
    assert gate.groups == [2] and gate.singles == 3
    first, repeat, other = (r.json() for r in replies[1:4])
    assert len(first["new"]) == 1 and first["incidents_opened"]
    assert repeat["new"] == [] and repeat["duplicates"] == first["new"]  # seen as a repeat, as posted alone
    assert other["incidents_joined"] == first["incidents_opened"]  # one incident for the group
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count FROM alerts WHERE name = 'disk-full'")).scalar() == 2
            assert conn.execute(text("SELECT count(*) FROM incidents WHERE group_key LIKE '%service:db'")).scalar() == 1
    finally:
        engine.dispose()


def test_a_failure_after_the_commit_does_not_store_the_group_again(db_url, monkeypatch):
    """Waking the dispatcher comes after the group's commit: if it raises, the posts are still answered
    from that one commit, not stored a second time one by one (each alert would count as its own repeat)."""
    import services.alerts.views as views

    gate = Gate(monkeypatch)

    def broken_wake(*args, **kwargs):
        raise RuntimeError("dispatcher gone")

    monkeypatch.setattr(views.dispatch, "wake", broken_wake)
    bodies = [{"name": f"w{i}", "service": f"s{i}"} for i in range(5)]
    app = _app()
    with TestClient(app):
        replies = asyncio.run(_gated(app, gate, bodies))
    assert [r.status_code for r in replies] == [202] * 6
    assert gate.groups == [5] and gate.singles == 1  # the group once, no post stored again alone
    assert all(len(r.json()["new"]) == 1 and r.json()["duplicates"] == [] for r in replies)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert tuple(conn.execute(text("SELECT count(*), sum(count) FROM alerts")).one()) == (6, 6)
    finally:
        engine.dispose()


def test_the_group_clash_rule_keeps_order_per_key():
    from services.alerts.group import GroupWriter, Post

    release, seen = threading.Event(), []

    def one(post):
        release.wait(10)
        seen.append([post.user])
        return {}

    def many(posts):
        seen.append([p.user for p in posts])
        return [{} for _ in posts]

    writer = GroupWriter("test", one=one, many=many)
    done = threading.Semaphore(0)

    def post(user: str, fps: list[str], keys: set[str]) -> Post:
        return Post([object()] * len(fps), user, None, lambda ok, value: done.release(), fps, keys)

    writer.submit(post("held", ["f0"], {"k0"}))
    time.sleep(0.2)
    for p in (post("a", ["f1"], {"k1"}), post("b", ["f1"], {"k2"}), post("c", ["f2"], {"k2"}),
              post("d", ["f3"], {"k1"}), post("e", ["f4"], {"k4"})):
        writer.submit(p)
    release.set()
    for _ in range(6):
        assert done.acquire(timeout=10)
    # b repeats a's fingerprint; c shares b's key and d a's: each waits behind the one it clashes with
    assert seen == [["held"], ["a", "e"], ["b", "d"], ["c"]]


def test_a_writer_failure_loses_no_acknowledged_alert_and_the_writer_goes_on(db_url, monkeypatch):
    import services.alerts.group as group
    import services.alerts.views as views

    gate = Gate(monkeypatch)
    broken = [True]
    real_write = group.GroupWriter._write

    def crash_group(posts):  # the group's store raises: each post is stored alone
        raise RuntimeError("writer bug")

    def crash_once(self, posts):  # a failure outside any post's store: the posts fail, the thread lives
        if broken[0] and len(posts) > 1:
            broken[0] = False
            raise RuntimeError("writer crashed")
        return real_write(self, posts)

    app = _app()
    with TestClient(app):
        monkeypatch.setattr(views, "_store_group", crash_group)
        replies = asyncio.run(_gated(app, gate, [{"name": f"r{i}", "service": f"s{i}"} for i in range(6)]))
        assert [r.status_code for r in replies] == [202] * 7
        monkeypatch.setattr(group.GroupWriter, "_write", crash_once)
        gate.entered.clear()
        gate.release.clear()
        gate.singles = 0
        replies += asyncio.run(_gated(app, gate, [{"name": f"c{i}", "service": f"t{i}"} for i in range(6)]))
        later = TestClient(app, raise_server_exceptions=False).post("/api/v1/alerts", json={"name": "later"})
    assert later.status_code == 202  # the writer thread survived its crash
    acknowledged = {"later"} | {name for r, name in zip(
        replies, ["first", *(f"r{i}" for i in range(6)), "first", *(f"c{i}" for i in range(6))], strict=True)
        if r.status_code == 202}
    assert {r.status_code for r in replies[8:]} == {500}  # the crashed group: an error, never a 202
    assert acknowledged <= set(_names(db_url))
