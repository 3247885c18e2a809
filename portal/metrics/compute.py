"""Every metric of metrics.md §4 and §5, as ratios of the daily sums (stats.py).

A metric without underlying data has no value (None), never 0; each value comes with its
sample count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import case, func, select

from portal.accounts.models import Team, User
from portal.extensions import db
from portal.metrics.models import DayStats, SuppliedValue
from portal.metrics.parsing import SUPPLIED_CODES
from portal.metrics.periods import Period

AGENT_CODES = (
    "handled",
    "agent_answer_rate",
    "aht",
    "asa",
    "fcr",
    "transfer_rate",
    "csat",
    "nps",
    "qa_score",
    "resolved_per_hour",
    "training_completion",
    "peer_score",
    "knowledge_contrib",
    "brand_sentiment",
    "soothing_rate",
)
GROUP_CODES = ("offered", "answer_rate", "abandon_rate", "service_level", "asa")
# Team and queue rows: §5 codes, then the pooled §4 codes (asa appears once: it is the same
# figure at both levels).
POOLED_CODES = GROUP_CODES + tuple(c for c in AGENT_CODES if c not in GROUP_CODES)
# Lower is better for these; higher for every other code.
LOWER_IS_BETTER = frozenset({"aht", "asa", "transfer_rate", "abandon_rate"})
# Shown as percentages; seconds and counts as they are.
RATES = frozenset(
    {
        "agent_answer_rate",
        "fcr",
        "transfer_rate",
        "csat",
        "answer_rate",
        "abandon_rate",
        "service_level",
        "training_completion",
        "soothing_rate",
    }
)
SECONDS = frozenset({"aht", "asa"})

SUMS = (
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


@dataclass
class MetricSet:
    """Values and sample sizes of one agent, team or queue for one period or day."""

    key: str
    name: str
    values: dict[str, float | None] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def from_sums(t: dict, n_rang: int) -> tuple[dict, dict]:
    """Metric values and samples from summed daily rows. `n_rang`: interactions that were
    offered to an agent (answered or not), the denominator of the agent answer rate."""
    answered = t["n_answered"]
    offered = t["n_all"] - t["n_short"]
    values = {
        "handled": answered,
        "agent_answer_rate": _ratio(answered, n_rang),
        "aht": _ratio(t["sum_handle"], answered),
        "asa": _ratio(t["sum_wait"], answered),
        "fcr": _ratio(t["n_fcr"], answered),
        "transfer_rate": _ratio(t["n_transferred"], answered),
        "csat": _ratio(t["n_csat_pos"], t["n_csat"]),
        "nps": _ratio(100.0 * (t["n_nps_pro"] - t["n_nps_det"]), t["n_nps"]),
        "qa_score": _ratio(t["sum_qa"], t["n_qa"]),
        "resolved_per_hour": _ratio(t["n_fcr"], t["sum_handle"] / 3600.0),
        "offered": offered,
        "answer_rate": _ratio(answered, offered),
        "abandon_rate": _ratio(t["n_all"] - answered - t["n_short"], offered),
        "service_level": _ratio(t["n_sl"], offered),
    }
    samples = {
        "handled": answered,
        "agent_answer_rate": n_rang,
        "aht": answered,
        "asa": answered,
        "fcr": answered,
        "transfer_rate": answered,
        "csat": t["n_csat"],
        "nps": t["n_nps"],
        "qa_score": t["n_qa"],
        "resolved_per_hour": answered,
        "offered": offered,
        "answer_rate": offered,
        "abandon_rate": offered,
        "service_level": offered,
    }
    if not t["n_all"]:
        # No interactions at all: even the counts are "no data", not 0.
        values["handled"] = values["offered"] = None
    return values, samples


def _sum_columns():
    columns = [func.coalesce(func.sum(getattr(DayStats, name)), 0).label(name) for name in SUMS]
    columns.append(
        func.coalesce(
            func.sum(case((DayStats.agent_id.is_not(None), DayStats.n_all), else_=0)), 0
        ).label("n_rang")
    )
    return columns


def _metric_set(key: str, name: str, row, codes) -> MetricSet:
    sums = {n: getattr(row, n) for n in SUMS} if row is not None else dict.fromkeys(SUMS, 0)
    values, samples = from_sums(sums, row.n_rang if row is not None else 0)
    result = MetricSet(key, name)
    for code in codes:
        result.values[code] = values.get(code)
        result.samples[code] = samples.get(code, 0)
    return result


def _supplied(period: Period, agent_ids=None) -> dict[int, dict[str, float]]:
    stmt = select(SuppliedValue.agent_id, SuppliedValue.metric, SuppliedValue.value).where(
        SuppliedValue.period_key == period.key
    )
    if agent_ids is not None:
        stmt = stmt.where(SuppliedValue.agent_id.in_(agent_ids))
    found: dict[int, dict[str, float]] = {}
    for agent_id, metric, value in db.session.execute(stmt):
        found.setdefault(agent_id, {})[metric] = value
    return found


def _add_supplied(result: MetricSet, values: dict[str, float]) -> None:
    for code in SUPPLIED_CODES:
        if code in values:
            result.values[code] = values[code]
            result.samples[code] = 1


def agent_metrics(period: Period, agents: list[User]) -> list[MetricSet]:
    """§4 metrics of each of `agents` over `period` (agents without data get no values)."""
    ids = [a.id for a in agents]
    rows = {
        r.agent_id: r
        for r in db.session.execute(
            select(DayStats.agent_id, *_sum_columns())
            .where(
                DayStats.day.between(period.first_day, period.last_day), DayStats.agent_id.in_(ids)
            )
            .group_by(DayStats.agent_id)
        )
    }
    supplied = _supplied(period, ids)
    results = []
    for agent in agents:
        result = _metric_set(agent.agent_no, agent.name, rows.get(agent.id), AGENT_CODES)
        _add_supplied(result, supplied.get(agent.id, {}))
        results.append(result)
    return results


def agent_daily(period: Period, agent: User) -> dict[date, MetricSet]:
    """§4 metrics of one agent for each day of `period` that has interactions."""
    rows = db.session.execute(
        select(DayStats.day, *_sum_columns())
        .where(
            DayStats.day.between(period.first_day, period.last_day), DayStats.agent_id == agent.id
        )
        .group_by(DayStats.day)
        .order_by(DayStats.day)
    )
    return {r.day: _metric_set(str(r.day), agent.name, r, AGENT_CODES) for r in rows}


def agents_daily(first: date, last: date, agent_ids: list[int]) -> dict[int, dict[date, MetricSet]]:
    """§4 metrics of many agents for each day of `first`..`last` with interactions, in one
    query (alert rules read these)."""
    found: dict[int, dict[date, MetricSet]] = {}
    if not agent_ids:
        return found
    rows = db.session.execute(
        select(DayStats.agent_id, DayStats.day, *_sum_columns())
        .where(DayStats.day.between(first, last), DayStats.agent_id.in_(agent_ids))
        .group_by(DayStats.agent_id, DayStats.day)
    )
    for r in rows:
        found.setdefault(r.agent_id, {})[r.day] = _metric_set(str(r.day), "", r, AGENT_CODES)
    return found


def team_metrics(period: Period, teams: list[Team]) -> list[MetricSet]:
    """§5 and pooled §4 metrics of each team: the interactions of its current members."""
    rows = {
        r.team_id: r
        for r in db.session.execute(
            select(User.team_id, *_sum_columns())
            .join(User, User.id == DayStats.agent_id)
            .where(
                DayStats.day.between(period.first_day, period.last_day),
                User.team_id.in_([t.id for t in teams]),
            )
            .group_by(User.team_id)
        )
    }
    supplied = _supplied(period)
    members: dict[int, list[int]] = {}
    for user_id, team_id in db.session.execute(
        select(User.id, User.team_id).where(User.team_id.in_([t.id for t in teams]))
    ):
        members.setdefault(team_id, []).append(user_id)
    results = []
    for team in teams:
        result = _metric_set(team.name, team.name, rows.get(team.id), POOLED_CODES)
        # Supplied values have no interactions to pool: the team shows its members' mean.
        for code in SUPPLIED_CODES:
            given = [
                supplied[m][code] for m in members.get(team.id, []) if code in supplied.get(m, {})
            ]
            if given:
                result.values[code] = sum(given) / len(given)
                result.samples[code] = len(given)
        results.append(result)
    return results


def team_daily(period: Period, team: Team) -> dict[date, MetricSet]:
    """§5 and pooled §4 metrics of one team for each day of `period` that has interactions."""
    rows = db.session.execute(
        select(DayStats.day, *_sum_columns())
        .join(User, User.id == DayStats.agent_id)
        .where(DayStats.day.between(period.first_day, period.last_day), User.team_id == team.id)
        .group_by(DayStats.day)
        .order_by(DayStats.day)
    )
    return {r.day: _metric_set(str(r.day), team.name, r, POOLED_CODES) for r in rows}


def queue_metrics(period: Period) -> list[MetricSet]:
    """§5 and pooled §4 metrics of each queue, abandoned-in-queue interactions included."""
    stmt = (
        select(DayStats.queue, *_sum_columns())
        .where(DayStats.day.between(period.first_day, period.last_day))
        .group_by(DayStats.queue)
        .order_by(DayStats.queue)
    )
    return [_metric_set(r.queue, r.queue, r, POOLED_CODES) for r in db.session.execute(stmt)]


def queue_daily(period: Period) -> list[tuple[date, MetricSet]]:
    """§5 metrics of each queue for each day of `period`."""
    rows = db.session.execute(
        select(DayStats.day, DayStats.queue, *_sum_columns())
        .where(DayStats.day.between(period.first_day, period.last_day))
        .group_by(DayStats.day, DayStats.queue)
        .order_by(DayStats.day, DayStats.queue)
    )
    return [(r.day, _metric_set(r.queue, r.queue, r, GROUP_CODES)) for r in rows]
