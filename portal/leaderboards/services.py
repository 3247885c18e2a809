"""Leaderboards and the awards wall: who stands where on a period's results, read live while
the period is open (provisional) and from its frozen snapshot once closed.

A page loads the period's results once (`period_results`) and builds the board asked for from
them in memory (`board`). Names, teams and who may appear (`people`) and the plans' period
kinds are read at most LEADERBOARD_REREAD_SECONDS ago by each process. Every board costs the
same few queries whatever its length. Only active people holding the agent role appear on a
board; ranks are standard competition ranks (1, 2, 2, 4) among the people the board shows, on
the value as shown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Row, and_, bindparam, exists, func, select
from sqlalchemy.orm import joinedload

from portal.accounts.models import Position, Role, Team, User, UserRole
from portal.awards.models import Award
from portal.cache import Memo, Timed
from portal.db import utcnow
from portal.extensions import db
from portal.ledger.models import PointsEntry
from portal.metrics.compute import LOWER_IS_BETTER
from portal.metrics.periods import KINDS, Period
from portal.periods.models import PeriodRow, ResultRow, ResultsVersion
from portal.periods.results import frozen_team_id
from portal.periods.services import visible_results
from portal.scoring import engine
from portal.scoring.models import Plan, PlanVersion
from portal.scoring.services import all_results
from portal.web.pages import Page, paginate

# Boards built from a period's results, and boards of the points ledger.
RESULT_BOARDS = ("final", "metric", "improved", "teams")
AGENT_BOARDS = ("final", "metric", "improved")  # lines are agents (on "teams": teams)
POINTS_BOARDS = ("points", "points_all")
BOARDS = RESULT_BOARDS + POINTS_BOARDS
NEIGHBOURS = 2  # humane mode: people shown above and below the viewer
PER_PAGE = 50


# --- a period's results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """One agent's result for a period, live or frozen, as the boards read it."""

    agent_id: int
    team_id: int | None  # the team the result counts for
    position: str
    cohort: str
    final: float | None  # as shown (2 decimals)
    eligible: bool  # ranked: enough volume (scoring.md §6)
    values: dict[str, float]  # the values of the scorecard lines that count, in plan order


@dataclass
class Results:
    """What a viewer sees of a period: `kind` provisional (computed live), final (results
    version `version`) or awaiting (closed, not published: nothing yet). `key` names frozen
    results (the version and who is left out of it): boards built from them are kept."""

    period: Period
    kind: str
    version: int | None = None
    standings: Sequence[Standing] = ()
    key: tuple | None = None
    computed_at: datetime | None = None  # provisional results: when they were scored
    _index: dict[int, Standing] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def provisional(self) -> bool:
        return self.kind == "provisional"

    @property
    def awaiting(self) -> bool:
        return self.kind == "awaiting"

    def of(self, agent_id: int) -> Standing | None:
        if self._index is None:  # results are kept between requests: index them once
            self._index = {s.agent_id: s for s in self.standings}
        return self._index.get(agent_id)


def reread_seconds() -> int:
    """LEADERBOARD_REREAD_SECONDS: how old names, teams and settings may be on a board."""
    return current_app.config["LEADERBOARD_REREAD_SECONDS"]


_reread = Timed()


def plan_kinds() -> list[str]:
    """The period kinds the plans run on, monthly first."""

    def read() -> list[str]:
        found = set(db.session.scalars(select(Plan.period_kind).distinct()))
        return [kind for kind in KINDS if kind in found]

    return _reread.get(("kinds", db.engine.url), reread_seconds(), read)


@dataclass(frozen=True)
class People:
    """What boards show of people and teams: everyone's name and employee number, who is left
    out (inactive, or without the agent role) and the teams' names."""

    names: dict[int, tuple[str, str]]
    left_out: frozenset[int]
    teams: dict[int, str]


def people() -> People:
    """People and teams as read at most LEADERBOARD_REREAD_SECONDS ago by this process."""

    def read() -> People:
        found = db.session.execute(
            select(User.id, User.name, User.agent_no, _is_agent().label("agent"))
        ).all()
        return People(
            names={r.id: (r.name, r.agent_no) for r in found},
            left_out=frozenset(r.id for r in found if not r.agent),
            teams=dict(db.session.execute(select(Team.id, Team.name)).all()),
        )

    return _reread.get(("people", db.engine.url), reread_seconds(), read)


# The period's state and its results versions, in one query at every request: whether it is
# closed and which version a viewer sees must always be current. Plain columns, not a PeriodRow
# (a page needs three of its twenty-two), read through the session's connection.
_PERIOD_STATE = (
    select(
        PeriodRow.closed_at,
        PeriodRow.results_version,
        PeriodRow.published_version,
        ResultsVersion.number,
        ResultsVersion.id,
        ResultsVersion.token,
    )
    .outerjoin(ResultsVersion, ResultsVersion.period_id == PeriodRow.id)
    .where(PeriodRow.key == bindparam("key"))
)


def period_state(key: str) -> tuple[Row | None, dict[int, tuple[int, str]]]:
    """The period's closed_at, results_version and published_version (None when it has no
    row yet), as `periods.services.visible_results` reads them, and its results versions:
    number → the version's id and token, which name its rows for what a process keeps."""
    found = db.session.connection().execute(_PERIOD_STATE, {"key": key}).all()
    if not found:
        return None, {}
    versions = {r.number: (r.id, r.token) for r in found if r.number is not None}
    return found[0], versions


def live_standings(period: Period) -> list[Standing]:
    """Every plan's provisional results for `period`, computed now (scoring.services.
    all_results scores only the active agents of each position)."""
    return [
        Standing(
            agent_id=result.key,
            team_id=found.agents[result.key].team_id,
            position=found.position.name,
            cohort=result.cohort,
            final=result.final_shown,
            eligible=result.eligible,
            values={
                line.metric: line.value
                for line in result.lines
                if line.included and line.value is not None
            },
        )
        for found in all_results(period)
        for result in found.results
    ]


# Scoring an open period for every agent takes a good part of a second at 1,000 agents, far
# too long for a page many people open at once; a process keeps a provisional board's results
# for LEADERBOARD_LIVE_SECONDS (0: score at every request) and the board says when it was
# scored. Agents' own dashboards are always scored afresh.
_live = Memo(8)


def live_results(period: Period) -> Results:
    """The period's provisional results, scored at most LEADERBOARD_LIVE_SECONDS ago (kept
    with the boards built from them for as long)."""
    seconds = current_app.config["LEADERBOARD_LIVE_SECONDS"]
    now = utcnow()
    if not seconds:
        return Results(period, "provisional", None, live_standings(period), computed_at=now)
    key = ("live", period.key, int(now.timestamp() // seconds), db.engine.url)
    return _live.get(
        key,
        lambda: Results(
            period, "provisional", None, tuple(live_standings(period)), key, computed_at=now
        ),
    )


def _is_agent():
    """Active people holding the agent role (admin-only and inactive accounts are left out)."""
    return and_(
        User.active.is_(True),
        exists().where(UserRole.user_id == User.id, UserRole.role == Role.AGENT.value),
    )


# A results version never changes once written, so a process reads each one from the
# database once and keeps it, with the boards built from it. It is named by its id and random
# token, so a database emptied or restored under a running process (the tests empty theirs
# after every test) cannot serve another one's rows. Who is left out (inactive, no agent role)
# and everyone's name come from `people`. (Rows frozen before the team was recorded count for
# the agent's team when first read.)
_snapshots = Memo(16)
_frozen = Memo(64)
_boards = Memo(256)


def _load_snapshot(version_id: int) -> tuple[tuple[Standing, ...], frozenset[int]]:
    team_id = frozen_team_id()
    found = db.session.execute(
        select(
            ResultRow.agent_id,
            team_id.label("team_id"),
            Position.name.label("position"),
            ResultRow.cohort,
            ResultRow.final,
            ResultRow.eligible,
            ResultRow.lines,
        )
        .join(User, User.id == ResultRow.agent_id)
        .join(PlanVersion, PlanVersion.id == ResultRow.plan_version_id)
        .join(Plan, Plan.id == PlanVersion.plan_id)
        .join(Position, Position.id == Plan.position_id)
        .where(ResultRow.version_id == version_id)
    )
    standings = tuple(
        Standing(
            agent_id=r.agent_id,
            team_id=r.team_id,
            position=r.position,
            cohort=r.cohort,
            final=engine.rounded(r.final),
            eligible=r.eligible,
            values={
                line["metric"]: line["value"]
                for line in r.lines
                if line["included"] and line["value"] is not None
            },
        )
        for r in found
    )
    return standings, frozenset(s.agent_id for s in standings)


def frozen_results(
    period: Period, number: int, version: tuple[int, str] | None, left_out: frozenset[int]
) -> Results:
    """Results version `number` (`version`: its id and token) of a closed period, without the
    people `left_out` (no longer active agents)."""
    if version is None:
        return Results(period, "final", number)
    snapshot, agent_ids = _snapshots.get(version, lambda: _load_snapshot(version[0]))
    gone = left_out & agent_ids
    key = (version, gone)

    def build() -> Results:
        standings = [s for s in snapshot if s.agent_id not in gone] if gone else snapshot
        return Results(period, "final", number, standings, key)

    return _frozen.get(key, build)


def period_results(period: Period, viewer: User, found: People) -> Results:
    """The period's results as `viewer` may see them (periods.services.visible_results):
    computed live until it is closed, then the snapshot version they are shown, or nothing
    while an agent waits for the publication."""
    row, versions = period_state(period.key)
    visible = visible_results(row, viewer)
    if visible.kind == "provisional" or row is None:
        return live_results(period)
    if visible.kind == "awaiting":
        return Results(period, "awaiting")
    return frozen_results(period, visible.version, versions.get(visible.version), found.left_out)


# --- boards ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a board: an agent (or a team on the team board), the value ranked and its
    rank. Names are filled in (`describe`) for the lines shown only."""

    key: int  # the agent's id (the team's on the team board)
    value: float
    rank: int = 0
    team_id: int | None = None
    cohort: str = ""
    previous: float | None = None  # most improved: last period's final
    final: float | None = None  # most improved: this period's final
    members: int | None = None  # team board: members counted
    name: str = ""
    agent_no: str = ""
    team: str = ""


def rank(entries: Iterable[Entry], descending: bool = True) -> list[Entry]:
    """Standard competition ranking (1, 2, 2, 4) on `value`, ties in a stable order."""
    ordered = sorted(entries, key=lambda e: (-e.value if descending else e.value, e.key))
    ranked, current, previous = [], 0, None
    for position, entry in enumerate(ordered, start=1):
        if entry.value != previous:
            current, previous = position, entry.value
        ranked.append(replace(entry, rank=current))
    return ranked


@dataclass(frozen=True)
class Group:
    """Whom a board compares: a cohort (position and new or regular, the official ranking),
    a whole position, or a team."""

    key: str  # cohort:<cohort> | position:<name> | team:<id>
    kind: str  # cohort | position | team
    label: str


def _group_keys(standings: Iterable[Standing]) -> tuple[list[str], list[str], set[int]]:
    cohorts, positions, team_ids = set(), set(), set()
    for s in standings:
        cohorts.add(s.cohort)
        positions.add(s.position)
        if s.team_id is not None:
            team_ids.add(s.team_id)
    return sorted(cohorts), sorted(positions), team_ids


def groups(results: Results, teams: dict[int, str]) -> list[Group]:
    """The cohorts, positions and teams of the results, to choose whom a board compares."""
    if results.key is None:
        cohorts, positions, team_ids = _group_keys(results.standings)
    else:
        cohorts, positions, team_ids = _boards.get(
            (results.key, "groups"), lambda: _group_keys(results.standings)
        )
    return (
        [Group(f"cohort:{c}", "cohort", c) for c in cohorts]
        + [Group(f"position:{p}", "position", p) for p in positions]
        + [
            Group(f"team:{team_id}", "team", name)
            for name, team_id in sorted((teams.get(t, ""), t) for t in team_ids)
        ]
    )


def default_group(results: Results, viewer: User) -> str:
    """The viewer's own cohort when they have a result, else the largest cohort."""
    own = results.of(viewer.id)
    if own is not None:
        return f"cohort:{own.cohort}"
    sizes: dict[str, int] = {}
    for standing in results.standings:
        sizes[standing.cohort] = sizes.get(standing.cohort, 0) + 1
    if not sizes:
        return ""
    return "cohort:" + min(sizes, key=lambda cohort: (-sizes[cohort], cohort))


def in_group(standings: Iterable[Standing], group: str) -> list[Standing]:
    """The standings of `group` (a Group key)."""
    kind, _sep, value = group.partition(":")
    if kind == "cohort":
        return [s for s in standings if s.cohort == value]
    if kind == "position":
        return [s for s in standings if s.position == value]
    if kind == "team":
        return [s for s in standings if str(s.team_id) == value]
    return []


def metrics_of(standings: Iterable[Standing]) -> list[str]:
    """The scorecard metrics that anyone of `standings` has a value for, in plan order."""
    found: dict[str, None] = {}
    for standing in standings:
        for metric in standing.values:
            found.setdefault(metric, None)
    return list(found)


def _entry(standing: Standing, value: float, **extra) -> Entry:
    return Entry(
        key=standing.agent_id,
        value=value,
        team_id=standing.team_id,
        cohort=standing.cohort,
        **extra,
    )


def final_board(standings: Iterable[Standing]) -> list[Entry]:
    """Ranked agents by final score."""
    return rank(_entry(s, s.final) for s in standings if s.eligible and s.final is not None)


def metric_board(standings: Iterable[Standing], metric: str) -> list[Entry]:
    """Ranked agents by one scorecard metric's value, best first (lower first for the
    metrics where lower is better), among those whose line counts."""
    return rank(
        (
            _entry(s, round(s.values[metric], 4))
            for s in standings
            if s.eligible and metric in s.values
        ),
        descending=metric not in LOWER_IS_BETTER,
    )


def improved_board(standings: Iterable[Standing], before: Iterable[Standing]) -> list[Entry]:
    """Ranked agents by the rise of their final over the previous closed period, among those
    ranked in both whose final rose (scoring.md §7: both periods ranked)."""
    previous = {s.agent_id: s.final for s in before if s.eligible and s.final is not None}
    entries = []
    for s in standings:
        if s.eligible and s.final is not None and s.agent_id in previous:
            rise = engine.rounded(s.final - previous[s.agent_id])
            if rise > 0:
                entries.append(_entry(s, rise, previous=previous[s.agent_id], final=s.final))
    return rank(entries)


def team_board(standings: Iterable[Standing]) -> list[Entry]:
    """Ranked teams by the mean final of their ranked members."""
    finals: dict[int, list[float]] = {}
    for s in standings:
        if s.eligible and s.final is not None and s.team_id is not None:
            finals.setdefault(s.team_id, []).append(s.final)
    return rank(
        Entry(
            key=team_id,
            value=engine.rounded(math.fsum(values) / len(values)),
            team_id=team_id,
            members=len(values),
        )
        for team_id, values in finals.items()
    )


def board(
    results: Results,
    code: str,
    group: str = "",
    metric: str = "",
    before: Results | None = None,
) -> list[Entry]:
    """Board `code` ("final", "metric", "improved" against `before`, "teams") of the results;
    the boards of frozen results are built once per process."""

    def build() -> list[Entry]:
        if code == "teams":
            return team_board(results.standings)
        members = in_group(results.standings, group)
        if code == "metric":
            return metric_board(members, metric)
        if code == "improved":
            return improved_board(members, before.standings) if before is not None else []
        return final_board(members)

    if results.key is None or (before is not None and before.key is None):
        return build()
    return _boards.get((results.key, code, group, metric, before.key if before else None), build)


def describe(entries: Iterable[Entry | None], found: People, agents: bool) -> list:
    """The lines shown, with names: agents' names and employee numbers and team names. None
    (a gap in humane mode) stays None."""
    described = []
    for e in entries:
        if e is None:
            described.append(None)
        elif agents:
            name, agent_no = found.names.get(e.key, ("", ""))
            described.append(
                replace(e, name=name, agent_no=agent_no, team=found.teams.get(e.team_id, ""))
            )
        else:
            described.append(replace(e, name=found.teams.get(e.team_id, e.name)))
    return described


def period_window(period: Period) -> tuple[datetime, datetime]:
    """The period's first and last day as UTC instants (from, to exclusive), counted in the
    portal's time zone."""
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    start = datetime.combine(period.first_day, time(0), tzinfo=tz)
    end = datetime.combine(period.last_day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


@dataclass(frozen=True)
class PointsHolder:
    """An agent's points sum on a points board, with the team and position they have now."""

    agent_id: int
    name: str
    agent_no: str
    team_id: int | None
    team: str
    position: str
    points: int


def points_holders(period: Period | None) -> list[PointsHolder]:
    """Each agent's sum of the points ledger, over all time (`period` None) or over the
    entries made within the period's days; agents without entries are not listed."""
    total = func.sum(PointsEntry.points)
    query = (
        select(User.id, User.name, User.agent_no, User.team_id, Team.name, Position.name, total)
        .join(User, User.id == PointsEntry.user_id)
        .outerjoin(Team, Team.id == User.team_id)
        .outerjoin(Position, Position.id == User.position_id)
        .where(_is_agent())
        .group_by(User.id, User.name, User.agent_no, User.team_id, Team.name, Position.name)
    )
    if period is not None:
        start, end = period_window(period)
        query = query.where(PointsEntry.created_at >= start, PointsEntry.created_at < end)
    return [
        PointsHolder(agent_id, name, agent_no, team_id, team or "", position or "", int(points))
        for agent_id, name, agent_no, team_id, team, position, points in db.session.execute(query)
    ]


def points_groups(holders: Iterable[PointsHolder]) -> list[Group]:
    holders = list(holders)
    positions = sorted({h.position for h in holders if h.position})
    teams = sorted({(h.team, h.team_id) for h in holders if h.team_id is not None})
    return [Group(f"position:{p}", "position", p) for p in positions] + [
        Group(f"team:{team_id}", "team", name) for name, team_id in teams
    ]


def points_board(holders: Iterable[PointsHolder], group: str = "") -> list[Entry]:
    """Ranked agents by points; `group` "" is everyone, else a position or a team."""
    kind, _sep, value = group.partition(":")

    def keep(h: PointsHolder) -> bool:
        if kind == "position":
            return h.position == value
        if kind == "team":
            return str(h.team_id) == value
        return True

    return rank(
        Entry(key=h.agent_id, name=h.name, agent_no=h.agent_no, team=h.team, value=h.points)
        for h in holders
        if keep(h)
    )


# --- what a viewer sees of a board ----------------------------------------------------------


@dataclass
class Shown:
    """The lines of a board a viewer sees: `rows` are entries, with None where lines are
    left out (humane mode); `mine` is the viewer's own entry wherever it is."""

    rows: list[Entry | None]
    mine: Entry | None
    total: int
    page: Page | None  # None in humane mode: one short list


def _position(entries: list[Entry], mine: int | None) -> int | None:
    if mine is None:
        return None
    return next((i for i, e in enumerate(entries) if e.key == mine), None)


def humane(entries: list[Entry], mine: int | None, top_n: int) -> list[Entry | None]:
    """The top `top_n`, then the viewer's own neighbourhood (±NEIGHBOURS) when it lies below;
    a None marks the lines left out between them. Never the rest of the list."""
    keep = set(range(min(top_n, len(entries))))
    at = _position(entries, mine)
    if at is not None:
        keep.update(range(max(0, at - NEIGHBOURS), min(len(entries), at + NEIGHBOURS + 1)))
    rows: list[Entry | None] = []
    for i in sorted(keep):
        if rows and i - 1 not in keep:
            rows.append(None)
        rows.append(entries[i])
    return rows


def shown(
    entries: list[Entry],
    mine: int | None,
    *,
    humane_mode: bool,
    top_n: int,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Shown:
    """What the viewer whose line has key `mine` (None: they have none) sees of a board."""
    at = _position(entries, mine)
    own = entries[at] if at is not None else None
    if humane_mode:
        return Shown(humane(entries, mine, top_n), own, len(entries), None)
    found = paginate(entries, page, per_page)
    return Shown(list(found.items), own, len(entries), found)


# --- the awards wall ------------------------------------------------------------------------


def published_awards(page: int, per_page: int = 30):
    """Published awards, newest period first, with holder, team, type and period loaded in
    the same query (the wall's page runs a fixed number of queries)."""
    return db.paginate(
        select(Award)
        .join(PeriodRow, PeriodRow.id == Award.period_id)
        .options(joinedload(Award.agent).joinedload(User.team))
        .where(Award.status == "published")
        .order_by(
            PeriodRow.last_day.desc(),
            PeriodRow.key,
            Award.award_type_id,
            Award.rank.is_(None),
            Award.rank,
            Award.id,
        ),
        page=page,
        per_page=per_page,
        error_out=False,
    )


def own_awards(user_id: int) -> list[Award]:
    """The viewer's own published and revoked awards, newest first (a revoked one leaves the
    wall but stays in its holder's list, marked revoked)."""
    return list(
        db.session.scalars(
            select(Award)
            .where(Award.agent_id == user_id, Award.status.in_(("published", "revoked")))
            .order_by(Award.published_at.desc(), Award.id.desc())
            .limit(50)
        )
    )
