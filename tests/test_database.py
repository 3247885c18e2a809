"""The embedded SQLite stays correct under concurrent use; times are UTC-aware everywhere."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from portal.accounts.models import Role
from portal.db import utcnow
from portal.extensions import db
from portal.system.models import SchedulerHeartbeat
from tests.conftest import login


@pytest.fixture
def sqlite(app):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite configuration")
    return app


@pytest.fixture
def counter(app):
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t_counter (id INTEGER PRIMARY KEY, n INT)"))
        conn.execute(text("DELETE FROM t_counter"))
        conn.execute(text("INSERT INTO t_counter (id, n) VALUES (1, 0)"))
    yield
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("DROP TABLE t_counter"))


def _increment(times: int) -> None:
    """Read-then-write transactions, the pattern that fails with a deferred BEGIN."""
    for _ in range(times):
        n = db.session.execute(text("SELECT n FROM t_counter WHERE id = 1")).scalar()
        db.session.execute(text("UPDATE t_counter SET n = :n WHERE id = 1"), {"n": n + 1})
        db.session.commit()


def _count() -> int:
    return db.session.execute(text("SELECT n FROM t_counter WHERE id = 1")).scalar()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_and_foreign_keys(sqlite):
    with sqlite.app_context():
        pragma = lambda name: db.session.execute(text(f"PRAGMA {name}")).scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("busy_timeout") >= 5000
        assert pragma("foreign_keys") == 1


def test_concurrent_read_then_write_transactions_all_succeed(sqlite, counter):
    errors = []

    def worker():
        try:
            with sqlite.app_context():
                _increment(25)
                db.session.remove()
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite.app_context():
        assert _count() == 8 * 25  # no lost update, no "database is locked"


CHILD = """
import sys
from portal import create_app
from portal.extensions import db
from sqlalchemy import text
app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "x"})
with app.app_context():
    for _ in range(int(sys.argv[2])):
        n = db.session.execute(text("SELECT n FROM t_counter WHERE id = 1")).scalar()
        db.session.execute(text("UPDATE t_counter SET n = :n WHERE id = 1"), {"n": n + 1})
        db.session.commit()
"""


def test_two_processes_writing_the_same_file_lose_nothing(sqlite, counter):
    url = sqlite.config["SQLALCHEMY_DATABASE_URI"]
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, url, "60"], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    with sqlite.app_context():
        assert _count() == 120


def test_read_only_requests_do_not_take_the_write_lock(sqlite, client, make_user):
    """A GET begins deferred: it reads while another connection holds the write lock."""
    make_user({Role.AGENT}, agent_no="agent", name="吴军")
    login(client, "agent")
    with sqlite.app_context():
        writer = db.engine.connect()
        writer.begin()  # outside a request: BEGIN IMMEDIATE, the write lock is held
        try:
            done = {}
            thread = threading.Thread(target=lambda: done.setdefault("r", client.get("/")))
            thread.start()
            thread.join(timeout=5)
            assert not thread.is_alive(), "a read-only request waited for the write lock"
            assert done["r"].status_code == 200
            assert "吴军" in done["r"].get_data(as_text=True)  # it did read the database
        finally:
            writer.rollback()
            writer.close()


def test_utc_datetimes_round_trip_aware_and_naive_ones_are_refused(ctx):
    beijing = timezone(timedelta(hours=8))
    local = datetime(2026, 11, 3, 9, 15, 2, tzinfo=beijing)
    db.session.add(SchedulerHeartbeat(worker="w", started_at=local, beat_at=utcnow()))
    db.session.commit()
    db.session.expire_all()
    row = db.session.get(SchedulerHeartbeat, "w")
    assert row.started_at == local
    assert row.started_at.tzinfo is not None and row.started_at.utcoffset() == timedelta(0)
    assert row.started_at.hour == 1  # 09:15 in Beijing is 01:15 UTC
    db.session.add(
        SchedulerHeartbeat(worker="n", started_at=datetime(2026, 1, 1), beat_at=datetime.now(UTC))
    )
    with pytest.raises(Exception, match="naive datetime"):
        db.session.commit()
    db.session.rollback()


def test_an_imports_larger_page_cache_ends_with_the_import(sqlite, tmp_path, make_user):
    """An import takes 64 MB of page cache for its connection; the next user of that pooled
    connection has the usual 32 MB again."""
    from flask_babel import force_locale

    from portal.db import SQLITE_CACHE_KB
    from portal.metrics.ingest import IMPORT_CACHE_KB, run_import

    make_user({Role.AGENT}, agent_no="A")
    path = tmp_path / "i.csv"
    path.write_text(
        "interaction_id,queue,agent_no,offered_at,ended_at\n"
        "g1,Q1,A,2026-11-03T09:00:00+08:00,2026-11-03T09:01:00+08:00\n",
        encoding="utf-8",
    )
    with sqlite.app_context():
        pragma = lambda name: db.session.execute(text(f"PRAGMA {name}")).scalar()  # noqa: E731
        raw = lambda: db.session.connection().connection.driver_connection  # noqa: E731
        db.engine.dispose()  # one pooled connection: the import's is the next one's
        with path.open("rb") as stream, force_locale("en"):
            record = run_import("interactions", stream, filename="i.csv", door="cli")
            assert pragma("cache_size") == -IMPORT_CACHE_KB
            imported = raw()
        assert record.status == "committed"
        db.session.commit()
        db.session.remove()
        assert raw() is imported
        assert pragma("cache_size") == -SQLITE_CACHE_KB


def test_a_too_old_sqlite_is_named_at_start(sqlite, monkeypatch):
    from sqlalchemy import create_engine

    from portal import db as portal_db

    monkeypatch.setattr(portal_db.sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(portal_db.sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(RuntimeError, match=r"SQLite 3\.31\.1 is too old .* 3\.39\.0 or later"):
        portal_db.configure_sqlite(create_engine("sqlite://"))
