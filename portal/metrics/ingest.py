"""Importing interactions, surveys, supplied metric values and QA evaluations (metrics.md §1–3).

One pipeline behind every door (upload, CLI, API, inbox): rows are read as a stream, checked one
by one, written in batches inside one transaction, and either all committed or — when any row is
rejected and the caller did not ask for the valid rows only — all rolled back. Re-importing the
same source ids updates those records, never duplicates them. Every run leaves an ImportRecord.

Writing goes one of two ways. The first attempt assumes every row is new (the usual case: the
next day's or month's file) and inserts each batch through the driver without looking anything
up. When the database refuses a batch because a source id is already stored — a re-sent file,
or an id twice in one file — the attempt is rolled back to its savepoint and the file is read
again carefully: each batch's stored rows are looked up, compared, updated or reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import io
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Text,
    any_,
    bindparam,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy import Table as SqlTable
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from portal.accounts.models import User
from portal.db import IMPORT_CACHE, UTCDateTime, sqlite_utc_text, utcnow
from portal.extensions import db
from portal.metrics import messages, stats
from portal.metrics.models import ImportRecord, Interaction, QaEvaluation, SuppliedValue, Survey
from portal.metrics.parsing import (
    BLOCK,
    INTERACTION_COLUMNS,
    LAYOUTS,
    Batch,
    Context,
    HashingReader,
    Layout,
    Table,
    check_header,
    interaction_shown,
    json_table,
    open_table,
    parse_batches,
)
from portal.textfiles import FileProblem

__all__ = [
    "INTERACTION_COLUMNS",
    "KINDS",
    "Preview",
    "json_table",
    "rejection_lines",
    "report_lines",
    "run_import",
]

BATCH = 2000  # rows looked up and compared at a time
FAST_BATCH = 10_000  # rows inserted at a time while every row is new
# PostgreSQL: rows handed to the open COPY at a time. Small enough for the socket's buffer,
# so the server stores one batch while this process parses the next instead of waiting.
COPY_BATCH = 1000
# Rejections kept with an import (the first, in row order; all are counted). As many as the
# API takes rows a request, so an API refusal lists every row; pages show them 100 at a time.
KEEP_REJECTIONS = 10_000
IMPORT_CACHE_KB = 64 * 1024  # SQLite's page cache for an importing connection
_FIRST, _SECOND = itemgetter(0), itemgetter(1)


class _StoredAlready(Exception):
    """A fast attempt met a source id that is already stored: read the file again carefully."""


def _refusal(exc: Exception, *, fast: bool = True) -> Exception:
    """What the database's refusal of an attempt's rows means. Fast: a source id stored
    already (or twice in the file). Careful (each id was looked up): another import stored
    the same ids meanwhile. Either way, otherwise: a row the checks let through and a
    constraint refused."""
    exc = getattr(exc, "orig", None) or exc  # the driver's error inside SQLAlchemy's
    unique = getattr(exc, "sqlstate", None) == "23505" or getattr(
        exc, "sqlite_errorname", None
    ) in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
    if unique and fast:
        return _StoredAlready()
    if unique:
        return FileProblem(
            _l(
                "Another import stored some of these rows while this one ran. Nothing was "
                "imported from this file: import it again."
            )
        )
    return FileProblem(
        _l(
            "The database refused the file's rows (%(error)s). Nothing was imported; please "
            "send the file to the portal's administrators.",
            error=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )
    )


# --- the four kinds -------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    model: type
    layout: Layout  # the file's columns and how a row is checked (portal/metrics/parsing.py)
    columns: tuple[str, ...]  # the stored columns in the order the layout's parser returns them
    compare: tuple[str, ...]  # the stored fields an update may change
    key: Callable[[tuple], str] = itemgetter(0)  # what makes a row the same record
    refs: bool = False  # column 1 names an interaction by its source id
    shown: Callable[[dict], dict] | None = None  # a parsed row as the preview shows it
    # The preview's columns: the file's, in the order of metrics.md, each with the field it
    # shows (as stored; times rather than their seconds).
    sample: tuple[tuple[str, str], ...] = ()


INTERACTION_STORED = (
    "source_id",
    "channel",
    "queue",
    "agent_id",
    "offered_day",
    "offered_s",
    "ended_s",
    "wait_s",
    "talk_s",
    "wrap_s",
    "hold_s",
    "customer_key",
    "transferred",
    "resolved",
)

KINDS = {
    "interactions": Kind(
        "interactions",
        Interaction,
        LAYOUTS["interactions"],
        columns=INTERACTION_STORED,
        compare=tuple(c for c in INTERACTION_STORED if c not in ("source_id", "offered_day")),
        shown=interaction_shown,
        sample=(
            ("interaction_id", "source_id"),
            ("channel", "channel"),
            ("queue", "queue"),
            ("agent_no", "agent_id"),
            ("offered_at", "offered_at"),
            ("answered_at", "answered_at"),
            ("ended_at", "ended_at"),
            ("wrap_seconds", "wrap_s"),
            ("hold_seconds", "hold_s"),
            ("customer_key", "customer_key"),
            ("transferred", "transferred"),
            ("resolved", "resolved"),
        ),
    ),
    "surveys": Kind(
        "surveys",
        Survey,
        LAYOUTS["surveys"],
        columns=("source_id", "interaction_id", "csat", "nps", "submitted_at", "comment"),
        compare=("interaction_id", "csat", "nps", "submitted_at", "comment"),
        refs=True,
        sample=(
            ("survey_id", "source_id"),
            ("interaction_id", "interaction_id"),
            ("csat", "csat"),
            ("nps", "nps"),
            ("submitted_at", "submitted_at"),
            ("comment", "comment"),
        ),
    ),
    "qa": Kind(
        "qa",
        QaEvaluation,
        LAYOUTS["qa"],
        columns=(
            "source_id",
            "interaction_id",
            "evaluator_id",
            "score",
            "original_score",
            "evaluated_at",
            "released_at",
            "red_line",
        ),
        compare=(
            "interaction_id",
            "evaluator_id",
            "score",
            "original_score",
            "evaluated_at",
            "red_line",
        ),
        refs=True,
        sample=(
            ("evaluation_id", "source_id"),
            ("interaction_id", "interaction_id"),
            ("evaluator_no", "evaluator_id"),
            ("score", "score"),
            ("evaluated_at", "evaluated_at"),
            ("red_line", "red_line"),
        ),
    ),
    "metric-values": Kind(
        "metric-values",
        SuppliedValue,
        LAYOUTS["metric-values"],
        columns=("agent_id", "period_key", "metric", "value"),
        compare=("value",),
        key=lambda row: f"{row[0]}|{row[1]}|{row[2]}",
        sample=(
            ("agent_no", "agent_id"),
            ("period", "period_key"),
            ("metric_code", "metric"),
            ("value", "value"),
        ),
    ),
}


def _context() -> Context:
    """Look-ups for the rows of one import: the portal's timezone, and its employee numbers
    (read when a row first names one)."""

    def agents() -> dict[str, int]:
        return {no.lower(): uid for uid, no in db.session.execute(select(User.id, User.agent_no))}

    return Context(current_app.config["PORTAL_TIMEZONE"], agents)


# --- the pipeline ---------------------------------------------------------------------------


class Importer:
    """Writes one import's rows in batches and keeps its counts."""

    def __init__(self, kind: Kind, record: ImportRecord, *, fast: bool):
        self.kind, self.record, self.fast = kind, record, fast
        self._rejections: list[list] = []  # the first KEEP_REJECTIONS, in row order, as kept
        self._batch_rejections: list[tuple] = []  # this batch's, in the order found
        self.touched = stats.Touched(record.id)
        self.unrated: set[int] = set()  # interactions a survey or evaluation moved away from
        self.writing = True  # until a rejection makes the import's outcome a refusal
        self._positions = {c: i for i, c in enumerate(kind.columns)}
        # The stored fields an update may change (an interaction's local day too).
        self._compared = (
            (*kind.compare, "offered_day") if kind.model is Interaction else kind.compare
        )
        self._copy = self._copying = None  # PostgreSQL: the fast attempt's open COPY
        self._copy_info: dict = {}  # and its connection's info, marked while it is open
        self._keys_kept = False  # careful attempts: the file's keys so far, in import_keys
        self._fill: tuple = ()
        # Every row a fast attempt writes is new, with an id above the largest stored now.
        self.after_id = 0
        if fast:
            self.after_id = db.session.scalar(select(func.max(kind.model.id))) or 0

    def reject(self, number: int, reason: LazyString | str) -> None:
        self.record.rejected += 1
        # Rows of earlier batches come first: once the list is full, no later row gets in.
        if len(self._rejections) < KEEP_REJECTIONS:
            self._batch_rejections.append((number, reason))

    def settle(self) -> None:
        """Keep a batch's rejections in row order, once it is done: they are found in several
        passes (the parser's, then interactions not found, then repeated ids)."""
        if self._batch_rejections:
            found = sorted(self._batch_rejections, key=_FIRST)[
                : KEEP_REJECTIONS - len(self._rejections)
            ]
            self._rejections += [[number, messages.stored(reason)] for number, reason in found]
            self._batch_rejections = []

    @property
    def rejections(self) -> list[list]:
        """The rejections kept, in row order."""
        self.settle()
        return self._rejections

    def write(self, batch: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
        """Write a batch; the rows that are (or, once the file is refused, would be) stored."""
        if not batch:  # only refused rows
            return batch
        kind = self.kind
        if kind.refs:
            batch = self._resolve(batch)
        rows = list(map(_SECOND, batch))
        # An id twice in this batch. While writing fast, the database's unique index finds it
        # (and sends the file down the careful path, which names the row).
        writing_fast = self.fast and self.writing
        if not writing_fast and len(set(map(kind.key, rows))) < len(rows):
            batch = self._without_repeated_keys(batch)
            rows = list(map(_SECOND, batch))
        if not self.writing or not rows:
            return batch
        if self.fast:
            self._insert(rows)
            return batch
        try:
            return self._upsert(batch)
        except (db.session.get_bind().dialect.dbapi.IntegrityError, IntegrityError) as exc:
            raise _refusal(exc, fast=False) from None

    def _without_repeated_keys(self, batch: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
        kept, seen = [], {}
        for number, row in batch:
            key = self.kind.key(row)
            if key in seen:
                self.reject(number, self._duplicate(key, seen[key]))
            else:
                seen[key] = number
                kept.append((number, row))
        return kept

    def _resolve(self, batch: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
        """interaction_id (the source's) → the stored interaction's id, or a rejection."""
        wanted = {row[1] for _, row in batch}
        found = dict(
            db.session.execute(
                select(Interaction.source_id, Interaction.id).where(
                    _among(Interaction.source_id, list(wanted))
                )
            ).all()
        )
        resolved = []
        for number, row in batch:
            stored = found.get(row[1])
            if stored is None:
                self.reject(
                    number,
                    _l(
                        "interaction_id '%(value)s' is not imported yet; import the "
                        "interactions first",
                        value=row[1],
                    ),
                )
                continue
            resolved.append((number, (row[0], stored, *row[2:])))
        return resolved

    def _duplicate(self, key: str, row: int) -> LazyString:
        label = key.split("|")[-1] if self.kind.model is SuppliedValue else key
        return _l("%(key)s already appears in row %(row)s of this file", key=label, row=row)

    def _track(self, rows: list[tuple]) -> None:
        if self.kind.model is Interaction:
            at, day, agent = (
                itemgetter(self._positions[c]) for c in ("offered_s", "offered_day", "agent_id")
            )
            self.touched.add_rows(list(map(at, rows)), list(map(day, rows)), set(map(agent, rows)))

    def _insert(self, rows: list[tuple]) -> None:
        """Insert rows assumed new; a stored source id ends the fast attempt (run_import
        rolls it back to its savepoint). On PostgreSQL the interactions of the whole attempt go
        into one COPY, which the server works through while this process parses the next rows;
        nothing else may use the connection until finish()."""
        table, refused = (
            self.kind.model.__table__,
            db.session.get_bind().dialect.dbapi.IntegrityError,
        )
        try:
            # Only interactions: surveys and evaluations look up their interactions between
            # batches, which the connection cannot do while a COPY is open.
            if (
                self.kind.model is Interaction
                and db.session.get_bind().dialect.name == "postgresql"
            ):
                if self._copy is None:
                    # A file sent again shows at its first rows: go the careful way at once,
                    # rather than after the whole file has gone through the COPY.
                    first = [row[0] for row in rows]  # their source ids
                    if db.session.scalar(
                        select(Interaction.id).where(_among(Interaction.source_id, first)).limit(1)
                    ):
                        raise _StoredAlready
                    names, self._fill = _driver_columns(table, self.kind.columns, self.record.id)
                    cursor = db.session.connection().connection.driver_connection.cursor()
                    # Binary: the values need no formatting here nor parsing in the server.
                    self._copying = cursor.copy(
                        f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
                    )
                    self._copy = self._copying.__enter__()
                    self._copy_info = db.session.connection().info
                    self._copy_info[COPY_OPEN] = True
                    self._copy.set_types([_BINARY_TYPES[type(table.c[n].type)] for n in names])
                write, fill = self._copy.write_row, self._fill
                for row in rows:
                    write(row + fill)
            else:
                _insert_rows(table, self.kind.columns, rows, import_id=self.record.id)
        except refused as exc:
            raise _refusal(exc) from None
        self.record.inserted += len(rows)
        self._track(rows)

    def finish(self) -> None:
        """End the attempt's COPY, if one is open: the database checks its rows now."""
        self._forget_keys()
        if self._copy is None:
            return
        copying, self._copy = self._copying, None
        self._copy_info.pop(COPY_OPEN, None)
        try:
            copying.__exit__(None, None, None)
        except db.session.get_bind().dialect.dbapi.IntegrityError as exc:
            raise _refusal(exc) from None

    def abandon(self) -> None:
        """Cancel an open COPY (the attempt is being given up; its transaction follows)."""
        if self._copy is None:
            return
        copying, self._copy = self._copying, None
        self._copy_info.pop(COPY_OPEN, None)
        with contextlib.suppress(Exception):
            copying.__exit__(RuntimeError, RuntimeError("import abandoned"), None)

    def _existing(self, rows: list[tuple]) -> dict:
        """The stored rows of this batch's keys: plain rows, not ORM objects (fast, never
        stale after the bulk updates of earlier batches), ending with the fields an update
        may change (in the order of `_compared`)."""
        model, position = self.kind.model, self._positions
        fields = [getattr(model, f) for f in ("id", *self._compared)]
        if model is SuppliedValue:
            agent, period = itemgetter(position["agent_id"]), itemgetter(position["period_key"])
            found = db.session.execute(
                select(model.agent_id, model.period_key, model.metric, *fields).where(
                    model.agent_id.in_(set(map(agent, rows))),
                    model.period_key.in_(set(map(period, rows))),
                )
            )
            return {f"{s.agent_id}|{s.period_key}|{s.metric}": s for s in found}
        source = itemgetter(position["source_id"])
        found = db.session.execute(
            select(model.source_id, *fields).where(_among(model.source_id, list(map(source, rows))))
        )
        return {s.source_id: s for s in found}

    def _not_seen_before(self, batch: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
        """The rows whose key no earlier batch of this file had (the others are rejected,
        naming the row that had it first). The keys seen so far are kept in a temporary
        table, not in memory: a file may have millions."""
        key_of, run = self.kind.key, db.session.execute
        if not self._keys_kept:
            run(text(f"DROP TABLE IF EXISTS {_temporary('import_keys')}"))
            run(
                text(
                    "CREATE TEMPORARY TABLE import_keys "
                    "(source_key TEXT PRIMARY KEY, first_row INTEGER)"
                )
            )
            self._keys_kept = True
        keys = {key_of(row): number for number, row in batch}
        seen = dict(
            run(
                select(KEYS.c.source_key, KEYS.c.first_row).where(
                    _among(KEYS.c.source_key, list(keys))
                )
            ).all()
        )
        if seen:
            for number, row in batch:
                if (first := seen.get(key_of(row))) is not None:
                    self.reject(number, self._duplicate(key_of(row), first))
            batch = [(number, row) for number, row in batch if key_of(row) not in seen]
        if new := [(k, n) for k, n in keys.items() if k not in seen]:
            _insert_rows(KEYS, ("source_key", "first_row"), new)
        return batch

    def _forget_keys(self) -> None:
        if self._keys_kept:
            db.session.execute(text(f"DROP TABLE IF EXISTS {_temporary('import_keys')}"))
            self._keys_kept = False

    def _upsert(self, batch: list[tuple[int, tuple]]) -> list[tuple[int, tuple]]:
        """Look up the batch's stored rows: insert the new ones, update the changed ones, and
        count the unchanged ones (left as they are: a file sent again writes nothing). Returns
        the rows kept: those whose id no earlier row of the file had."""
        kind, model, import_id = self.kind, self.kind.model, self.record.id
        batch = self._not_seen_before(batch)
        existing = self._existing([row for _, row in batch])
        inserts, updates = [], []
        changed = unchanged = 0
        compare = self._compared
        # A row sent again is usually exactly as stored: one comparison of the fields an
        # update may change, as stored and as given, before any closer look.
        stored_of = itemgetter(*range(-len(compare), 0))
        given_of = itemgetter(*(self._positions[f] for f in compare))
        for _, values in batch:
            old = existing.get(kind.key(values))
            if old is None:
                inserts.append(values)
                continue
            if stored_of(old) == given_of(values):
                unchanged += 1
                continue
            row = dict(zip(kind.columns, values, strict=True))
            if (
                model is QaEvaluation
                and old.score != old.original_score
                and row["original_score"] == old.original_score
            ):
                row["score"] = old.score  # changed on appeal, and unchanged at the source
            if not any(_differs(getattr(old, f), row.get(f)) for f in compare):
                unchanged += 1
                continue
            changed += 1
            if model is Interaction:  # the old times, day and agent change too
                self.touched.add_rows([old.offered_s], [old.offered_day], {old.agent_id})
            elif kind.refs and old.interaction_id != row["interaction_id"]:
                self.unrated.add(old.interaction_id)  # its day loses the rating
            row["id"], row["import_id"] = old.id, import_id
            updates.append(row)
        record = self.record
        record.updated += changed
        record.unchanged += unchanged
        if inserts:
            _insert_rows(model.__table__, kind.columns, inserts, import_id=import_id)
            before, record.inserted = record.inserted, record.inserted + len(inserts)
            if any(before < mark <= record.inserted for mark in ANALYZE_AT):
                _analyze(model.__table__)
            self._track(inserts)
        if updates:
            db.session.execute(update(model), updates)
            self._track([tuple(u[c] for c in kind.columns) for u in updates])
        return batch


# The keys a careful attempt has seen so far (a temporary table of that name).
KEYS = SqlTable("import_keys", MetaData(), Column("source_key", Text), Column("first_row", Integer))


def _temporary(name: str) -> str:
    """A temporary table's name, qualified so that no ordinary table of that name is meant."""
    schema = "pg_temp" if db.session.get_bind().dialect.name == "postgresql" else "temp"
    return f"{schema}.{name}"


def _among(column, values: list):
    """column IN values; on PostgreSQL as = ANY of one array, which the server takes in one
    piece rather than as thousands of parameters."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


# PostgreSQL: a statement sent while a COPY is open would wait for the COPY forever (the
# connection serves one thing at a time). Such a statement is a bug, to fail at once.
COPY_OPEN = "portal_copy_open"


@event.listens_for(Engine, "before_cursor_execute")
def _no_statement_during_copy(conn, cursor, statement, *args) -> None:
    if conn.info.get(COPY_OPEN):
        raise RuntimeError(f"a statement was sent while an import's COPY is open: {statement}")


# A table that grows from empty is re-analyzed on the way, so PostgreSQL keeps using its
# indexes for the look-ups of later batches instead of planning for an empty table.
ANALYZE_AT = (10_000, 100_000, 1_000_000)


def _analyze(table) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"ANALYZE {table.name}"))


# PostgreSQL's names of the column types a binary COPY of interactions writes.
_BINARY_TYPES = {
    db.String: "varchar",
    db.Integer: "int4",
    db.Date: "date",
    db.Float: "float8",
    db.Boolean: "bool",
}


def _driver_columns(table, columns: tuple[str, ...], import_id=None) -> tuple[list, tuple]:
    """The columns a driver-level insert names: `columns`, then those with a default the
    driver would not fill in, and the import id; with the values of the latter."""
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if c.default is not None and c.default.is_scalar and c.name not in columns
    }
    if import_id is not None:
        defaults["import_id"] = int(import_id)
    return [*columns, *defaults], tuple(defaults.values())


def _insert_rows(table, columns: tuple[str, ...], rows: list[tuple], import_id=None) -> None:
    """Insert one batch inside the import's transaction, through the driver: COPY on
    PostgreSQL, one executemany on SQLite. SQLAlchemy's per-row statement building would take
    longer than the database's own work at these volumes. `import_id` goes into every row."""
    connection = db.session.connection()
    names, fill = _driver_columns(table, columns, import_id)
    cursor = connection.connection.driver_connection.cursor()
    if connection.dialect.name == "postgresql":
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row + fill)
        return
    converters = [(i, _sqlite_converter(table.c[c].type)) for i, c in enumerate(columns)]
    converters = [(i, f) for i, f in converters if f is not None]
    if converters:
        rows = [_converted(row, converters) for row in rows]
    # Constants are written into the statement, so the rows are passed on as they are.
    values = ", ".join(["?"] * len(columns) + [_sqlite_literal(v) for v in fill])
    cursor.executemany(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({values})", rows)


def _sqlite_literal(value) -> str:
    """A column default or import id written into the statement (numbers, text, flags)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _converted(row: tuple, converters) -> tuple:
    out = list(row)
    for i, convert in converters:
        out[i] = convert(out[i])
    return tuple(out)


def _sqlite_converter(type_):
    """How a Python value of `type_` becomes what SQLAlchemy stores in SQLite: times as text;
    days through the driver's adapter (portal/db.py), which writes what SQLAlchemy writes;
    numbers, text and booleans as they are."""
    if isinstance(type_, UTCDateTime):
        return sqlite_utc_text
    return None


def _differs(stored, new) -> bool:
    if isinstance(stored, float) or isinstance(new, float):
        return stored is None or new is None or abs(stored - new) > 1e-6
    return stored != new


def run_import(
    kind_name: str,
    source: io.BufferedIOBase | Table,
    *,
    filename: str,
    door: str,
    actor: User | None = None,
    valid_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
    dry_run: bool = False,
) -> ImportRecord | Preview:
    """Import one file of `kind_name`, leaving the data with its record, or only the record.

    With `dry_run`, everything is checked exactly as for real (duplicates against stored
    records included), then rolled back, and a Preview is returned instead."""
    attempt = partial(
        _attempt,
        KINDS[kind_name],
        filename=filename,
        door=door,
        actor=actor,
        valid_only=valid_only,
        progress=progress,
        dry_run=dry_run,
    )
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        # Room for a month's source-id index in the page cache while this connection imports
        # (other connections keep the default): a large file's inserts then rarely miss.
        # portal/db.py gives it back the usual size when the connection returns to the pool.
        connection.info[IMPORT_CACHE] = True
        connection.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KB}")
    # Rows posted to the API are few: they are looked up at once. A file is first written as
    # if every row were new, and read again carefully if one turns out to be stored already.
    if not isinstance(source, Table) and source.seekable():
        start = source.tell()
        savepoint = db.session.begin_nested()
        try:
            outcome = attempt(source, fast=True)
        except _StoredAlready:
            savepoint.rollback()
            source.seek(start)
        else:
            if savepoint.is_active:  # a refusal or a preview has rolled everything back
                savepoint.commit()
            return outcome
    return attempt(source, fast=False)


def _attempt(
    kind: Kind,
    source: io.BufferedIOBase | Table,
    *,
    fast: bool,
    filename: str,
    door: str,
    actor: User | None,
    valid_only: bool,
    progress: Callable[[int, int], None] | None,
    dry_run: bool,
) -> ImportRecord | Preview:
    record = ImportRecord(
        kind=kind.name,
        door=door,
        filename=filename[:255],
        valid_only=valid_only,
        actor_id=actor.id if actor else None,
        actor_label=f"{actor.agent_no} {actor.name}" if actor else "system",
        started_at=utcnow(),
        status="running",
    )
    db.session.add(record)
    db.session.flush()
    importer = Importer(kind, record, fast=fast)
    sample: list[dict] = []
    batch_size = BATCH
    if fast:
        postgresql = db.session.get_bind().dialect.name == "postgresql"
        batch_size = COPY_BATCH if postgresql and kind.model is Interaction else FAST_BATCH
    hasher = hashlib.sha256()  # of the bytes this process reads (a parsing process has its own)
    parsed = Parsed([], iter(()), partial(_checksum, source, hasher))
    collecting = gc.get_threshold()
    # The cycle collector would walk the millions of rows this makes, in vain: it runs a
    # hundred times less often while they are made.
    gc.set_threshold(collecting[0] * 100, *collecting[1:])
    try:
        parsed = _parse_apart(kind, source, batch_size, filename) or _parse_here(
            kind, source, batch_size, filename, hasher
        )
        record.encoding = parsed.encoding.split(":")[0]
        known = kind.layout.known
        record.unknown_columns = [c for c in parsed.columns if c and c not in known]
        for batch, rejected, rows_read, bytes_read in parsed.batches:
            record.rows_read = rows_read
            for number, reason in rejected:
                importer.reject(number, reason)
                if not (valid_only or dry_run):
                    importer.writing = False  # the file will be refused: only check the rest
            kept = importer.write(batch)
            importer.settle()
            if dry_run and len(sample) < PREVIEW_ROWS:
                sample += _sample(kind, batch, kept, PREVIEW_ROWS - len(sample))
            if progress:
                progress(rows_read, bytes_read)
        if record.rows_read == 0:
            raise FileProblem(_l("The file has a header row but no data rows."))
        importer.finish()
    except FileProblem as exc:
        importer.abandon()
        if dry_run:
            return _preview(record, importer, kind, parsed.columns, sample, exc.message)
        # Reading may have stopped part-way (a bad byte deep in the file): the checksum still
        # covers the whole file.
        return _finish_refused(record, importer, exc.message, parsed.checksum)
    finally:
        importer.abandon()
        gc.set_threshold(*collecting)
        parsed.close()
    if dry_run:
        return _preview(record, importer, kind, parsed.columns, sample, None)

    if record.rejected and not valid_only:
        if door == "api":  # neither the API nor the inbox has "valid rows only"
            message = _l(
                "%(n)s row(s) rejected, nothing imported. Fix them and send the rows again.",
                n=record.rejected,
            )
        elif door == "inbox":
            message = _l(
                "%(n)s row(s) rejected, nothing imported. Fix them and put the file into the "
                "inbox folder again.",
                n=record.rejected,
            )
        else:
            message = _l(
                "%(n)s row(s) rejected, nothing imported. Fix them, or import the valid rows only.",
                n=record.rejected,
            )
        return _finish_refused(record, importer, message, parsed.checksum)
    if record.rejected and not (record.inserted + record.updated + record.unchanged):
        # The valid rows only, and there are none: nothing was imported because of errors.
        message = _l(
            "Every row was rejected (%(n)s), so nothing was imported. Fix the rows and import "
            "the file again.",
            n=record.rejected,
        )
        return _finish_refused(record, importer, message, parsed.checksum)
    _update_derived(importer)
    record.rejections = importer.rejections
    record.checksum = parsed.checksum()
    record.status, record.finished_at = "committed", utcnow()
    db.session.flush()
    return record


# --- parsing, in this process or beside it --------------------------------------------------


@dataclass
class Parsed:
    """A file being parsed: its header, then its rows in batches, then its checksum."""

    columns: list[str]
    batches: Iterator[Batch]
    checksum: Callable[[], str]
    encoding: str = ""
    close: Callable[[], None] = lambda: None


def _parse_here(
    kind: Kind, source: io.BufferedIOBase | Table, batch_size: int, filename: str, hasher
) -> Parsed:
    if isinstance(source, Table):
        table, reader = source, None
        if table.problem is not None:
            raise FileProblem(table.problem)
    else:
        reader = HashingReader(source, hasher)
        table = open_table(io.BufferedReader(reader, BLOCK), filename)
    check_header(kind.layout, table.columns)

    def bytes_read() -> int:
        return 0 if reader is None else reader.count

    ctx = _context()
    ctx.agents()  # read now: on PostgreSQL the connection may be busy with a COPY later
    batches = parse_batches(kind.layout, table, ctx, batch_size, bytes_read)
    checksum = partial(_checksum, source, hasher)
    return Parsed(table.columns, batches, checksum, table.encoding)


def _checksum(source: io.BufferedIOBase | Table, hasher) -> str:
    """The SHA-256 of the whole file: `hasher` has the bytes read so far, the rest of the file
    is read now (nothing is left once it was parsed to its end; a refusal may stop reading
    part-way). Rows posted to the API carry the checksum of the request's body. Empty when
    the rest of the file cannot be read: a checksum of part of it would be wrong."""
    if isinstance(source, Table):
        return source.encoding.split(":")[1]
    try:
        while block := source.read(BLOCK):
            hasher.update(block)
    except (OSError, ValueError):
        return ""
    return hasher.hexdigest()


# On SQLite, files at least this large are parsed by a second process while this one writes:
# the database's work runs in this process too, and parsing beside it takes a third off a
# large import. PostgreSQL already works in a process of its own, so there it would only add
# the cost of passing the rows.
PARSE_APART_BYTES = 8 << 20
PIPE_BYTES = 1 << 20


def _parse_apart(kind: Kind, source, batch_size: int, filename: str) -> Parsed | None:
    """Parse a large CSV file in a worker process (a fresh interpreter: nothing of this
    process is shared), receiving its batches through a pipe. None when the source is not
    such a file (a workbook, by its content or its name, is read here)."""
    path = getattr(source, "name", None)
    if isinstance(source, Table) or not isinstance(path, str) or source.tell() != 0:
        return None
    if filename.lower().endswith(".xlsx"):
        return None
    if db.session.get_bind().dialect.name != "sqlite":
        return None
    try:
        if os.path.getsize(path) < PARSE_APART_BYTES or source.peek(4)[:4] == b"PK\x03\x04":
            return None
    except (OSError, AttributeError):
        return None
    ctx = _context()
    task = (os.path.abspath(path), kind.name, str(ctx.tz), ctx.agents(), batch_size)
    reading, writing = os.pipe()
    # Room for a whole batch in the pipe, so the worker parses the next one meanwhile instead
    # of waiting for this process to take the last (Linux; elsewhere the default size).
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(writing, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    worker = subprocess.Popen(
        [sys.executable, "-m", "portal.metrics.parsing", str(writing)],
        stdin=subprocess.PIPE,
        pass_fds=(writing,),
        cwd=Path(__file__).resolve().parents[2],
    )
    os.close(writing)
    messages_in = os.fdopen(reading, "rb")
    try:
        pickle.dump(task, worker.stdin)
        worker.stdin.close()
    except BrokenPipeError:
        pass  # the worker died at once; reading says so

    def close() -> None:
        messages_in.close()
        if worker.poll() is None:
            worker.kill()
        worker.wait()

    def messages() -> Iterator[tuple]:
        while True:
            try:
                message = pickle.load(messages_in)
            except EOFError:
                raise RuntimeError("the parsing process stopped unexpectedly") from None
            if message[0] == "problem":
                raise FileProblem(message[1])
            if message[0] == "error":
                raise RuntimeError(f"the parsing process failed: {message[1]}")
            yield message

    stream = messages()
    try:
        _, encoding, columns = next(stream)
    except BaseException:
        close()
        raise
    checksum = {}

    def batches() -> Iterator[Batch]:
        for message in stream:
            if message[0] == "end":
                checksum["sha256"] = message[1]
                return
            yield message[1:]

    def whole() -> str:
        """The worker's checksum once it has read the whole file; else (a refusal stopped it)
        the file read here, where nothing of it has been read yet."""
        return checksum.get("sha256") or _checksum(source, hashlib.sha256())

    return Parsed(columns, batches(), whole, encoding, close)


def _sample(kind: Kind, batch: list, kept: list, room: int) -> list[dict]:
    """The first rows of a batch that would be stored (no repeated id, no interaction
    missing), as read: a survey shows its interaction's id, not the stored one's."""
    numbers = {number for number, _ in kept[:room]}
    return [{"row": n, **_shown(kind, r)} for n, r in batch if n in numbers][:room]


def _shown(kind: Kind, row: tuple) -> dict:
    """A parsed row as the preview shows it: by the file's column names."""
    named = dict(zip(kind.columns, row, strict=True))
    if kind.shown:
        named = kind.shown(named)
    return {column: named[field] for column, field in kind.sample}


PREVIEW_ROWS = 10


@dataclass
class Preview:
    """What an import would do, shown before anything is stored."""

    kind: str
    encoding: str
    columns: list[str]
    missing: list[str]
    unknown: list[str]
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    rejections: list  # [row, reason as kept (portal/metrics/messages.py)]
    sample: list[dict]
    problem: str | dict | None  # as kept

    @property
    def importable(self) -> bool:
        return self.problem is None and (self.inserted + self.updated + self.unchanged) > 0


def _preview(record, importer, kind: Kind, columns, sample, problem) -> Preview:
    """Capture the dry run's outcome, then undo it."""
    known = kind.layout.known
    preview = Preview(
        kind=kind.name,
        encoding=record.encoding,
        columns=[c for c in columns if c],
        missing=[c for c in kind.layout.required if columns and c not in columns],
        unknown=[c for c in columns if c and c not in known],
        rows_read=record.rows_read,
        inserted=record.inserted,
        updated=record.updated,
        unchanged=record.unchanged,
        rejected=record.rejected,
        rejections=list(importer.rejections),
        sample=sample,
        problem=messages.stored(problem),
    )
    db.session.rollback()
    return preview


def _finish_refused(
    record: ImportRecord,
    importer: Importer,
    message: LazyString | str,
    checksum: Callable[[], str],
) -> ImportRecord:
    """Undo every row; keep only the record of what was refused and why. The file's checksum
    is taken after the undo: finishing it may mean reading the rest of a large file, which
    should not hold the database's write lock meanwhile."""
    saved = {
        "kind": record.kind,
        "door": record.door,
        "filename": record.filename,
        "actor_id": record.actor_id,
        "actor_label": record.actor_label,
        "started_at": record.started_at,
        "valid_only": record.valid_only,
        "encoding": record.encoding,
        "rows_read": record.rows_read,
        "rejected": record.rejected,
        "unknown_columns": record.unknown_columns,
    }
    db.session.rollback()
    refused = ImportRecord(
        **saved,
        checksum=checksum(),
        status="rejected",
        finished_at=utcnow(),
        message=messages.stored(message),
        rejections=importer.rejections,
    )
    db.session.add(refused)
    db.session.flush()
    return refused


def _update_derived(importer: Importer) -> None:
    """Bring FCR repeats and the daily sums up to date for what this import touched."""
    model, import_id, touched = importer.kind.model, importer.record.id, importer.touched
    if model is Interaction:
        if touched.lo is None:
            return
        changed = stats.refresh_repeats(touched.lo, touched.hi, import_id, only_added=importer.fast)
        if importer.fast:  # only new interactions: their sums are added to the days'
            stats.add_to_day_stats(import_id, importer.after_id)
        else:
            stats.rebuild_day_stats(touched.first_day, touched.last_day, touched.agents)
        if changed:
            stats.rebuild_day_stats(*changed)
        return
    if model in (Survey, QaEvaluation):
        affected = stats.affected_by_ratings(model.__table__, import_id, importer.unrated)
        if affected:
            stats.rebuild_day_stats(*affected)
    # supplied values are read directly


def rejection_lines(record: ImportRecord) -> Iterable[str]:
    """The rejections kept, as text lines in the current language, and how many more there
    were (CLI, inbox reports)."""
    kept = record.rejections or []
    for number, reason in kept:
        yield f"Row {number}: {messages.shown(reason)}"
    if record.rejected > len(kept):
        yield (
            f"… and {record.rejected - len(kept)} more rejected rows: only the first "
            f"{KEEP_REJECTIONS} are kept. Fix these and import the file again to see the others."
        )


def report_lines(record: ImportRecord) -> Iterable[str]:
    """The import report as text lines (CLI)."""
    source = record.filename or "request"
    yield f"Import #{record.id} of {record.kind} from {source}: {record.status}"
    if record.encoding:
        yield f"Encoding: {record.encoding}"
    if record.unknown_columns:
        yield f"Ignored unknown columns: {', '.join(record.unknown_columns)}"
    yield (
        f"Rows read: {record.rows_read}  inserted: {record.inserted}  updated: "
        f"{record.updated}  unchanged: {record.unchanged}  rejected: {record.rejected}"
    )
