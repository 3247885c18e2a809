"""Metric screens: an agent's own metrics, a lead's team table, the center's queues."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.accounts.models import Team, User
from portal.accounts.services import can_view_team, can_view_user
from portal.extensions import db
from portal.metrics import charts, compute
from portal.metrics.labels import format_metric, metric_name
from portal.metrics.periods import (
    MONTHLY,
    Period,
    PeriodKeyError,
    parse_period,
    period_of,
    recent_periods,
)
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("metrics", __name__)

# A lead sees every §4 metric of each agent, and the team's own §5 figures above them.
TEAM_COLUMNS = compute.AGENT_CODES
TEAM_SUMMARY = compute.GROUP_CODES
CENTER_COLUMNS = ("offered", "answer_rate", "abandon_rate", "service_level", "asa")


def _today() -> date:
    return datetime.now(ZoneInfo(current_app.config["PORTAL_TIMEZONE"])).date()


def _period() -> Period:
    key = request.args.get("period")
    if not key:
        return period_of(_today(), MONTHLY)
    try:
        return parse_period(key)
    except PeriodKeyError:
        abort(404)


def _trends(period: Period, daily: dict, codes) -> dict:
    """A sparkline per metric over every day of the period (days without data are gaps)."""
    days = [period.first_day + timedelta(days=i) for i in range(period.days)]
    return {
        code: charts.sparkline(
            [(d, daily[d].values[code] if d in daily else None) for d in days], metric_name(code)
        )
        for code in codes
    }


def _context(period: Period) -> dict:
    return {
        "period": period,
        "periods": recent_periods(_today()),
        "metric_name": metric_name,
        "format_metric": format_metric,
    }


@bp.get("/metrics/me")
@require("portal.use")
def my_metrics():
    return redirect_to(
        url_for(
            "metrics.agent_metrics",
            user_id=current_user.id,
            **({"period": request.args["period"]} if request.args.get("period") else {}),
        )
    )


@bp.get("/metrics/agents/<int:user_id>")
@require("portal.use")
def agent_metrics(user_id: int):
    agent = db.session.get(User, user_id, options=[joinedload(User.team)])
    if agent is None:
        abort(404)
    if not can_view_user(current_user, agent):
        abort(403)
    period = _period()
    [result] = compute.agent_metrics(period, [agent])
    trends = _trends(period, compute.agent_daily(period, agent), compute.AGENT_CODES)
    return render(
        "metrics/agent.html",
        "metrics",
        agent=agent,
        result=result,
        trends=trends,
        has_data=any(v is not None for v in result.values.values()),
        codes=compute.AGENT_CODES,
        lower=compute.LOWER_IS_BETTER,
        **_context(period),
    )


@bp.get("/metrics/teams/<int:team_id>")
@require("team.view")
def team_metrics(team_id: int):
    team = db.session.get(Team, team_id)
    if team is None:
        abort(404)
    if not can_view_team(current_user, team):
        abort(403)
    period = _period()
    members = db.session.scalars(
        # Deactivated members stay listed: their contacts are part of the team's pooled row.
        select(User).where(User.team_id == team.id).order_by(User.agent_no)
    ).all()
    rows = dict(zip([m.id for m in members], compute.agent_metrics(period, members), strict=True))
    [total] = compute.team_metrics(period, [team])
    trends = _trends(period, compute.team_daily(period, team), TEAM_COLUMNS)
    sort = request.args.get("sort", "agent_no")
    descending = request.args.get("dir", "asc") == "desc"
    if sort in TEAM_COLUMNS:
        with_value = [m for m in members if rows[m.id].values[sort] is not None]
        without = [m for m in members if rows[m.id].values[sort] is None]
        with_value.sort(key=lambda m: rows[m.id].values[sort], reverse=descending)
        members = with_value + without  # no value sorts last either way
    elif descending:
        members = list(reversed(members))
    return render(
        "metrics/team.html",
        "table",
        team=team,
        members=members,
        rows=rows,
        total=total,
        trends=trends,
        columns=TEAM_COLUMNS,
        summary=TEAM_SUMMARY,
        sort=sort,
        descending=descending,
        **_context(period),
    )


@bp.get("/metrics/center")
@require("center.view")
def center_metrics():
    period = _period()
    queues = compute.queue_metrics(period)
    daily = compute.queue_daily(period)
    by_queue: dict[str, list] = {}
    for day, result in daily:
        by_queue.setdefault(result.key, []).append((day, result))
    chart_codes = ("offered", "answer_rate", "service_level", "abandon_rate", "asa")
    chart = {
        code: charts.line_chart(
            {q: [(d, r.values[code]) for d, r in pts] for q, pts in by_queue.items()},
            metric_name(code),
            percent=code in compute.RATES,
        )
        for code in chart_codes
    }
    return render(
        "metrics/center.html",
        "queues",
        queues=queues,
        daily=daily,
        chart=chart,
        columns=CENTER_COLUMNS,
        queue_names=list(by_queue),
        **_context(period),
    )
