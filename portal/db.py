"""Declarative base, naming convention, UTC time type and SQLite connection set-up."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

from flask import has_request_context, request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_CACHE_KB = 32 * 1024


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time, UTC-aware."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no offset, so values are normalised to UTC before storing and marked UTC on
    the way out; PostgreSQL stores them as timestamptz.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def sqlite_utc_text(value: datetime | None) -> str | None:
    """What UTCDateTime stores in SQLite for an aware datetime, for bulk writes through the
    driver (the same text SQLAlchemy writes: 2026-11-03 01:15:02.000000)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _wants_write_lock() -> bool:
    """Read-only web requests begin deferred; everything else takes the write lock up front."""
    return not (has_request_context() and request.method in SAFE_METHODS)


# Days written through the driver (bulk imports) are stored as SQLAlchemy stores them: ISO text.
sqlite3.register_adapter(date, date.isoformat)


IMPORT_CACHE = "import_cache"  # connection info: set while an import's larger cache is in use


SQLITE_AT_LEAST = (3, 39, 0)  # UPDATE … FROM and IS NOT DISTINCT FROM (daily sums)


def configure_sqlite(engine: Engine) -> None:
    """WAL, busy timeout, foreign keys, and BEGIN IMMEDIATE for transactions that may write.

    With WAL and a busy timeout alone, two read-then-write transactions still fail with
    "database is locked": the second cannot upgrade its read snapshot. Taking the write lock
    at BEGIN makes writers queue (up to the busy timeout) instead of failing.
    """
    if sqlite3.sqlite_version_info < SQLITE_AT_LEAST:
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} is too old for the portal, which needs "
            f"{'.'.join(map(str, SQLITE_AT_LEAST))} or later: upgrade it, or use PostgreSQL "
            "(DATABASE_URL)."
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        # 32 MB of page cache instead of 2 MB: with the default, each index insert into a
        # table of millions of rows likely misses (an import of 2 million rows ran a fifth
        # slower). Pages are only taken as they are used.
        cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
        cur.close()

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn, record):
        # An import's larger cache (portal/metrics/ingest.py) ends with its use of the
        # connection: the next user of the pooled connection gets the usual one.
        if record.info.pop(IMPORT_CACHE, False):
            dbapi_conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _wants_write_lock() else "BEGIN")
