"""Reading and checking the rows of data files (metrics.md §1–3), without a database.

Files are read as streams: the encoding is detected (UTF-8 with or without BOM, GB18030),
CSV and XLSX are read row by row, and each kind's rows are checked and turned into the values
the importer stores (portal/metrics/ingest.py). Nothing here needs the app or the database,
so that a large file can be parsed by a worker process of its own:
`python -m portal.metrics.parsing FD` reads its task from standard input and writes pickled
batches to the file descriptor FD.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import math
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from itertools import chain
from operator import itemgetter
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from portal.metrics.periods import FIRST_YEAR, LAST_YEAR, PeriodKeyError, parse_period
from portal.textfiles import FileProblem, decode_text

CHANNELS = ("phone", "chat", "email", "social")

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
MAX_SECONDS = 24 * 3600  # longer durations are absurd (metrics.md §1)
# Times outside the portal's years (FIRST_YEAR to LAST_YEAR) are refused like period keys.
EARLIEST_S = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC).timestamp()
LATEST_S = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()
BLOCK = 1 << 20  # bytes read at a time


class RowError(ValueError):
    """Why one row is refused."""


# --- reading files as streams of rows -------------------------------------------------------


@dataclass
class Table:
    encoding: str
    columns: list[str]
    rows: Iterator[list]  # each row's values, as read
    number: Callable[[], int]  # the number of the row last read, as a spreadsheet shows it
    blank_rows: bool = True  # rows of nothing but blanks are left out (files, not the API)
    # Why the table is refused before its header is checked (an API item that is no object).
    problem: object = None
    # Values may be lists or objects (the API's): a row holding one in a column read is refused.
    nested: bool = False


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
    # Values are passed on as read: the row parsers strip what they use. A short row simply
    # lacks its last columns. The reader is iterated directly: this runs for millions of rows.
    return Table(encoding, columns, reader, lambda: reader.line_num)


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

    current = [1]

    def rows():
        for current[0], row in enumerate(values, start=2):
            yield [cell(v) for v in row]
        book.close()

    return Table("xlsx", columns, rows(), lambda: current[0])


def open_table(stream: io.BufferedReader, filename: str) -> Table:
    """Read a CSV or XLSX stream, choosing by content (an .xlsx is a zip file)."""
    if stream.peek(4)[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        # A workbook is a zip archive, which needs random access: hold it in memory.
        return read_xlsx_stream(io.BytesIO(stream.read()))
    return read_csv_stream(stream)


def json_table(rows: list, checksum: str) -> Table:
    """Rows posted to the API: a list of objects keyed by the CSV column names."""
    columns = sorted({str(k).strip().lower() for row in rows if isinstance(row, dict) for k in row})
    # Named before the header is checked: the columns of a list of numbers say nothing useful.
    other = next((n for n, row in enumerate(rows, start=1) if not isinstance(row, dict)), None)
    problem = None
    if other is not None:
        problem = _l("Item %(n)s is not an object with the columns as keys.", n=other)

    current = [0]

    def values():
        for current[0], row in enumerate(rows, start=1):
            named = {str(k).strip().lower(): v for k, v in row.items()}
            yield [_json_value(named.get(c)) for c in columns]

    # An empty object is refused for its empty columns, as any other bad item.
    return Table(
        f"json:{checksum}",
        columns,
        values(),
        lambda: current[0],
        blank_rows=False,
        problem=problem,
        nested=True,
    )


def _json_value(value):
    """JSON values as a file would hold them: text, with numbers and flags written out. Lists
    and objects are kept as they are, for the row to be refused (parse_batches)."""
    if value is None:
        return ""
    if value is True or value is False:
        return "1" if value else "0"
    return value if isinstance(value, str | list | dict) else str(value)


def _refuse_nested(fields: tuple[str, ...], parse: Callable, values, ctx: Context) -> tuple:
    """Parse a row of the API's, unless a column read holds a list or an object."""
    for column, value in zip(fields, values, strict=True):
        if isinstance(value, list | dict):
            raise RowError(
                _l(
                    "%(column)s is a list or an object; give one value (text, number or "
                    "true/false)",
                    column=column,
                )
            )
    return parse(values, ctx)


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
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise _out_of_range(column, raw)
    return value.astimezone(UTC)


def _out_of_range(column: str, raw) -> RowError:
    return RowError(
        _l(
            "%(column)s '%(value)s' is not a time from %(first)s to %(last)s",
            column=column,
            value=str(raw).strip(),
            first=FIRST_YEAR,
            last=LAST_YEAR,
        )
    )


def _seconds_at(raw, tz: ZoneInfo, column: str, fromisoformat=datetime.fromisoformat) -> float:
    """A timestamp as seconds since the epoch: parse_time, without its detours for the usual
    text (a well-formed ISO 8601 string)."""
    try:
        value = fromisoformat(raw)
    except (TypeError, ValueError):
        value = parse_time(raw, tz, column)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise _out_of_range(column, raw)
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

    def __init__(self, timezone: str, agents: dict[str, int] | Callable[[], dict[str, int]]):
        self.tz = ZoneInfo(timezone)
        self._agents = agents  # employee number (lower case) → user id, or how to read them
        self.seen_agents: dict[str, int] = {}  # as written in the file
        self.days: dict[int, date] = {}  # by quarter hour since the epoch

    def agents(self) -> dict[str, int]:
        """Employee number (lower case) → user id, read once."""
        if callable(self._agents):
            self._agents = self._agents()
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
    if not EARLIEST_S <= offered_s < LATEST_S:
        raise _out_of_range("offered_at", offered)
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
SUPPLIED_CODES = tuple(SUPPLIED_RANGES)  # metrics supplied by other systems (metrics.md §3)


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
                "period '%(value)s' is not a period key of the years %(first)s to %(last)s; "
                "use 2026-11 (month), 2026-W47 (ISO week) or 2026-Q4",
                value=period_key,
                first=FIRST_YEAR,
                last=LAST_YEAR,
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
class Layout:
    """A kind of file: the columns it must and may have, and how a row is checked."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    fields: tuple[str, ...]  # the file's columns in the order `parse` takes them
    parse: Callable[[tuple, Context], tuple]

    @property
    def known(self) -> set[str]:
        return {*self.required, *self.optional}


LAYOUTS = {
    "interactions": Layout(
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
    ),
    "surveys": Layout(
        required=("survey_id", "interaction_id", "submitted_at"),
        optional=("csat", "nps", "comment"),
        fields=("survey_id", "interaction_id", "submitted_at", "csat", "nps", "comment"),
        parse=survey_row,
    ),
    "qa": Layout(
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
    ),
    "metric-values": Layout(
        required=("agent_no", "period", "metric_code", "value"),
        optional=(),
        fields=("agent_no", "period", "metric_code", "value"),
        parse=metric_value_row,
    ),
}


# --- parsing a table ------------------------------------------------------------------------

# (rows parsed, rejections as (row, reason), rows read so far, bytes read so far)
Batch = tuple[list[tuple[int, tuple]], list[tuple[int, object]], int, int]


def parse_batches(
    layout: Layout, table: Table, ctx: Context, size: int, bytes_read: Callable[[], int]
) -> Iterator[Batch]:
    """The table's rows parsed by the layout, `size` at a time, with the rows it refused."""
    values_of = _values_of(layout, table.columns)
    # A file whose columns are the layout's, in order, is parsed as read (rows of its width).
    as_read, width = tuple(table.columns) == layout.fields, len(table.columns)
    parse, number_of, skip_blank = layout.parse, table.number, table.blank_rows
    if table.nested:
        parse = partial(_refuse_nested, layout.fields, parse)
    rows_read, batch, rejected = 0, [], []
    try:
        for values in table.rows:
            first = values[0] if values else ""
            # The usual row starts with its source id: only others are looked at closer.
            if skip_blank and (first.__class__ is not str or not first.strip()) and _blank(values):
                continue
            number = number_of()
            rows_read += 1
            try:
                if not as_read or len(values) != width:
                    values = values_of(values)
                batch.append((number, parse(values, ctx)))
            except RowError as exc:
                rejected.append((number, exc.args[0]))
                # Refused rows come in batches too: a file of millions of them is not held.
                if len(rejected) < size:
                    continue
            else:
                if len(batch) < size:
                    continue
            yield batch, rejected, rows_read, bytes_read()
            batch, rejected = [], []
    except csv.Error as exc:
        raise FileProblem(
            _l("Row %(row)s is not valid CSV: %(error)s", row=number_of(), error=str(exc))
        ) from None
    if batch or rejected or not rows_read:
        yield batch, rejected, rows_read, bytes_read()


def _blank(values: list) -> bool:
    """A row of nothing but blanks (an empty line, or the ",,,," a spreadsheet leaves)."""
    return not "".join(str(v) for v in values).strip()


def parse_worker(out, path: str, kind: str, timezone: str, agents: dict, size: int) -> None:
    """The worker process: read and parse the file, send the batches. Reasons for refusing
    rows travel as lazy strings, translated by the importing process in its own language."""
    import traceback

    gc.disable()  # millions of short-lived tuples and no cycles: collecting finds nothing
    send = partial(pickle.dump, file=out, protocol=pickle.HIGHEST_PROTOCOL)
    layout = LAYOUTS[kind]
    try:
        hasher = hashlib.sha256()
        with open(path, "rb") as raw:
            reader = HashingReader(raw, hasher)
            table = open_table(io.BufferedReader(reader, BLOCK), path)
            check_header(layout, table.columns)
            send(("table", table.encoding, table.columns))
            ctx = Context(timezone, agents)
            for batch in parse_batches(layout, table, ctx, size, lambda: reader.count):
                send(("batch", *batch))
        send(("end", hasher.hexdigest()))
    except FileProblem as exc:
        send(("problem", exc.message))
    except BrokenPipeError:
        pass  # the importing process stopped reading: nothing more to do
    except Exception:
        send(("error", traceback.format_exc(limit=5)))


def check_header(layout: Layout, columns: list[str]) -> None:
    missing = [c for c in layout.required if c not in columns]
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    if not (missing or duplicated):
        return
    # Lazy strings all the way: the message is kept with the import and read in each reader's
    # language (portal/metrics/messages.py).
    lacking = _l("missing column(s): %(columns)s", columns=", ".join(missing))
    twice = _l("column(s) named twice: %(columns)s", columns=", ".join(duplicated))
    if missing and duplicated:
        problems = _l("%(first)s; %(second)s", first=lacking, second=twice)
    else:
        problems = lacking if missing else twice
    raise FileProblem(
        _l(
            "The header row has %(problems)s. It must name %(required)s (optional: %(optional)s).",
            problems=problems,
            required=", ".join(layout.required),
            optional=", ".join(layout.optional) or "—",
        )
    )


def _values_of(layout: Layout, columns: list[str]) -> Callable[[list], tuple]:
    """A function picking a row's values in the order the layout's parser takes them; columns
    the file lacks read as empty, and so do the missing cells of a short row."""
    width = len(columns)
    # A column the file lacks reads the empty cell appended to every row.
    pick = itemgetter(*(columns.index(f) if f in columns else width for f in layout.fields))
    complete = all(f in columns for f in layout.fields)

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


class HashingReader(io.RawIOBase):
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


if __name__ == "__main__":  # the parsing worker: python -m portal.metrics.parsing FD
    with os.fdopen(int(sys.argv[1]), "wb") as pipe:
        parse_worker(pipe, *pickle.load(sys.stdin.buffer))
