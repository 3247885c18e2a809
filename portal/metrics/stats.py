"""Set-based upkeep of derived data: FCR repeat flags and the daily sums every metric reads.

Nothing here loops over interactions in Python: each step is SQL over sets of rows, the same
on SQLite and PostgreSQL (times are compared as epoch seconds) except where one database has a
much faster way to the same rows (finding repeats: a hash join on PostgreSQL, an ordered pass
on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import (
    Column,
    Date,
    Float,
    MetaData,
    Table,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)

from portal.extensions import db
from portal.metrics.models import DayStats, Interaction, InteractionRepeat, QaEvaluation, Survey

AGGREGATE_WORK_MEM = "128MB"
I = Interaction.__table__  # noqa: E741 - the interactions table, as in the SQL it mirrors
R = InteractionRepeat.__table__
DAY = 86400.0
MAX_DURATION = DAY  # the importer refuses longer interactions (metrics.md §1)


@dataclass
class Touched:
    """What one import changed in the interactions table, gathered while it wrote: the offered
    times (new ones, and old ones of updated rows), agents (both), and local days."""

    import_id: int
    lo: float | None = None
    hi: float | None = None
    first_day: date | None = None
    last_day: date | None = None
    agents: set = field(default_factory=set)

    def add_rows(self, offered: list[float], days: list[date], agents: set) -> None:
        if not offered:
            return
        lo, hi, first, last = min(offered), max(offered), min(days), max(days)
        if self.lo is not None:
            lo, hi = min(lo, self.lo), max(hi, self.hi)
            first, last = min(first, self.first_day), max(last, self.last_day)
        self.lo, self.hi, self.first_day, self.last_day = lo, hi, first, last
        self.agents |= agents


# PostgreSQL: transactions that change repeats or daily sums take this lock first, in turn
# until they end. Two at once could each build on rows the other is replacing (an import
# adding to a day a QA release is rebuilding would lose its sums). SQLite has one writer.
UPKEEP_LOCK = 7_340_001


def _one_at_a_time() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPKEEP_LOCK})


def _day_range(lo: float, hi: float) -> tuple[date, date]:
    """Local days that surely contain every time from `lo` to `hi` (a day either side, so the
    index on offered_day narrows the scan whatever the time zone)."""
    first = datetime.fromtimestamp(lo, UTC).date() - timedelta(days=1)
    last = datetime.fromtimestamp(hi, UTC).date() + timedelta(days=1)
    return first, last


def refresh_repeats(
    lo: float, hi: float, import_id: int | None = None, *, only_added: bool = False
) -> tuple[date, date, set[int | None]] | None:
    """Bring `interaction_repeats` up to date after interactions offered from `lo` to `hi`
    (seconds since the epoch; old times of updated rows included) were written.

    An answered interaction a has a repeat when another interaction b of the same customer is
    offered with a.ended < b.offered <= a.ended + FCR_WINDOW_HOURS (metrics.md §4). Only rows
    that ended from lo − window to hi + 24 h can change: those of the import, and earlier
    ones whose window reaches a changed row. With `only_added` (the import only inserted
    rows) no repeat can disappear: the search for lost ones is skipped. Returns the days and
    agents of rows outside `import_id` whose repeat changed (their daily sums need
    rebuilding too), or None.

    Every "not among" below is NOT EXISTS, never NOT IN: PostgreSQL can only hash a NOT IN
    list that fits in work_mem, and otherwise compares each row with the whole list."""
    window = current_app.config["FCR_WINDOW_HOURS"] * 3600.0
    a_lo, a_hi = lo - window, hi + MAX_DURATION
    a_days = _day_range(a_lo - MAX_DURATION, a_hi)
    rows_lo, rows_hi = a_lo - MAX_DURATION, a_hi + window
    days = _day_range(rows_lo, rows_hi)
    params = {"w": window, "a_lo": a_lo, "a_hi": a_hi, "r_lo": rows_lo, "r_hi": rows_hi}
    params |= {"ad_lo": a_days[0], "ad_hi": a_days[1], "d_lo": days[0], "d_hi": days[1]}
    params["x"] = -1 if import_id is None else import_id
    _one_at_a_time()
    run = db.session.execute
    for name in ("fcr_new", "fcr_gone"):
        run(text(f"DROP TABLE IF EXISTS {name}"))
    if db.session.get_bind().dialect.name == "postgresql":
        _new_repeats_postgresql(params)
    else:
        _new_repeats_sqlite(params)
    stored = "EXISTS (SELECT 1 FROM interaction_repeats r WHERE r.interaction_id = {}.{})"
    new_is_stored = stored.format("n", "interaction_id")
    # Rows outside the import whose repeat changed: found now, lost (below) too.
    changed_ids = f"SELECT interaction_id FROM fcr_new n WHERE outside AND NOT {new_is_stored}"
    if not only_added:  # candidates that had a repeat and no longer have one
        run(
            text(
                f"CREATE TEMPORARY TABLE fcr_gone AS SELECT a.id AS interaction_id, {OUTSIDE} "
                "AS outside FROM interactions a WHERE a.offered_day BETWEEN :ad_lo AND :ad_hi "
                f"AND a.ended_s BETWEEN :a_lo AND :a_hi AND {stored.format('a', 'id')} "
                "AND NOT EXISTS (SELECT 1 FROM fcr_new n WHERE n.interaction_id = a.id)"
            ),
            params,
        )
        _analyze("fcr_gone")
        changed_ids += " UNION ALL SELECT interaction_id FROM fcr_gone WHERE outside"
    # Which days and agents changed outside the import (inside it, every row is rebuilt).
    changed = run(
        text(
            "SELECT agent_id, MIN(offered_day), MAX(offered_day) FROM interactions "
            f"WHERE id IN ({changed_ids}) GROUP BY agent_id"
        )
    ).all()
    if not only_added:
        run(
            text(
                "DELETE FROM interaction_repeats "
                "WHERE interaction_id IN (SELECT interaction_id FROM fcr_gone)"
            )
        )
    # Rows of an import that only inserted are new: none of them can be stored already.
    fresh = "NOT n.outside OR " if only_added else ""
    run(
        text(
            "INSERT INTO interaction_repeats (interaction_id) SELECT n.interaction_id "
            f"FROM fcr_new n WHERE {fresh}NOT {new_is_stored}"
        )
    )
    for name in ("fcr_new", "fcr_gone"):
        run(text(f"DROP TABLE IF EXISTS {name}"))
    if not changed:
        return None
    first, last = min(r[1] for r in changed), max(r[2] for r in changed)
    return _as_day(first), _as_day(last), {r[0] for r in changed}


def _as_day(value) -> date:
    """A day read by a textual query (SQLite gives the stored text, PostgreSQL a date)."""
    return value if isinstance(value, date) else date.fromisoformat(value)


# SQL: whether interaction a belongs to another import than the one being refreshed.
OUTSIDE = "(a.import_id IS NULL OR a.import_id <> :x)"


def _new_repeats_postgresql(params: dict) -> None:
    """The candidates' repeats as one semi-join, which PostgreSQL hashes with both cores
    (it runs CREATE TABLE … AS in parallel, never INSERT … SELECT)."""
    _analyze()
    db.session.execute(text(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'"))
    db.session.execute(text("SET LOCAL jit = off"))
    db.session.execute(
        text(
            f"CREATE TEMPORARY TABLE fcr_new AS SELECT a.id AS interaction_id, {OUTSIDE} "
            "AS outside FROM interactions a "
            "WHERE a.offered_day BETWEEN :ad_lo AND :ad_hi AND a.ended_s BETWEEN :a_lo AND :a_hi "
            "AND a.talk_s IS NOT NULL AND a.customer_key IS NOT NULL AND EXISTS ("
            "  SELECT 1 FROM interactions b WHERE b.customer_key = a.customer_key"
            "  AND b.offered_day BETWEEN :d_lo AND :d_hi"
            "  AND b.offered_s > a.ended_s AND b.offered_s <= a.ended_s + :w)"
        ),
        params,
    )
    _analyze("fcr_new")
    db.session.execute(text("RESET work_mem"))
    db.session.execute(text("RESET jit"))


def _new_repeats_sqlite(params: dict) -> None:
    """SQLite has no hash join: the rows of the window are copied, ordered by customer and
    time, into a temporary table clustered that way, and each candidate's next contact is
    read with LEAD in one pass. Only when the next contact began before the candidate ended
    (overlapping contacts) is the window searched, through the same clustered key."""
    run = db.session.execute
    run(text("DROP TABLE IF EXISTS temp.fcr_rows"))
    run(
        text(
            "CREATE TEMPORARY TABLE fcr_rows (customer_key TEXT, offered_s REAL, id INTEGER, "
            "ended_s REAL, candidate INTEGER, outside INTEGER, "
            "PRIMARY KEY (customer_key, offered_s, id)) WITHOUT ROWID"
        )
    )
    run(
        text(
            "INSERT INTO fcr_rows SELECT customer_key, offered_s, id, ended_s, "
            f"talk_s IS NOT NULL AND ended_s BETWEEN :a_lo AND :a_hi, {OUTSIDE} "
            "FROM interactions a WHERE customer_key IS NOT NULL "
            "AND offered_day BETWEEN :d_lo AND :d_hi AND offered_s BETWEEN :r_lo AND :r_hi "
            "ORDER BY 1, 2, 3"
        ),
        params,
    )
    run(
        text("CREATE TEMPORARY TABLE fcr_new (interaction_id INTEGER PRIMARY KEY, outside INTEGER)")
    )
    run(
        text(
            "INSERT INTO fcr_new SELECT id, outside FROM ("
            "  SELECT id, customer_key, ended_s, candidate, outside, LEAD(offered_s) OVER "
            "  (PARTITION BY customer_key ORDER BY offered_s, id) AS next_s FROM fcr_rows) w "
            "WHERE candidate AND ((next_s > ended_s AND next_s <= ended_s + :w) "
            "  OR (next_s <= ended_s AND EXISTS (SELECT 1 FROM fcr_rows b "
            "  WHERE b.customer_key = w.customer_key AND b.offered_s > w.ended_s "
            "  AND b.offered_s <= w.ended_s + :w)))"
        ),
        params,
    )
    run(text("DROP TABLE temp.fcr_rows"))


def _analyze(table: str = "interactions") -> None:
    """Refresh PostgreSQL's statistics after a bulk load, so it plans for the rows that are
    there now rather than for the empty table it last saw."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"ANALYZE {table}"))


IDS_AT_A_TIME = 5000  # ids named in one statement


def affected_by_ratings(
    table, import_id: int, unrated: set[int] = frozenset()
) -> tuple[date, date, set[int | None]] | None:
    """The days and agents of the interactions rated by a surveys or QA import, and of those
    (`unrated`) whose survey or evaluation the import moved to another interaction."""
    rated = select(table.c.interaction_id).where(table.c.import_id == import_id)
    spans = select(I.c.agent_id, func.min(I.c.offered_day), func.max(I.c.offered_day))
    rows = db.session.execute(spans.where(I.c.id.in_(rated)).group_by(I.c.agent_id)).all()
    unrated = sorted(unrated)
    for start in range(0, len(unrated), IDS_AT_A_TIME):  # within SQLite's parameter limit
        chunk = unrated[start : start + IDS_AT_A_TIME]
        rows += db.session.execute(spans.where(I.c.id.in_(chunk)).group_by(I.c.agent_id)).all()
    if not rows:
        return None
    return min(r[1] for r in rows), max(r[2] for r in rows), {r[0] for r in rows}


def _agent_filter(column, agents: set[int | None] | None):
    if agents is None:
        return true()
    known = [a for a in agents if a is not None]
    parts = [column.in_(known)] if known else []
    if None in agents:
        parts.append(column.is_(None))
    return or_(*parts) if parts else false()


SUM_COLUMNS = (
    "n_all",
    "n_short",
    "n_answered",
    "n_sl",
    "sum_wait",
    "sum_handle",
    "n_fcr",
    "n_transferred",
    "n_csat",
    "n_csat_pos",
    "n_nps",
    "n_nps_pro",
    "n_nps_det",
    "n_qa",
    "sum_qa",
)


def _day_sums(in_scope, *, ratings: bool = True):
    """SELECT of the daily sums (day, agent, queue, SUM_COLUMNS) of the interactions in scope.

    Up to four groupings by day, agent and queue, added up: the interactions themselves, the
    repeats among the answered ones (taken off the first-contact count), and the surveys and
    QA evaluations of the answered ones (left out with `ratings=False`). Joining each from its
    (smaller) table costs in proportion to it, not to every interaction."""
    cfg = current_app.config
    short, sl = cfg["SHORT_ABANDON_SECONDS"], cfg["SERVICE_LEVEL_SECONDS"]
    s, q = Survey.__table__, QaEvaluation.__table__
    answered = I.c.talk_s.is_not(None)
    keys = (I.c.offered_day.label("day"), I.c.agent_id.label("agent_id"), I.c.queue.label("queue"))
    group = (I.c.offered_day, I.c.agent_id, I.c.queue)

    def count_if(*conditions):
        return func.sum(case((and_(*conditions), 1), else_=0))

    def sum_if(value, *conditions):
        return func.coalesce(func.sum(case((and_(*conditions), value), else_=0)), 0)

    resolved_or_unknown = or_(I.c.resolved.is_(None), I.c.resolved == true())
    sums = {
        "n_all": func.count(),
        "n_short": count_if(~answered, I.c.wait_s <= short),
        "n_answered": count_if(answered),
        "n_sl": count_if(answered, I.c.wait_s <= sl),
        "sum_wait": sum_if(I.c.wait_s, answered),
        "sum_handle": sum_if(I.c.talk_s + I.c.wrap_s, answered),
        "n_fcr": count_if(answered, resolved_or_unknown),
        "n_transferred": count_if(answered, I.c.transferred == true()),
    }
    # Joined rows count when their interaction was answered. The condition sits in the sums,
    # not in WHERE, so that SQLite reads an interaction's row only when it has a rating.
    survey_sums = {
        "n_csat": count_if(answered, s.c.csat.is_not(None)),
        "n_csat_pos": count_if(answered, s.c.csat >= 4),
        "n_nps": count_if(answered, s.c.nps.is_not(None)),
        "n_nps_pro": count_if(answered, s.c.nps >= 9),
        "n_nps_det": count_if(answered, s.c.nps <= 6),
    }
    qa_sums = {"n_qa": count_if(answered), "sum_qa": sum_if(q.c.score, answered)}
    repeat_sums = {"n_fcr": func.sum(case((and_(answered, resolved_or_unknown), -1), else_=0))}

    def part(given: dict, *, joined):
        values = [given[n].label(n) if n in given else literal(0).label(n) for n in SUM_COLUMNS]
        return select(*keys, *values).select_from(joined).where(in_scope).group_by(*group)

    parts = [
        part(sums, joined=I),
        part(repeat_sums, joined=R.join(I, I.c.id == R.c.interaction_id)),
    ]
    if ratings:
        parts += [
            part(survey_sums, joined=s.join(I, I.c.id == s.c.interaction_id)),
            # Only released evaluations count: a QA's draft is not a score yet.
            part(
                qa_sums,
                joined=q.join(I, and_(I.c.id == q.c.interaction_id, q.c.status == "released")),
            ),
        ]
    united = union_all(*parts).subquery()
    return select(
        united.c.day,
        united.c.agent_id,
        united.c.queue,
        *(func.sum(united.c[n]).label(n) for n in SUM_COLUMNS),
    ).group_by(united.c.day, united.c.agent_id, united.c.queue)


def _sums_into(table: str, source) -> None:
    """Aggregate `source` into the temporary table `table`. PostgreSQL runs no part of an
    INSERT … SELECT in parallel, but does a CREATE TABLE … AS: the aggregate uses both cores,
    hashes in memory rather than sorting on disk, and JIT (slower here) is off. Measured on
    one month of 2 million interactions: 1.5 s → about 0.9 s."""
    connection = db.session.connection()
    # Literal values: days, agent ids and configured numbers only, all from the portal itself.
    compiled = source.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        db.session.execute(text(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'"))
        db.session.execute(text("SET LOCAL jit = off"))
    db.session.execute(text(f"DROP TABLE IF EXISTS {table}"))
    db.session.execute(text(f"CREATE TEMPORARY TABLE {table} AS {compiled}"))
    if postgresql:
        db.session.execute(text("RESET work_mem"))
        db.session.execute(text("RESET jit"))


def rebuild_day_stats(first: date, last: date, agents: set[int | None] | None = None) -> None:
    """Replace the daily sums of `first`..`last` for `agents` (None: everyone)."""
    _one_at_a_time()
    db.session.execute(
        delete(DayStats)
        .where(DayStats.day.between(first, last), _agent_filter(DayStats.agent_id, agents))
        .execution_options(synchronize_session=False)
    )
    in_scope = and_(I.c.offered_day.between(first, last), _agent_filter(I.c.agent_id, agents))
    source = _day_sums(in_scope)
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(
            insert(DayStats).from_select(["day", "agent_id", "queue", *SUM_COLUMNS], source)
        )
        return
    _sums_into("day_stats_new", source)
    names = ", ".join(["day", "agent_id", "queue", *SUM_COLUMNS])
    db.session.execute(
        text(f"INSERT INTO {DayStats.__tablename__} ({names}) SELECT {names} FROM day_stats_new")
    )
    db.session.execute(text("DROP TABLE day_stats_new"))


def add_to_day_stats(import_id: int, after_id: int) -> None:
    """Add the interactions an import inserted — all new, ids above `after_id` — to the daily
    sums. New interactions have no surveys or evaluations yet (those name stored ones), so
    only their own sums and repeats are added; every other interaction's share is unchanged
    (refresh_repeats reports those whose repeat changed, to be rebuilt)."""
    _one_at_a_time()
    _sums_into(
        "day_stats_add",
        _day_sums(and_(I.c.id > after_id, I.c.import_id == import_id), ratings=False),
    )
    same = (
        "a.day = interaction_day_stats.day AND a.queue = interaction_day_stats.queue "
        "AND a.agent_id IS NOT DISTINCT FROM interaction_day_stats.agent_id"
    )
    added = ", ".join(f"{n} = interaction_day_stats.{n} + a.{n}" for n in SUM_COLUMNS)
    db.session.execute(
        text(f"UPDATE interaction_day_stats SET {added} FROM day_stats_add a WHERE {same}")
    )
    names = ", ".join(["day", "agent_id", "queue", *SUM_COLUMNS])
    db.session.execute(
        text(
            f"INSERT INTO interaction_day_stats ({names}) SELECT {names} FROM day_stats_add a "
            f"WHERE NOT EXISTS (SELECT 1 FROM interaction_day_stats WHERE {same})"
        )
    )
    db.session.execute(text("DROP TABLE day_stats_add"))


def rebuild_all() -> int:
    """Recompute every derived value, e.g. after changing FCR_WINDOW_HOURS, the thresholds or
    PORTAL_TIMEZONE (each interaction's local day first); returns how many interactions
    changed their day."""
    _one_at_a_time()
    redated = redate_interactions()
    lo, hi, first, last = db.session.execute(
        select(
            func.min(I.c.offered_s),
            func.max(I.c.offered_s),
            func.min(I.c.offered_day),
            func.max(I.c.offered_day),
        )
    ).one()
    db.session.execute(delete(R).execution_options(synchronize_session=False))
    db.session.execute(delete(DayStats).execution_options(synchronize_session=False))
    if lo is not None:
        refresh_repeats(lo, hi)
        rebuild_day_stats(first, last)
    return redated


# Local midnights: the day that starts at each (a temporary table of that name).
DAY_STARTS = Table(
    "day_starts",
    MetaData(),
    Column("start_s", Float, primary_key=True),
    Column("day", Date),
    prefixes=["TEMPORARY"],
)


def redate_interactions() -> int:
    """Give every interaction the local day of its offered time in PORTAL_TIMEZONE, as the
    importer does (after the time zone was changed); returns how many rows changed. The
    zone's midnights over the stored times go into a small table, and each row takes the
    day of the last midnight before it: the same statement on both databases, and the same
    days as the importer's (both from Python's zoneinfo)."""
    lo, hi = db.session.execute(select(func.min(I.c.offered_s), func.max(I.c.offered_s))).one()
    if lo is None:
        return 0
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    day = datetime.fromtimestamp(lo, tz).date()
    last = datetime.fromtimestamp(hi, tz).date()
    starts = []
    while day <= last:
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        starts.append({"start_s": midnight.timestamp(), "day": day})
        day += timedelta(days=1)
    connection = db.session.connection()
    DAY_STARTS.drop(connection, checkfirst=True)
    DAY_STARTS.create(connection)
    db.session.execute(DAY_STARTS.insert(), starts)
    local_day = (
        select(DAY_STARTS.c.day)
        .where(DAY_STARTS.c.start_s <= I.c.offered_s)
        .order_by(DAY_STARTS.c.start_s.desc())
        .limit(1)
        .scalar_subquery()
    )
    changed = db.session.execute(
        update(I).where(I.c.offered_day != local_day).values(offered_day=local_day)
    ).rowcount
    DAY_STARTS.drop(connection)
    return changed
