"""Importing interactions, surveys, supplied metric values and QA evaluations (metrics.md §1–3).

One pipeline behind every door (upload, CLI, API, inbox): rows are read as a stream, checked one
by one, written in batches inside one transaction, and either all committed or — when any row is
rejected and the caller did not ask for the valid rows only — all rolled back. Re-importing the
same source ids updates those records, never duplicates them. Every run leaves an ImportRecord.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, select, text, update

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
BATCH = 2000
KEEP_REJECTIONS = 1000
MAX_SECONDS = 24 * 3600  # longer durations are absurd (metrics.md §1)


class RowError(ValueError):
    """Why one row is refused."""


# --- reading files as streams of rows -------------------------------------------------------


@dataclass
class Table:
    encoding: str
    columns: list[str]
    rows: Iterator[tuple[int, dict]]  # (row number as a spreadsheet shows it, values)


def _sniff_encoding(head: bytes) -> str:
    """Detect the encoding from the first bytes (decode_text refuses what it cannot read)."""
    encoding, _ = decode_text(_trim_partial(head))
    return encoding


def _trim_partial(head: bytes) -> bytes:
    """Cut a sample at its last newline so a multi-byte character is never split."""
    cut = head.rfind(b"\n")
    return head[: cut + 1] if cut > 0 and len(head) >= 65536 else head


def read_csv_stream(stream: io.BufferedIOBase) -> Table:
    head = stream.read(1 << 20)
    if not head.strip():
        raise FileProblem(_l("The file is empty. It needs a header row and data rows."))
    encoding = _sniff_encoding(head)
    rest = stream

    def chunks():
        yield head
        while block := rest.read(1 << 20):
            yield block

    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")

    def text_lines():
        pending = ""
        for block in chunks():
            pending += decoder.decode(block)
            *lines, pending = pending.split("\n")
            yield from (line + "\n" for line in lines)
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending

    reader = csv.reader(text_lines())
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem(_l("The file is empty. It needs a header row and data rows.")) from None
    columns = [h.strip().lower() for h in header]

    def rows():
        # Values are passed on as read: the row parsers strip what they use. A short row
        # simply lacks its last columns.
        number = 1
        try:
            for values in reader:
                number = reader.line_num
                if not "".join(values).strip():
                    continue
                yield number, dict(zip(columns, values, strict=False))
        except UnicodeDecodeError:
            raise FileProblem(
                _l(
                    "Row %(row)s is not valid %(encoding)s text. Save the whole file as CSV "
                    "UTF-8 and try again.",
                    row=number + 1,
                    encoding=encoding,
                )
            ) from None
        except csv.Error as exc:
            raise FileProblem(
                _l("Row %(row)s is not valid CSV: %(error)s", row=number + 1, error=str(exc))
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
            yield (
                number,
                {
                    name: cell(row[i]) if i < len(row) else ""
                    for i, name in enumerate(columns)
                    if name
                },
            )
        book.close()

    return Table("xlsx", columns, rows())


def open_table(stream: io.BufferedReader, filename: str) -> Table:
    """Read a CSV or XLSX stream, choosing by content (an .xlsx is a zip file)."""
    if stream.peek(4)[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        # A workbook is a zip archive, which needs random access: hold it in memory.
        return read_xlsx_stream(io.BytesIO(stream.read()))
    return read_csv_stream(stream)


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


def parse_optional_time(raw, tz: ZoneInfo, column: str) -> datetime | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return parse_time(raw, tz, column)


def parse_seconds(raw, column: str) -> float:
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


def parse_flag(raw, column: str, *, allow_empty: bool) -> bool | None:
    text = str(raw).strip().lower() if raw is not None else ""
    if text in ("1", "true", "yes", "y", "是"):
        return True
    if text in ("0", "false", "no", "n", "否"):
        return False
    if text == "" and allow_empty:
        return None
    if text == "":
        return False
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

    def __init__(self):
        self.tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
        self._agents: dict[str, int] | None = None

    def agent_id(self, agent_no: str, column: str = "agent_no") -> int:
        if self._agents is None:
            self._agents = {
                no.lower(): uid for uid, no in db.session.execute(select(User.id, User.agent_no))
            }
        found = self._agents.get(agent_no.lower())
        if found is None:
            raise RowError(
                _l(
                    "%(column)s '%(value)s' is not a known employee number",
                    column=column,
                    value=agent_no,
                )
            )
        return found


def interaction_row(v: dict, ctx: Context) -> dict:
    source_id = parse_id(v.get("interaction_id"), "interaction_id")
    channel = (str(v.get("channel") or "").strip().lower()) or "phone"
    if channel not in CHANNELS:
        raise RowError(
            _l(
                "channel '%(value)s' must be one of %(choices)s",
                value=channel,
                choices=", ".join(CHANNELS),
            )
        )
    agent_no = str(v.get("agent_no") or "").strip()
    offered = parse_time(v.get("offered_at"), ctx.tz, "offered_at")
    answered = parse_optional_time(v.get("answered_at"), ctx.tz, "answered_at")
    ended = parse_time(v.get("ended_at"), ctx.tz, "ended_at")
    if answered is not None and answered < offered:
        raise RowError(_l("answered_at is before offered_at"))
    if ended < (answered or offered):
        raise RowError(
            _l("ended_at is before %(column)s", column="answered_at" if answered else "offered_at")
        )
    if (ended - offered).total_seconds() > MAX_SECONDS:
        raise RowError(_l("the interaction lasts more than 24 hours"))
    queue = str(v.get("queue") or "").strip()
    customer = str(v.get("customer_key") or "").strip()
    if len(queue) > 64 or len(customer) > 128:
        raise RowError(_l("queue (64) or customer_key (128 characters) is too long"))
    wait_end = answered or ended
    return {
        "source_id": source_id,
        "channel": channel,
        "queue": queue,
        "agent_id": ctx.agent_id(agent_no) if agent_no else None,
        "offered_at": offered,
        "answered_at": answered,
        "ended_at": ended,
        "offered_day": offered.astimezone(ctx.tz).date(),
        "offered_s": offered.timestamp(),
        "ended_s": ended.timestamp(),
        "wait_s": (wait_end - offered).total_seconds(),
        "talk_s": (ended - answered).total_seconds() if answered else None,
        "wrap_s": parse_seconds(v.get("wrap_seconds"), "wrap_seconds"),
        "hold_s": parse_seconds(v.get("hold_seconds"), "hold_seconds"),
        "customer_key": customer or None,
        "transferred": parse_flag(v.get("transferred"), "transferred", allow_empty=False),
        "resolved": parse_flag(v.get("resolved"), "resolved", allow_empty=True),
    }


class _InteractionRefs:
    """interaction_id → internal id, for surveys and QA evaluations (looked up per batch)."""

    @staticmethod
    def resolve(rows: list[dict]) -> None:
        wanted = {r["_interaction"] for r in rows}
        found = dict(
            db.session.execute(
                select(Interaction.source_id, Interaction.id).where(
                    Interaction.source_id.in_(wanted)
                )
            ).all()
        )
        for r in rows:
            r["interaction_id"] = found.get(r["_interaction"])


def survey_row(v: dict, ctx: Context) -> dict:
    csat = parse_int(v.get("csat"), "csat", 1, 5, required=False)
    nps = parse_int(v.get("nps"), "nps", 0, 10, required=False)
    comment = str(v.get("comment") or "").strip()
    if len(comment) > 4000:
        raise RowError(_l("comment is longer than 4000 characters"))
    return {
        "source_id": parse_id(v.get("survey_id"), "survey_id"),
        "_interaction": parse_id(v.get("interaction_id"), "interaction_id"),
        "csat": csat,
        "nps": nps,
        "submitted_at": parse_time(v.get("submitted_at"), ctx.tz, "submitted_at"),
        "comment": comment,
    }


def qa_row(v: dict, ctx: Context) -> dict:
    try:
        score = float(v.get("score"))
    except (TypeError, ValueError):
        raise RowError(_l("score '%(value)s' is not a number", value=v.get("score"))) from None
    if not math.isfinite(score) or not 0 <= score <= 100:
        raise RowError(_l("score %(value)s must be from 0 to 100", value=v.get("score")))
    evaluator = str(v.get("evaluator_no") or "").strip()
    evaluated = parse_time(v.get("evaluated_at"), ctx.tz, "evaluated_at")
    return {
        "source_id": parse_id(v.get("evaluation_id"), "evaluation_id"),
        "_interaction": parse_id(v.get("interaction_id"), "interaction_id"),
        "evaluator_id": ctx.agent_id(evaluator, "evaluator_no") if evaluator else None,
        "score": score,
        "original_score": score,
        "evaluated_at": evaluated,
        "released_at": evaluated,  # imported evaluations are released as they arrive
        "red_line": parse_flag(v.get("red_line"), "red_line", allow_empty=False),
    }


SUPPLIED_RANGES = {
    "knowledge_contrib": (0, 1e6),
    "brand_sentiment": (0, 100),
    "soothing_rate": (0, 1),
}


def metric_value_row(v: dict, ctx: Context) -> dict:
    agent_no = str(v.get("agent_no") or "").strip()
    if not agent_no:
        raise RowError(_l("%(column)s is empty", column="agent_no"))
    try:
        period = parse_period(str(v.get("period") or ""))
    except PeriodKeyError:
        raise RowError(
            _l(
                "period '%(value)s' is not a period key; use 2026-11 (month), 2026-W47 "
                "(ISO week) or 2026-Q4",
                value=v.get("period"),
            )
        ) from None
    code = str(v.get("metric_code") or "").strip()
    if code not in SUPPLIED_CODES:
        raise RowError(
            _l(
                "metric_code '%(value)s' is not supplied from outside; use %(choices)s",
                value=code,
                choices=", ".join(SUPPLIED_CODES),
            )
        )
    try:
        value = float(v.get("value"))
    except (TypeError, ValueError):
        raise RowError(_l("value '%(value)s' is not a number", value=v.get("value"))) from None
    low, high = SUPPLIED_RANGES[code]
    if not math.isfinite(value) or not low <= value <= high:
        raise RowError(
            _l(
                "value %(value)s for %(code)s must be from %(low)s to %(high)s",
                value=v.get("value"),
                code=code,
                low=f"{low:g}",
                high=f"{high:g}",
            )
        )
    return {
        "agent_id": ctx.agent_id(agent_no),
        "period_key": period.key,
        "metric": code,
        "value": value,
        "source_id": f"{agent_no.lower()}|{period.key}|{code}",
    }


@dataclass(frozen=True)
class Kind:
    name: str
    model: type
    required: tuple[str, ...]
    optional: tuple[str, ...]
    parse: Callable[[dict, Context], dict]
    compare: tuple[str, ...]  # the stored fields an update may change
    refs: bool = False  # rows name an interaction by its source id


KINDS = {
    "interactions": Kind(
        "interactions",
        Interaction,
        ("interaction_id", "offered_at", "ended_at"),
        (
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
        interaction_row,
        (
            "channel",
            "queue",
            "agent_id",
            "offered_at",
            "answered_at",
            "ended_at",
            "wrap_s",
            "hold_s",
            "customer_key",
            "transferred",
            "resolved",
        ),
    ),
    "surveys": Kind(
        "surveys",
        Survey,
        ("survey_id", "interaction_id", "submitted_at"),
        ("csat", "nps", "comment"),
        survey_row,
        ("interaction_id", "csat", "nps", "submitted_at", "comment"),
        refs=True,
    ),
    "qa": Kind(
        "qa",
        QaEvaluation,
        ("evaluation_id", "interaction_id", "evaluator_no", "score", "evaluated_at", "red_line"),
        (),
        qa_row,
        ("interaction_id", "evaluator_id", "score", "original_score", "evaluated_at", "red_line"),
        refs=True,
    ),
    "metric-values": Kind(
        "metric-values",
        SuppliedValue,
        ("agent_no", "period", "metric_code", "value"),
        (),
        metric_value_row,
        ("value",),
    ),
}


# --- the pipeline ---------------------------------------------------------------------------


class Importer:
    """Writes one import's rows in batches and keeps its counts."""

    def __init__(self, kind: Kind, record: ImportRecord):
        self.kind, self.record = kind, record
        self.rejections: list[list] = []

    def reject(self, number: int, reason: str) -> None:
        self.record.rejected += 1
        if len(self.rejections) < KEEP_REJECTIONS:
            self.rejections.append([number, reason])

    def _existing(self, rows: list[dict]) -> dict:
        """The stored rows of this batch's keys: plain rows, not ORM objects (fast, never
        stale after the bulk updates of earlier batches)."""
        model = self.kind.model
        fields = [getattr(model, f) for f in ("id", "import_id", *self.kind.compare)]
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

    def write(self, batch: list[tuple[int, dict]]) -> None:
        kind, model, import_id = self.kind, self.kind.model, self.record.id
        rows = [r for _, r in batch]
        if kind.refs:
            _InteractionRefs.resolve(rows)
        if model is SuppliedValue:
            for r in rows:
                r["source_id"] = f"{r['agent_id']}|{r['period_key']}|{r['metric']}"
        existing = self._existing(rows)
        inserts, updates, seen = [], [], {}
        changed = unchanged = 0
        for number, row in batch:
            key = row["source_id"]
            if kind.refs and row["interaction_id"] is None:
                self.reject(
                    number,
                    str(
                        _l(
                            "interaction_id '%(value)s' is not imported yet; import the "
                            "interactions first",
                            value=row["_interaction"],
                        )
                    ),
                )
                continue
            old = existing.get(key)
            if key in seen or (old is not None and old.import_id == import_id):
                label = key.split("|")[-1] if model is SuppliedValue else key
                if key in seen:
                    reason = _l(
                        "%(key)s already appears in row %(row)s of this file",
                        key=label,
                        row=seen[key],
                    )
                else:
                    reason = _l("%(key)s already appears in an earlier row of this file", key=label)
                self.reject(number, str(reason))
                continue
            seen[key] = number
            row.pop("_interaction", None)  # resolved to interaction_id above
            if model is SuppliedValue:
                row.pop("source_id")
            row["import_id"] = import_id
            if old is None:
                inserts.append(row)
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
            row["id"] = old.id
            updates.append(row)
        record = self.record
        record.updated += changed
        record.unchanged += unchanged
        if inserts:
            _insert_rows(model.__table__, inserts)
            before, record.inserted = record.inserted, record.inserted + len(inserts)
            if any(before < mark <= record.inserted for mark in ANALYZE_AT):
                _analyze(model.__table__)
        if updates:
            db.session.execute(update(model), updates)


# A table that grows from empty is re-analyzed on the way, so PostgreSQL keeps using its
# indexes for the look-ups of later batches instead of planning for an empty table.
ANALYZE_AT = (10_000, 100_000, 1_000_000)


def _analyze(table) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"ANALYZE {table.name}"))


def _insert_rows(table, rows: list[dict]) -> None:
    """Insert one batch inside the import's transaction, through the driver: COPY on
    PostgreSQL, one executemany on SQLite. SQLAlchemy's per-row statement building would take
    longer than the database's own work at these volumes."""
    connection = db.session.connection()
    # The driver does not fill in column defaults, so they are added here.
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if c.default is not None and c.default.is_scalar and c.name not in rows[0]
    }
    names = [*rows[0]]
    columns = [*names, *defaults]
    fill = tuple(defaults.values())
    cursor = connection.connection.driver_connection.cursor()
    if connection.dialect.name == "postgresql":
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([*(row[c] for c in names), *fill])
        return
    converters = [(i, _sqlite_converter(table.c[c].type)) for i, c in enumerate(names)]
    converters = [(i, f) for i, f in converters if f is not None]

    def values(row: dict) -> list:
        out = [row[c] for c in names]
        for i, convert in converters:
            out[i] = convert(out[i])
        out.extend(fill)
        return out

    cursor.executemany(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        map(values, rows),
    )


def _sqlite_converter(type_):
    """How a Python value of `type_` becomes what SQLAlchemy stores in SQLite: times and days
    as text; numbers, text and booleans go to the driver as they are."""
    if isinstance(type_, UTCDateTime):
        return sqlite_utc_text
    if isinstance(type_, Date):
        return lambda day: None if day is None else day.isoformat()
    return None


def _differs(stored, new) -> bool:
    if isinstance(stored, float) or isinstance(new, float):
        return stored is None or new is None or abs(stored - new) > 1e-9
    return stored != new


def json_table(rows: list, checksum: str) -> Table:
    """Rows posted to the API: a list of objects keyed by the CSV column names."""

    def numbered():
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise FileProblem(
                    _l("Item %(n)s is not an object with the columns as keys.", n=number)
                )
            yield number, {str(k).strip().lower(): v for k, v in row.items()}

    columns = sorted({str(k).strip().lower() for row in rows if isinstance(row, dict) for k in row})
    return Table(f"json:{checksum}", columns, numbered())


def run_import(
    kind_name: str,
    source: io.BufferedIOBase | Table,
    *,
    filename: str,
    door: str,
    actor: User | None = None,
    valid_only: bool = False,
    progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
) -> ImportRecord | Preview:
    """Import one file of `kind_name`, leaving the data with its record, or only the record.

    With `dry_run`, everything is checked exactly as for real (duplicates against stored
    records included), then rolled back, and a Preview is returned instead."""
    kind = KINDS[kind_name]
    hasher = hashlib.sha256()
    if not isinstance(source, Table):
        source = io.BufferedReader(_HashingReader(source, hasher), 1 << 16)
    record = ImportRecord(
        kind=kind_name,
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
    importer = Importer(kind, record)
    columns: list[str] = []
    sample: list[dict] = []
    rows_read = 0  # counted here, not on the record: an ORM attribute per row is slow
    try:
        table = source if isinstance(source, Table) else open_table(source, filename)
        columns = table.columns
        record.encoding = table.encoding.split(":")[0]
        missing = [c for c in kind.required if c not in table.columns]
        duplicated = sorted({c for c in table.columns if c and table.columns.count(c) > 1})
        if missing or duplicated:
            problem = []
            if missing:
                problem.append(_l("missing column(s): %(columns)s", columns=", ".join(missing)))
            if duplicated:
                problem.append(
                    _l("column(s) named twice: %(columns)s", columns=", ".join(duplicated))
                )
            raise FileProblem(
                _l(
                    "The header row has %(problems)s. It must name %(required)s (optional: "
                    "%(optional)s).",
                    problems="; ".join(str(p) for p in problem),
                    required=", ".join(kind.required),
                    optional=", ".join(kind.optional) or "—",
                )
            )
        known = set(kind.required) | set(kind.optional)
        record.unknown_columns = [c for c in table.columns if c and c not in known]
        ctx = Context()
        batch: list[tuple[int, dict]] = []
        for number, values in table.rows:
            rows_read += 1
            try:
                batch.append((number, kind.parse(values, ctx)))
                if dry_run and len(sample) < PREVIEW_ROWS:
                    sample.append({"row": number, **batch[-1][1]})
            except RowError as exc:
                importer.reject(number, str(exc))
            if len(batch) >= BATCH:
                record.rows_read = rows_read
                importer.write(batch)
                batch = []
                if progress:
                    progress(rows_read)
        record.rows_read = rows_read
        if batch:
            importer.write(batch)
        if rows_read == 0:
            raise FileProblem(_l("The file has a header row but no data rows."))
    except FileProblem as exc:
        record.rows_read = rows_read
        if dry_run:
            return _preview(record, importer, kind, columns, sample, str(exc.message))
        return _finish_refused(record, importer, str(exc.message))
    if dry_run:
        return _preview(record, importer, kind, columns, sample, None)

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
    _update_derived(kind_name, record.id)
    record.rejections = importer.rejections
    record.checksum = (
        source.encoding.split(":")[1] if isinstance(source, Table) else hasher.hexdigest()
    )
    record.status, record.finished_at = "committed", utcnow()
    db.session.flush()
    return record


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


def _update_derived(kind_name: str, import_id: int) -> None:
    """Bring FCR flags and the daily sums up to date for what this import touched."""
    if kind_name == "interactions":
        stats.refresh_repeats(import_id)
        affected = stats.affected_by_interactions(import_id)
    elif kind_name in ("surveys", "qa"):
        table = (Survey if kind_name == "surveys" else QaEvaluation).__table__
        affected = stats.affected_by_ratings(table, import_id)
    else:
        return  # supplied values are read directly
    if affected:
        stats.rebuild_day_stats(*affected)


class _HashingReader(io.RawIOBase):
    """Passes bytes through while computing the file's checksum."""

    def __init__(self, inner, hasher):
        self.inner, self.hasher = inner, hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        self.hasher.update(data)
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
