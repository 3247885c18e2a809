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
import csv
import fcntl
import gc
import hashlib
import io
import math
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from itertools import chain
from operator import itemgetter
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text, update

from portal.accounts.models import User
from portal.db import UTCDateTime, sqlite_utc_text, utcnow
from portal.extensions import db
from portal.metrics import stats
from portal.metrics.compute import SUPPLIED_CODES
from portal.metrics.models import (
    CHANNELS,
    ImportRecord,
    Interaction,
    QaEvaluation,
    SuppliedValue,
    Survey,
)
from portal.metrics.periods import PeriodKeyError, parse_period
from portal.textfiles import FileProblem, decode_text

# The interaction file's columns in the order of metrics.md §1.
INTERACTION_COLUMNS = (
    "interaction_id",
    "channel",
    "queue",
    "agent_no",
    "offered_at",
    "answered_at",
    "ended_at",
    "wrap_seconds",
    "hold_seconds",
    "customer_key",
    "transferred",
    "resolved",
)
BATCH = 2000  # rows looked up and compared at a time
FAST_BATCH = 10_000  # rows inserted at a time while every row is new
# PostgreSQL: rows handed to the open COPY at a time. Small enough for the socket's buffer,
# so the server stores one batch while this process parses the next instead of waiting.
COPY_BATCH = 1000
KEEP_REJECTIONS = 1000
MAX_SECONDS = 24 * 3600  # longer durations are absurd (metrics.md §1)
BLOCK = 1 << 20  # bytes read at a time
_FIRST, _SECOND = itemgetter(0), itemgetter(1)


class RowError(ValueError):
    """Why one row is refused."""


class _StoredAlready(Exception):
    """A fast attempt met a source id that is already stored: read the file again carefully."""


# --- reading files as streams of rows -------------------------------------------------------


@dataclass
class Table:
    encoding: str
    columns: list[str]
    rows: Iterator[tuple[int, list]]  # (row number as a spreadsheet shows it, values)


def _sniff_encoding(head: bytes) -> str:
    """Detect the encoding from the first bytes (decode_text refuses what it cannot read)."""
    encoding, _ = decode_text(_trim_partial(head))
    return encoding


def _trim_partial(head: bytes) -> bytes:
    """Cut a sample at its last newline so a multi-byte character is never split."""
    cut = head.rfind(b"\n")
    return head[: cut + 1] if cut > 0 and len(head) >= 65536 else head


def _text_chunks(head: bytes, rest: io.BufferedIOBase, encoding: str) -> Iterator[str]:
    """The file as text, a block of whole lines at a time.

    Blocks are cut after their last newline byte, which never occurs inside a UTF-8 or GB18030
    character, so each block decodes on its own. A block that does not decode names the line
    of its first bad byte."""
    pending, lines_before = b"", 0
    for block in chain((head,), iter(partial(rest.read, BLOCK), b"")):
        data = pending + block
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        yield _decoded(data[:cut], encoding, lines_before)
        lines_before += data.count(b"\n", 0, cut)
        encoding = "utf-8" if encoding == "utf-8-sig" else encoding  # the BOM starts the file
    if pending:
        yield _decoded(pending, encoding, lines_before)


def _decoded(data: bytes, encoding: str, lines_before: int) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        row = lines_before + data.count(b"\n", 0, exc.start) + 1
        raise FileProblem(
            _l(
                "Row %(row)s is not valid %(encoding)s text. Save the whole file as CSV "
                "UTF-8 and try again.",
                row=row,
                encoding=encoding,
            )
        ) from None


def read_csv_stream(stream: io.BufferedIOBase) -> Table:
    head = stream.read(BLOCK)
    if not head.strip():
        raise FileProblem(_l("The file is empty. It needs a header row and data rows."))
    encoding = _sniff_encoding(head)
    lines = chain.from_iterable(
        map(partial(io.StringIO, newline=""), _text_chunks(head, stream, encoding))
    )
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem(_l("The file is empty. It needs a header row and data rows.")) from None
    except csv.Error as exc:
        raise FileProblem(
            _l("Row %(row)s is not valid CSV: %(error)s", row=1, error=str(exc))
        ) from None
    columns = [h.strip().lower() for h in header]

    def rows():
        # Values are passed on as read: the row parsers strip what they use. A short row
        # simply lacks its last columns; blank rows are skipped.
        try:
            for values in reader:
                if values and (values[0].strip() or "".join(values).strip()):
                    yield reader.line_num, values
        except csv.Error as exc:
            raise FileProblem(
                _l("Row %(row)s is not valid CSV: %(error)s", row=reader.line_num, error=str(exc))
            ) from None

    return Table(encoding, columns, rows())


def read_xlsx_stream(stream: io.BufferedIOBase) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except Exception:
        raise FileProblem(
            _l("The file is not a readable Excel workbook (.xlsx). Save it again as .xlsx or CSV.")
        ) from None
    sheet = book.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    try:
        header = next(values)
    except StopIteration:
        raise FileProblem(_l("The workbook's first sheet is empty.")) from None
    columns = [str(h).strip().lower() if h is not None else "" for h in header]

    def cell(value):
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return value if isinstance(value, datetime | date) else str(value).strip()

    def rows():
        for number, row in enumerate(values, start=2):
            if all(v is None or str(v).strip() == "" for v in row):
                continue
            yield number, [cell(v) for v in row]
        book.close()

    return Table("xlsx", columns, rows())


def open_table(stream: io.BufferedReader, filename: str) -> Table:
    """Read a CSV or XLSX stream, choosing by content (an .xlsx is a zip file)."""
    if stream.peek(4)[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        # A workbook is a zip archive, which needs random access: hold it in memory.
        return read_xlsx_stream(io.BytesIO(stream.read()))
    return read_csv_stream(stream)


def json_table(rows: list, checksum: str) -> Table:
    """Rows posted to the API: a list of objects keyed by the CSV column names."""
    columns = sorted({str(k).strip().lower() for row in rows if isinstance(row, dict) for k in row})

    def numbered():
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise FileProblem(
                    _l("Item %(n)s is not an object with the columns as keys.", n=number)
                )
            named = {str(k).strip().lower(): v for k, v in row.items()}
            yield number, [_json_value(named.get(c)) for c in columns]

    return Table(f"json:{checksum}", columns, numbered())


def _json_value(value):
    """JSON values as a file would hold them: text, with numbers and flags written out."""
    if value is None:
        return ""
    if value is True or value is False:
        return "1" if value else "0"
    return value if isinstance(value, str) else str(value)


# --- values ---------------------------------------------------------------------------------


def parse_time(raw, tz: ZoneInfo, column: str) -> datetime:
    """ISO 8601 with or without offset; a naive time is read in the portal's timezone."""
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    else:
        text = str(raw).strip()
        if not text:
            raise RowError(_l("%(column)s is empty", column=column))
        try:
            value = datetime.fromisoformat(text.replace("/", "-"))
        except ValueError:
            raise RowError(
                _l(
                    "%(column)s '%(value)s' is not a timestamp; write it as "
                    "2026-11-03T09:15:02+08:00",
                    column=column,
                    value=text,
                )
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _seconds_at(raw, tz: ZoneInfo, column: str, fromisoformat=datetime.fromisoformat) -> float:
    """A timestamp as seconds since the epoch: parse_time, without its detours for the usual
    text (a well-formed ISO 8601 string)."""
    try:
        value = fromisoformat(raw)
    except (TypeError, ValueError):
        value = parse_time(raw, tz, column)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.timestamp()


def parse_seconds(raw, column: str) -> float:
    if raw == "" or raw == "0":
        return 0.0
    if isinstance(raw, str):
        raw = raw.strip()
    if raw in ("", None):
        return 0.0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RowError(
            _l("%(column)s '%(value)s' is not a number of seconds", column=column, value=raw)
        ) from None
    if not math.isfinite(value) or value < 0 or value > MAX_SECONDS:
        raise RowError(
            _l(
                "%(column)s %(value)s is not between 0 and %(max)s seconds",
                column=column,
                value=raw,
                max=MAX_SECONDS,
            )
        )
    return value


FLAGS = {
    **dict.fromkeys(("1", "true", "yes", "y", "是"), True),
    **dict.fromkeys(("0", "false", "no", "n", "否"), False),
}


def parse_flag(raw, column: str, *, allow_empty: bool) -> bool | None:
    found = FLAGS.get(raw)
    if found is not None:
        return found
    text = str(raw).strip().lower() if raw is not None else ""
    found = FLAGS.get(text)
    if found is not None:
        return found
    if text == "":
        return None if allow_empty else False
    raise RowError(_l("%(column)s '%(value)s' must be 1 or 0", column=column, value=raw))


def parse_int(raw, column: str, low: int, high: int, *, required: bool) -> int | None:
    if isinstance(raw, str):
        raw = raw.strip()
    if raw in ("", None):
        if required:
            raise RowError(_l("%(column)s is empty", column=column))
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RowError(
            _l("%(column)s '%(value)s' is not a number", column=column, value=raw)
        ) from None
    if not value.is_integer() or not low <= value <= high:
        raise RowError(
            _l(
                "%(column)s %(value)s must be a whole number from %(low)s to %(high)s",
                column=column,
                value=raw,
                low=low,
                high=high,
            )
        )
    return int(value)


def parse_id(raw, column: str) -> str:
    text = str(raw).strip() if raw is not None else ""
    if not text:
        raise RowError(_l("%(column)s is empty", column=column))
    if len(text) > 64:
        raise RowError(_l("%(column)s is longer than 64 characters", column=column))
    return text


# --- the four kinds -------------------------------------------------------------------------


class Context:
    """Look-ups shared by the rows of one import, loaded lazily and cached."""

    def __init__(self, timezone: str, agents: dict[str, int] | None = None):
        self.tz = ZoneInfo(timezone)
        self._agents = agents
        self.seen_agents: dict[str, int] = {}  # as written in the file
        self.days: dict[int, date] = {}  # by quarter hour since the epoch

    @classmethod
    def here(cls) -> Context:
        return cls(current_app.config["PORTAL_TIMEZONE"])

    def agents(self) -> dict[str, int]:
        """Employee number (lower case) → user id, read once."""
        if self._agents is None:
            self._agents = {
                no.lower(): uid for uid, no in db.session.execute(select(User.id, User.agent_no))
            }
        return self._agents

    def agent_id(self, agent_no: str, column: str = "agent_no") -> int:
        found = self.seen_agents.get(agent_no)
        if found is not None:
            return found
        found = self.agents().get(agent_no.strip().lower())
        if found is None:
            raise RowError(
                _l(
                    "%(column)s '%(value)s' is not a known employee number",
                    column=column,
                    value=agent_no.strip(),
                )
            )
        self.seen_agents[agent_no] = found
        return found

    def local_day(self, seconds: float) -> date:
        """The day in the portal's timezone, cached per quarter hour (every zone's offset is a
        whole number of quarter hours, so a quarter hour never straddles local midnight;
        one that would is computed exactly each time)."""
        quarter = int(seconds // 900)
        day = self.days.get(quarter)
        if day is None:
            start = datetime.fromtimestamp(quarter * 900, self.tz).date()
            if start != datetime.fromtimestamp(quarter * 900 + 899, self.tz).date():
                return datetime.fromtimestamp(seconds, self.tz).date()
            day = self.days[quarter] = start
        return day


_MISSING = object()
TRANSFERRED = {**FLAGS, "": False}
RESOLVED = {**FLAGS, "": None}


def interaction_row(v: tuple, ctx: Context, fromisoformat=datetime.fromisoformat) -> tuple:
    """One interaction, checked (metrics.md §1). The usual case — well-formed text — is taken
    inline; anything else goes through the general parsers, which also word the refusals.
    This runs for every row of files of millions of rows, hence its shape."""
    (
        source_id,
        channel,
        queue,
        agent_no,
        offered,
        answered,
        ended,
        wrap,
        hold,
        customer,
        transferred,
        resolved,
    ) = v
    if not source_id or len(source_id) > 64 or source_id != source_id.strip():
        source_id = parse_id(source_id, "interaction_id")
    if channel not in CHANNELS:
        channel = str(channel or "").strip().lower() or "phone"
        if channel not in CHANNELS:
            raise RowError(
                _l(
                    "channel '%(value)s' must be one of %(choices)s",
                    value=channel,
                    choices=", ".join(CHANNELS),
                )
            )
    tz = ctx.tz
    try:
        at = fromisoformat(offered)
        offered_s = (at if at.tzinfo else at.replace(tzinfo=tz)).timestamp()
    except (TypeError, ValueError):
        offered_s = _seconds_at(offered, tz, "offered_at")
    if answered == "" or not str(answered).strip():
        answered_s = None
    else:
        try:
            at = fromisoformat(answered)
            answered_s = (at if at.tzinfo else at.replace(tzinfo=tz)).timestamp()
        except (TypeError, ValueError):
            answered_s = _seconds_at(answered, tz, "answered_at")
    try:
        at = fromisoformat(ended)
        ended_s = (at if at.tzinfo else at.replace(tzinfo=tz)).timestamp()
    except (TypeError, ValueError):
        ended_s = _seconds_at(ended, tz, "ended_at")
    if answered_s is not None and answered_s < offered_s:
        raise RowError(_l("answered_at is before offered_at"))
    if ended_s < (offered_s if answered_s is None else answered_s):
        raise RowError(
            _l(
                "ended_at is before %(column)s",
                column="offered_at" if answered_s is None else "answered_at",
            )
        )
    if ended_s - offered_s > MAX_SECONDS:
        raise RowError(_l("the interaction lasts more than 24 hours"))
    queue, customer = str(queue).strip(), str(customer).strip()
    if len(queue) > 64 or len(customer) > 128:
        raise RowError(_l("queue (64) or customer_key (128 characters) is too long"))
    if agent_no == "":
        agent_id = None
    else:
        agent_id = ctx.seen_agents.get(agent_no)
        if agent_id is None:
            agent_id = ctx.agent_id(agent_no) if str(agent_no).strip() else None
    day = ctx.days.get(int(offered_s // 900))
    if day is None:
        day = ctx.local_day(offered_s)
    try:
        wrap_s = float(wrap) if wrap else 0.0
        if not 0 <= wrap_s <= MAX_SECONDS:
            raise ValueError
    except (TypeError, ValueError):
        wrap_s = parse_seconds(wrap, "wrap_seconds")
    try:
        hold_s = float(hold) if hold else 0.0
        if not 0 <= hold_s <= MAX_SECONDS:
            raise ValueError
    except (TypeError, ValueError):
        hold_s = parse_seconds(hold, "hold_seconds")
    was_transferred = TRANSFERRED.get(transferred, _MISSING)
    if was_transferred is _MISSING:
        was_transferred = parse_flag(transferred, "transferred", allow_empty=False)
    was_resolved = RESOLVED.get(resolved, _MISSING)
    if was_resolved is _MISSING:
        was_resolved = parse_flag(resolved, "resolved", allow_empty=True)
    return (
        source_id,
        channel,
        queue,
        agent_id,
        day,
        offered_s,
        ended_s,
        (ended_s if answered_s is None else answered_s) - offered_s,
        None if answered_s is None else ended_s - answered_s,
        wrap_s,
        hold_s,
        customer or None,
        was_transferred,
        was_resolved,
    )


def interaction_shown(row: dict) -> dict:
    """A parsed interaction as the preview shows it: its times rather than their seconds."""
    answered = None if row["talk_s"] is None else row["offered_s"] + row["wait_s"]
    shown = {}
    for name, value in row.items():
        if name == "offered_day":
            for label, seconds in (
                ("offered_at", row["offered_s"]),
                ("answered_at", answered),
                ("ended_at", row["ended_s"]),
            ):
                shown[label] = None if seconds is None else datetime.fromtimestamp(seconds, UTC)
        elif name not in ("offered_s", "ended_s"):
            shown[name] = value
    return shown


def survey_row(v: tuple, ctx: Context) -> tuple:
    survey_id, interaction_id, submitted, csat, nps, comment = v
    csat = parse_int(csat, "csat", 1, 5, required=False)
    nps = parse_int(nps, "nps", 0, 10, required=False)
    comment = str(comment or "").strip()
    if len(comment) > 4000:
        raise RowError(_l("comment is longer than 4000 characters"))
    return (
        parse_id(survey_id, "survey_id"),
        parse_id(interaction_id, "interaction_id"),  # resolved to the stored id per batch
        csat,
        nps,
        parse_time(submitted, ctx.tz, "submitted_at"),
        comment,
    )


def qa_row(v: tuple, ctx: Context) -> tuple:
    evaluation_id, interaction_id, evaluator, score, evaluated, red_line = v
    raw_score = score
    try:
        score = float(score)
    except (TypeError, ValueError):
        raise RowError(_l("score '%(value)s' is not a number", value=raw_score)) from None
    if not math.isfinite(score) or not 0 <= score <= 100:
        raise RowError(_l("score %(value)s must be from 0 to 100", value=raw_score))
    evaluator = str(evaluator or "").strip()
    evaluated = parse_time(evaluated, ctx.tz, "evaluated_at")
    return (
        parse_id(evaluation_id, "evaluation_id"),
        parse_id(interaction_id, "interaction_id"),
        ctx.agent_id(evaluator, "evaluator_no") if evaluator else None,
        score,
        score,  # original_score
        evaluated,
        evaluated,  # released_at: imported evaluations are released as they arrive
        parse_flag(red_line, "red_line", allow_empty=False),
    )


SUPPLIED_RANGES = {
    "knowledge_contrib": (0, 1e6),
    "brand_sentiment": (0, 100),
    "soothing_rate": (0, 1),
}


def metric_value_row(v: tuple, ctx: Context) -> tuple:
    agent_no, period_key, code, raw = v
    agent_no = str(agent_no or "").strip()
    if not agent_no:
        raise RowError(_l("%(column)s is empty", column="agent_no"))
    try:
        period = parse_period(str(period_key or ""))
    except PeriodKeyError:
        raise RowError(
            _l(
                "period '%(value)s' is not a period key; use 2026-11 (month), 2026-W47 "
                "(ISO week) or 2026-Q4",
                value=period_key,
            )
        ) from None
    code = str(code or "").strip()
    if code not in SUPPLIED_CODES:
        raise RowError(
            _l(
                "metric_code '%(value)s' is not supplied from outside; use %(choices)s",
                value=code,
                choices=", ".join(SUPPLIED_CODES),
            )
        )
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RowError(_l("value '%(value)s' is not a number", value=raw)) from None
    low, high = SUPPLIED_RANGES[code]
    if not math.isfinite(value) or not low <= value <= high:
        raise RowError(
            _l(
                "value %(value)s for %(code)s must be from %(low)s to %(high)s",
                value=raw,
                code=code,
                low=f"{low:g}",
                high=f"{high:g}",
            )
        )
    return (ctx.agent_id(agent_no), period.key, code, value)


@dataclass(frozen=True)
class Kind:
    name: str
    model: type
    required: tuple[str, ...]
    optional: tuple[str, ...]
    fields: tuple[str, ...]  # the file's columns in the order `parse` takes them
    parse: Callable[[tuple, Context], tuple]
    columns: tuple[str, ...]  # the stored columns in the order `parse` returns them
    compare: tuple[str, ...]  # the stored fields an update may change
    key: Callable[[tuple], str] = itemgetter(0)  # what makes a row the same record
    refs: bool = False  # column 1 names an interaction by its source id
    shown: Callable[[dict], dict] | None = None  # a parsed row as the preview shows it


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
        required=("interaction_id", "offered_at", "ended_at"),
        optional=(
            "channel",
            "queue",
            "agent_no",
            "answered_at",
            "wrap_seconds",
            "hold_seconds",
            "customer_key",
            "transferred",
            "resolved",
        ),
        fields=INTERACTION_COLUMNS,
        parse=interaction_row,
        columns=INTERACTION_STORED,
        compare=tuple(c for c in INTERACTION_STORED if c not in ("source_id", "offered_day")),
        shown=interaction_shown,
    ),
    "surveys": Kind(
        "surveys",
        Survey,
        required=("survey_id", "interaction_id", "submitted_at"),
        optional=("csat", "nps", "comment"),
        fields=("survey_id", "interaction_id", "submitted_at", "csat", "nps", "comment"),
        parse=survey_row,
        columns=("source_id", "interaction_id", "csat", "nps", "submitted_at", "comment"),
        compare=("interaction_id", "csat", "nps", "submitted_at", "comment"),
        refs=True,
    ),
    "qa": Kind(
        "qa",
        QaEvaluation,
        required=(
            "evaluation_id",
            "interaction_id",
            "evaluator_no",
            "score",
            "evaluated_at",
            "red_line",
        ),
        optional=(),
        fields=(
            "evaluation_id",
            "interaction_id",
            "evaluator_no",
            "score",
            "evaluated_at",
            "red_line",
        ),
        parse=qa_row,
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
    ),
    "metric-values": Kind(
        "metric-values",
        SuppliedValue,
        required=("agent_no", "period", "metric_code", "value"),
        optional=(),
        fields=("agent_no", "period", "metric_code", "value"),
        parse=metric_value_row,
        columns=("agent_id", "period_key", "metric", "value"),
        compare=("value",),
        key=lambda row: f"{row[0]}|{row[1]}|{row[2]}",
    ),
}


# --- the pipeline ---------------------------------------------------------------------------


class Importer:
    """Writes one import's rows in batches and keeps its counts."""

    def __init__(self, kind: Kind, record: ImportRecord, *, fast: bool):
        self.kind, self.record, self.fast = kind, record, fast
        self.rejections: list[list] = []
        self.touched = stats.Touched(record.id)
        self.writing = True  # until a rejection makes the import's outcome a refusal
        self._positions = {c: i for i, c in enumerate(kind.columns)}
        self._copy = self._copying = None  # PostgreSQL: the fast attempt's open COPY
        self._fill: tuple = ()
        # Every row a fast attempt writes is new, with an id above the largest stored now.
        self.after_id = 0
        if fast:
            self.after_id = db.session.scalar(select(func.max(kind.model.id))) or 0

    def reject(self, number: int, reason: str) -> None:
        self.record.rejected += 1
        if len(self.rejections) < KEEP_REJECTIONS:
            self.rejections.append([number, reason])

    def write(self, batch: list[tuple[int, tuple]]) -> None:
        kind = self.kind
        if kind.refs:
            batch = self._resolve(batch)
        rows = list(map(_SECOND, batch))
        if len(set(map(kind.key, rows))) < len(rows):  # an id twice in this batch
            batch = self._without_repeated_keys(batch)
            rows = list(map(_SECOND, batch))
        if not self.writing or not rows:
            return
        if self.fast:
            self._insert(rows)
        else:
            self._upsert(batch)

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
                    Interaction.source_id.in_(wanted)
                )
            ).all()
        )
        resolved = []
        for number, row in batch:
            stored = found.get(row[1])
            if stored is None:
                self.reject(
                    number,
                    str(
                        _l(
                            "interaction_id '%(value)s' is not imported yet; import the "
                            "interactions first",
                            value=row[1],
                        )
                    ),
                )
                continue
            resolved.append((number, (row[0], stored, *row[2:])))
        return resolved

    def _duplicate(self, key: str, row: int | None) -> str:
        label = key.split("|")[-1] if self.kind.model is SuppliedValue else key
        if row is not None:
            return str(
                _l("%(key)s already appears in row %(row)s of this file", key=label, row=row)
            )
        return str(_l("%(key)s already appears in an earlier row of this file", key=label))

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
                    names, self._fill = _driver_columns(table, self.kind.columns, self.record.id)
                    cursor = db.session.connection().connection.driver_connection.cursor()
                    # Binary: the values need no formatting here nor parsing in the server.
                    self._copying = cursor.copy(
                        f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
                    )
                    self._copy = self._copying.__enter__()
                    self._copy.set_types([_BINARY_TYPES[type(table.c[n].type)] for n in names])
                write, fill = self._copy.write_row, self._fill
                for row in rows:
                    write(row + fill)
            else:
                _insert_rows(table, self.kind.columns, rows, import_id=self.record.id)
        except refused:
            raise _StoredAlready from None
        self.record.inserted += len(rows)
        self._track(rows)

    def finish(self) -> None:
        """End the attempt's COPY, if one is open: the database checks its rows now."""
        if self._copy is None:
            return
        copying, self._copy = self._copying, None
        try:
            copying.__exit__(None, None, None)
        except db.session.get_bind().dialect.dbapi.IntegrityError:
            raise _StoredAlready from None

    def abandon(self) -> None:
        """Cancel an open COPY (the attempt is being given up; its transaction follows)."""
        if self._copy is None:
            return
        copying, self._copy = self._copying, None
        with contextlib.suppress(Exception):
            copying.__exit__(RuntimeError, RuntimeError("import abandoned"), None)

    def _existing(self, rows: list[dict]) -> dict:
        """The stored rows of this batch's keys: plain rows, not ORM objects (fast, never
        stale after the bulk updates of earlier batches)."""
        model = self.kind.model
        fields = [getattr(model, f) for f in ("id", "import_id", *self.kind.compare)]
        if model is Interaction:
            fields.append(model.offered_day)
        if model is SuppliedValue:
            found = db.session.execute(
                select(model.agent_id, model.period_key, model.metric, *fields).where(
                    model.agent_id.in_({r["agent_id"] for r in rows}),
                    model.period_key.in_({r["period_key"] for r in rows}),
                )
            )
            return {f"{s.agent_id}|{s.period_key}|{s.metric}": s for s in found}
        found = db.session.execute(
            select(model.source_id, *fields).where(
                model.source_id.in_([r["source_id"] for r in rows])
            )
        )
        return {s.source_id: s for s in found}

    def _upsert(self, batch: list[tuple[int, tuple]]) -> None:
        kind, model, import_id = self.kind, self.kind.model, self.record.id
        named = [(number, dict(zip(kind.columns, row, strict=True))) for number, row in batch]
        existing = self._existing([row for _, row in named])
        inserts, updates = [], []
        changed = unchanged = 0
        for (number, row), (_, values) in zip(named, batch, strict=True):
            key = kind.key(values)
            old = existing.get(key)
            if old is not None and old.import_id == import_id:
                self.reject(number, self._duplicate(key, None))
                continue
            if old is None:
                inserts.append(values)
                continue
            if (
                model is QaEvaluation
                and old.score != old.original_score
                and row["original_score"] == old.original_score
            ):
                row["score"] = old.score  # changed on appeal, and unchanged at the source
            if any(_differs(getattr(old, f), row.get(f)) for f in kind.compare):
                changed += 1
            else:
                unchanged += 1
            if model is Interaction:  # the old times, day and agent change too
                self.touched.add_rows([old.offered_s], [old.offered_day], {old.agent_id})
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
    parsed = Parsed([], iter(()), lambda: "")
    collecting = gc.get_threshold()
    # The cycle collector would walk the millions of rows this makes, in vain: it runs a
    # hundred times less often while they are made.
    gc.set_threshold(collecting[0] * 100, *collecting[1:])
    try:
        parsed = _parse_apart(kind, source, batch_size) or _parse_here(
            kind, source, batch_size, filename
        )
        record.encoding = parsed.encoding.split(":")[0]
        known = set(kind.required) | set(kind.optional)
        record.unknown_columns = [c for c in parsed.columns if c and c not in known]
        for batch, rejected, rows_read, bytes_read in parsed.batches:
            record.rows_read = rows_read
            for number, reason in rejected:
                importer.reject(number, str(reason))
                if not (valid_only or dry_run):
                    importer.writing = False  # the file will be refused: only check the rest
            if dry_run and len(sample) < PREVIEW_ROWS:
                sample += [
                    {"row": n, **_shown(kind, r)} for n, r in batch[: PREVIEW_ROWS - len(sample)]
                ]
            importer.write(batch)
            if progress:
                progress(rows_read, bytes_read)
        if record.rows_read == 0:
            raise FileProblem(_l("The file has a header row but no data rows."))
        importer.finish()
    except FileProblem as exc:
        importer.abandon()
        if dry_run:
            return _preview(record, importer, kind, parsed.columns, sample, str(exc.message))
        return _finish_refused(record, importer, str(exc.message))
    finally:
        importer.abandon()
        gc.set_threshold(*collecting)
        parsed.close()
    if dry_run:
        return _preview(record, importer, kind, parsed.columns, sample, None)

    if record.rejected and not valid_only:
        return _finish_refused(
            record,
            importer,
            str(
                _l(
                    "%(n)s row(s) rejected, nothing imported. Fix them, or import the valid "
                    "rows only.",
                    n=record.rejected,
                )
            ),
        )
    _update_derived(importer)
    record.rejections = importer.rejections
    record.checksum = parsed.checksum()
    record.status, record.finished_at = "committed", utcnow()
    db.session.flush()
    return record


# --- parsing, in this process or beside it --------------------------------------------------

# (rows parsed, rejections as (row, reason), rows read so far, bytes read so far)
Batch = tuple[list[tuple[int, tuple]], list[tuple[int, object]], int, int]


@dataclass
class Parsed:
    """A file being parsed: its header, then its rows in batches, then its checksum."""

    columns: list[str]
    batches: Iterator[Batch]
    checksum: Callable[[], str]
    encoding: str = ""
    close: Callable[[], None] = lambda: None


def _parse_here(
    kind: Kind, source: io.BufferedIOBase | Table, batch_size: int, filename: str
) -> Parsed:
    hasher = hashlib.sha256()
    if isinstance(source, Table):
        table, reader = source, None
    else:
        reader = _HashingReader(source, hasher)
        table = open_table(io.BufferedReader(reader, BLOCK), filename)
    _check_header(kind, table.columns)

    def checksum() -> str:
        return table.encoding.split(":")[1] if reader is None else hasher.hexdigest()

    def bytes_read() -> int:
        return 0 if reader is None else reader.count

    batches = parse_batches(kind, table, Context.here(), batch_size, bytes_read)
    return Parsed(table.columns, batches, checksum, table.encoding)


def parse_batches(
    kind: Kind, table: Table, ctx: Context, size: int, bytes_read: Callable[[], int]
) -> Iterator[Batch]:
    """The table's rows parsed by the kind, `size` at a time, with the rows it refused."""
    values_of = _values_of(kind, table.columns)
    # A file whose columns are the kind's, in order, is parsed as read (rows of its width).
    as_read, width = tuple(table.columns) == kind.fields, len(table.columns)
    parse = kind.parse
    rows_read, batch, rejected = 0, [], []
    for number, values in table.rows:
        rows_read += 1
        try:
            if not as_read or len(values) != width:
                values = values_of(values)
            batch.append((number, parse(values, ctx)))
        except RowError as exc:
            rejected.append((number, exc.args[0]))
        if len(batch) >= size:
            yield batch, rejected, rows_read, bytes_read()
            batch, rejected = [], []
    if batch or rejected or not rows_read:
        yield batch, rejected, rows_read, bytes_read()


# On SQLite, files at least this large are parsed by a second process while this one writes:
# the database's work runs in this process too, and parsing beside it takes a third off a
# large import. PostgreSQL already works in a process of its own, so there it would only add
# the cost of passing the rows.
PARSE_APART_BYTES = 8 << 20
PIPE_BYTES = 1 << 20


def _parse_apart(kind: Kind, source, batch_size: int) -> Parsed | None:
    """Parse a large CSV file in a worker process (a fresh interpreter: nothing of this
    process is shared), receiving its batches through a pipe. None when the source is not
    such a file."""
    path = getattr(source, "name", None)
    if isinstance(source, Table) or not isinstance(path, str) or source.tell() != 0:
        return None
    if db.session.get_bind().dialect.name != "sqlite":
        return None
    try:
        if os.path.getsize(path) < PARSE_APART_BYTES or source.peek(4)[:4] == b"PK\x03\x04":
            return None
    except (OSError, AttributeError):
        return None
    ctx = Context.here()
    task = (os.path.abspath(path), kind.name, str(ctx.tz), ctx.agents(), batch_size)
    reading, writing = os.pipe()
    # Room for a whole batch in the pipe, so the worker parses the next one meanwhile instead
    # of waiting for this process to take the last (Linux; elsewhere the default size).
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(writing, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    worker = subprocess.Popen(
        [sys.executable, "-m", "portal.metrics.ingest", str(writing)],
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

    return Parsed(columns, batches(), lambda: checksum["sha256"], encoding, close)


def _parse_worker(out, path: str, kind_name: str, timezone: str, agents: dict, size: int):
    """The worker process: read and parse the file, send the batches. Reasons for refusing
    rows travel as lazy strings, translated by the importing process in its own language."""
    import traceback

    gc.disable()  # millions of short-lived tuples and no cycles: collecting finds nothing
    send = partial(pickle.dump, file=out, protocol=pickle.HIGHEST_PROTOCOL)
    kind = KINDS[kind_name]
    try:
        hasher = hashlib.sha256()
        with open(path, "rb") as raw:
            reader = _HashingReader(raw, hasher)
            table = open_table(io.BufferedReader(reader, BLOCK), path)
            _check_header(kind, table.columns)
            send(("table", table.encoding, table.columns))
            ctx = Context(timezone, agents)
            for batch in parse_batches(kind, table, ctx, size, lambda: reader.count):
                send(("batch", *batch))
        send(("end", hasher.hexdigest()))
    except FileProblem as exc:
        send(("problem", exc.message))
    except BrokenPipeError:
        pass  # the importing process stopped reading: nothing more to do
    except Exception:
        send(("error", traceback.format_exc(limit=5)))


def _check_header(kind: Kind, columns: list[str]) -> None:
    missing = [c for c in kind.required if c not in columns]
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    if not (missing or duplicated):
        return
    problem = []
    if missing:
        problem.append(_l("missing column(s): %(columns)s", columns=", ".join(missing)))
    if duplicated:
        problem.append(_l("column(s) named twice: %(columns)s", columns=", ".join(duplicated)))
    raise FileProblem(
        _l(
            "The header row has %(problems)s. It must name %(required)s (optional: %(optional)s).",
            problems="; ".join(str(p) for p in problem),
            required=", ".join(kind.required),
            optional=", ".join(kind.optional) or "—",
        )
    )


def _values_of(kind: Kind, columns: list[str]) -> Callable[[list], tuple]:
    """A function picking a row's values in the order the kind's parser takes them; columns
    the file lacks read as empty, and so do the missing cells of a short row."""
    width = len(columns)
    # A column the file lacks reads the empty cell appended to every row.
    pick = itemgetter(*(columns.index(f) if f in columns else width for f in kind.fields))
    complete = all(f in columns for f in kind.fields)

    def values_of(values: list) -> tuple:
        count = len(values)
        if count == width and complete:
            return pick(values)
        if count < width:
            values.extend([""] * (width - count))
        elif count > width:
            del values[width:]
        values.append("")
        return pick(values)

    return values_of


def _shown(kind: Kind, row: tuple) -> dict:
    named = dict(zip(kind.columns, row, strict=True))
    return kind.shown(named) if kind.shown else named


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
    rejections: list
    sample: list[dict]
    problem: str | None

    @property
    def importable(self) -> bool:
        return self.problem is None and (self.inserted + self.updated + self.unchanged) > 0


def _preview(record, importer, kind: Kind, columns, sample, problem) -> Preview:
    """Capture the dry run's outcome, then undo it."""
    known = set(kind.required) | set(kind.optional)
    preview = Preview(
        kind=kind.name,
        encoding=record.encoding,
        columns=[c for c in columns if c],
        missing=[c for c in kind.required if columns and c not in columns],
        unknown=[c for c in columns if c and c not in known],
        rows_read=record.rows_read,
        inserted=record.inserted,
        updated=record.updated,
        unchanged=record.unchanged,
        rejected=record.rejected,
        rejections=list(importer.rejections),
        sample=sample,
        problem=problem,
    )
    db.session.rollback()
    return preview


def _finish_refused(record: ImportRecord, importer: Importer, message: str) -> ImportRecord:
    """Undo every row; keep only the record of what was refused and why."""
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
        status="rejected",
        finished_at=utcnow(),
        message=message,
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
        changed = stats.refresh_repeats(touched.lo, touched.hi, import_id)
        if importer.fast:  # only new interactions: their sums are added to the days'
            stats.add_to_day_stats(import_id, importer.after_id)
        else:
            stats.rebuild_day_stats(touched.first_day, touched.last_day, touched.agents)
        if changed:
            stats.rebuild_day_stats(*changed)
        return
    if model in (Survey, QaEvaluation):
        affected = stats.affected_by_ratings(model.__table__, import_id)
        if affected:
            stats.rebuild_day_stats(*affected)
    # supplied values are read directly


class _HashingReader(io.RawIOBase):
    """Passes bytes through while computing the file's checksum and counting them."""

    def __init__(self, inner, hasher):
        self.inner, self.hasher, self.count = inner, hasher, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        self.hasher.update(data)
        self.count += len(data)
        buffer[: len(data)] = data
        return len(data)


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


if __name__ == "__main__":  # the parsing worker: python -m portal.metrics.ingest FD
    with os.fdopen(int(sys.argv[1]), "wb") as pipe:
        _parse_worker(pipe, *pickle.load(sys.stdin.buffer))
