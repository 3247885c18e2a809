"""Score screens: an agent's dashboard, the explanation of every step, the what-if simulator,
and a lead's heatmap of the team's lines. While a period is open they show results computed now
(provisional); once it is closed, the frozen results version the viewer may see."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.models import Role, Team, User
from portal.accounts.services import can_view_team, led_team_ids
from portal.extensions import db
from portal.metrics.compute import LOWER_IS_BETTER, RATES
from portal.metrics.labels import format_metric, metric_name
from portal.metrics.periods import Period, PeriodKeyError, parse_period, period_of, recent_periods
from portal.periods import results as snapshots
from portal.periods.models import PeriodRow
from portal.periods.services import Visible, visible_results
from portal.scoring import engine, services
from portal.scoring.export import download, result_rows
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("scoring", __name__)

CATEGORY_NAMES = {
    "quality": _l("Quality"),
    "efficiency": _l("Efficiency"),
    "experience": _l("Experience"),
    "development": _l("Development"),
}
NOTES = {
    "no_value": _l("no data this period: left out, the other weights rescaled"),
    "insufficient_sample": _l("sample below the minimum: left out, the other weights rescaled"),
    "gated": _l("quality gate closed: efficiency lines score 0"),
}
RULES = {
    "below_threshold": _l("missed the threshold: 0"),
    "to_target": _l("between threshold and target: 60 + 40 × progress from threshold to target"),
    "at_target": _l("target reached (no stretch set): 100"),
    "to_stretch": _l("between target and stretch: 100 + 20 × progress from target to stretch"),
    "at_stretch": _l("stretch reached: 120"),
}


def _agent(user_id: int) -> User:
    agent = db.session.get(User, user_id)
    if agent is None:
        abort(404)
    if not services.can_view_score(current_user, agent):
        abort(403)
    return agent


def _visible(period: Period) -> tuple[PeriodRow | None, Visible]:
    """The period's row and which of its results the current user sees."""
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == period.key))
    return row, visible_results(row, current_user)


def _results(
    agent: User,
) -> tuple[services.PlanResults | None, Period, list[Period], Visible]:
    """The agent's plan results for the period asked for (the plan's current one by default):
    computed now while the period is open; once it is closed, read from the results version
    the viewer may see (nothing while an agent waits for the publication)."""
    plan = services.plan_of(agent.position) if agent.position else None
    kind = plan.period_kind if plan else "monthly"
    today = services.today()
    key = request.args.get("period")
    try:
        period = parse_period(key) if key else period_of(today, kind)
    except PeriodKeyError:
        abort(404)
    row, visible = _visible(period)
    found = None
    if visible.kind == "provisional":
        found = services.plan_results(agent.position, period) if plan else None
    elif visible.kind == "final":
        frozen = snapshots.agent_result(row, visible.version, agent.id)
        if frozen is not None:  # their cohort only: the standing compares them with it
            [found] = snapshots.plan_results(
                row,
                period,
                visible.version,
                plan_version_id=frozen.plan_version_id,
                cohort=frozen.cohort,
            )
    return found, period, recent_periods(today, (kind,)), visible


def _metric_names(codes) -> str:
    return ", ".join(metric_name(code) for code in codes)


def _shown(value: float | None) -> str:
    shown = engine.rounded(value)
    return "—" if shown is None else f"{shown:.2f}"


def _context(agent: User, found, period: Period, periods: list[Period], visible: Visible) -> dict:
    return {
        "agent": agent,
        "found": found,
        "period": period,
        "periods": periods,
        "visible": visible,
        "metric_name": metric_name,
        "metric_names": _metric_names,
        "format_metric": format_metric,
        "category_names": CATEGORY_NAMES,
        "notes": NOTES,
        "shown": _shown,
        "lower": LOWER_IS_BETTER,
    }


@bp.get("/scores/me")
@require("portal.use")
def my_score():
    args = {"period": request.args["period"]} if request.args.get("period") else {}
    return redirect_to(url_for("scoring.agent_score", user_id=current_user.id, **args))


@bp.get("/scores/agents/<int:user_id>")
@require("portal.use")
def agent_score(user_id: int):
    agent = _agent(user_id)
    found, period, periods, visible = _results(agent)
    result = found.result_of(agent.id) if found else None
    context = _context(agent, found, period, periods, visible)
    context["result"] = result
    if result is not None and result.final is not None:
        context["standing"] = services.standing(found, result)
    if result is not None and result.final is not None and visible.kind == "provisional":
        # What it takes to reach the next tier: only while the period can still change.
        goal = engine.next_tier(found.rules, result.final)
        context.update(
            goal=goal,
            changes=engine.what_it_takes(
                found.rules, found.inputs[agent.id], found.weighting, goal.lower
            )[:3]
            if goal
            else [],
        )
    return render("scoring/dashboard.html", "score", **context)


@bp.get("/scores/agents/<int:user_id>/explain")
@require("portal.use")
def explain(user_id: int):
    agent = _agent(user_id)
    found, period, periods, visible = _results(agent)
    result = found.result_of(agent.id) if found else None
    rules = {}
    if result is not None:
        rules = {
            line.metric: engine.score_rule(
                line.value, line.band, found.rules.line(line.metric).lower_is_better
            )
            for line in result.lines
            if line.raw_score is not None
        }
    return render(
        "scoring/explain.html",
        "explain",
        result=result,
        score_rules=rules,
        rule_names=RULES,
        **_context(agent, found, period, periods, visible),
    )


def _typed(metric: str, raw: str) -> float | None:
    """A value typed in the simulator, in the unit shown (percent for rates)."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value / 100 if metric in RATES else value


@bp.get("/scores/agents/<int:user_id>/simulate")
@require("portal.use")
def simulate(user_id: int):
    """模拟评分: change any line's value and see the score move; nothing is saved. A closed
    period's results are final: there is nothing left to simulate."""
    agent = _agent(user_id)
    found, period, periods, visible = _results(agent)
    result = found.result_of(agent.id) if found else None
    context = _context(agent, found, period, periods, visible)
    if result is None or visible.kind != "provisional":
        return render("scoring/simulate.html", "simulation", result=None, **context)
    typed, problems = {}, {}
    for line in found.rules.lines:
        raw = request.args.get(line.metric, "").strip()
        if raw:
            value = _typed(line.metric, raw)
            if value is None or value < 0:
                problems[line.metric] = _l("Enter a number of 0 or more.")
            else:
                typed[line.metric] = value
    simulated, rank = services.simulate(found, agent.id, typed)
    return render(
        "scoring/simulate.html",
        "simulation",
        result=result,
        simulated=simulated,
        simulated_rank=rank,
        typed=request.args,
        problems=problems,
        rates=RATES,
        **context,
    )


@bp.get("/scores/teams/<int:team_id>/heatmap")
@require("team.view")
def heatmap(team_id: int):
    """Agents × scorecard lines, coloured by score band; the team's weakest lines marked."""
    team = db.session.get(Team, team_id)
    if team is None:
        abort(404)
    if not can_view_team(current_user, team):
        abort(403)
    today = services.today()
    key = request.args.get("period")
    try:
        period = parse_period(key) if key else period_of(today, "monthly")
    except PeriodKeyError:
        abort(404)
    row, visible = _visible(period)
    if visible.kind == "final":  # the members when the period closed, as they were scored
        plan_results = snapshots.plan_results(row, period, visible.version, team_ids={team.id})
    elif visible.kind == "provisional":
        members = db.session.scalars(
            select(User).where(User.team_id == team.id, User.active.is_(True))
        ).all()
        positions = {m.position_id: m.position for m in members if m.position is not None}
        plan_results = [
            found
            for position in sorted(positions.values(), key=lambda p: p.name)
            if (found := services.plan_results(position, period)) is not None
        ]
    else:
        plan_results = []
    boards = []
    for found in plan_results:
        rows = [
            (found.agents[r.key], r)
            for r in sorted(found.results, key=lambda r: found.agents[r.key].agent_no)
            if visible.kind == "final" or found.agents[r.key].team_id == team.id
        ]
        if rows:
            boards.append((found.position, found, rows, services.weakest_lines(found.rules, rows)))
    return render(
        "scoring/heatmap.html",
        "heatmap",
        team=team,
        boards=boards,
        period=period,
        visible=visible,
        periods=recent_periods(today),
        metric_name=metric_name,
        metric_names=_metric_names,
        category_names=CATEGORY_NAMES,
        shown=_shown,
        band=score_band,
    )


def score_band(score: float | None) -> str:
    """The colour class of a line score: missed, below target, on target, beyond."""
    if score is None:
        return "none"
    if score == 0:
        return "missed"
    if score < 100:
        return "below"
    if score < 110:
        return "target"
    return "beyond"


@bp.get("/scores/export")
@require("team.view")
def results_download():
    """The period's results as CSV or XLSX (provisional while it is open, the frozen version
    once closed): admins everyone, leads their teams."""
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(404)
    try:
        period = parse_period(request.args.get("period", ""))
    except PeriodKeyError:
        abort(404)
    teams = None if current_user.has_role(Role.ADMIN) else led_team_ids(current_user)
    row, visible = _visible(period)
    if visible.kind == "awaiting":
        abort(403)
    if visible.kind == "final":
        rows = snapshots.export_rows(row, visible.version, teams)
    else:
        rows = result_rows(period, services.all_results(period), teams)
    mimetype = (
        "text/csv"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        download(rows, fmt),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="results-{period.key}.{fmt}"'},
    )
