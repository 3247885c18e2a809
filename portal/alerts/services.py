"""Alert rules evaluated on daily metrics; a hit notifies the agent and the lead and opens an
improvement plan, which the lead follows up and closes with a note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.accounts.models import Role, User, UserRole
from portal.accounts.services import can_view_user, led_team_ids
from portal.alerts.models import Alert, AlertRule, ImprovementNote, ImprovementPlan
from portal.audit.services import record
from portal.db import utcnow
from portal.extensions import db
from portal.metrics import compute
from portal.metrics.labels import format_metric
from portal.notifications.services import notify

CATCH_UP_DAYS = 7  # a run must end within this many days before today to raise an alert


class AlertError(ValueError):
    """A request on rules or plans that breaks a rule, with the message and the field."""

    def __init__(self, message, field: str = ""):
        super().__init__(str(message))
        self.message, self.field = message, field


# --- rules ----------------------------------------------------------------------------------


@dataclass
class RuleData:
    name: str
    metric: str
    comparison: str
    threshold: float
    days: int
    position_id: int | None = None
    team_id: int | None = None


# Seeded by the migration that creates the table (the same values).
DEFAULT_RULE = RuleData("客户满意度连续 3 天低于 85%", "csat", "below", 0.85, 3)


def save_rule(actor: User | None, rule: AlertRule | None, data: RuleData) -> AlertRule:
    if not data.name.strip():
        raise AlertError(_l("Enter a name."), "name")
    if data.metric not in compute.AGENT_CODES:
        raise AlertError(_l("Choose a metric of the list."), "metric")
    if data.comparison not in ("below", "above"):
        raise AlertError(_l("Choose below or above."), "comparison")
    if not 1 <= data.days <= 31:
        raise AlertError(_l("Between 1 and 31 days."), "days")
    if data.position_id and data.team_id:
        raise AlertError(_l("Choose a position or a team, not both."), "scope")
    before = _rule_snapshot(rule) if rule else None
    if rule is None:
        rule = AlertRule()
        db.session.add(rule)
    rule.name = data.name.strip()[:120]
    rule.metric, rule.comparison = data.metric, data.comparison
    rule.threshold, rule.days = data.threshold, data.days
    rule.position_id, rule.team_id = data.position_id, data.team_id
    db.session.flush()
    record(
        actor,
        "alert_rule.update" if before else "alert_rule.create",
        "alert_rule",
        rule.id,
        summary=rule.name,
        before=before,
        after=_rule_snapshot(rule),
    )
    return rule


def set_rule_active(actor: User, rule: AlertRule, active: bool) -> None:
    if rule.active != active:
        rule.active = active
        record(
            actor,
            "alert_rule.activate" if active else "alert_rule.pause",
            "alert_rule",
            rule.id,
            summary=rule.name,
        )


def _rule_snapshot(rule: AlertRule) -> dict:
    return {
        "name": rule.name,
        "metric": rule.metric,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "days": rule.days,
        "position_id": rule.position_id,
        "team_id": rule.team_id,
        "active": rule.active,
    }


# --- evaluation -----------------------------------------------------------------------------


def rule_agents(rule: AlertRule) -> list[User]:
    stmt = select(User).where(
        User.active.is_(True),
        User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.AGENT.value)),
    )
    if rule.position_id:
        stmt = stmt.where(User.position_id == rule.position_id)
    if rule.team_id:
        stmt = stmt.where(User.team_id == rule.team_id)
    return list(db.session.scalars(stmt.order_by(User.id)))


def _meets(rule: AlertRule, value: float) -> bool:
    return value < rule.threshold if rule.comparison == "below" else value > rule.threshold


def latest_run(rule: AlertRule, daily: dict[date, float | None]) -> list[tuple[date, float]]:
    """The days of the agent's latest run meeting the rule: consecutive days with data for the
    metric (days without data, such as days off, neither count nor break the run), ending on
    the agent's latest such day."""
    run = []
    for day in sorted((d for d, v in daily.items() if v is not None), reverse=True):
        if not _meets(rule, daily[day]):
            break
        run.append((day, daily[day]))
    return list(reversed(run))


def evaluate_rules(today: date, now: datetime | None = None) -> str:
    """Raise an alert for each agent whose latest run meets a rule for its number of days.
    Re-running (the same day, or later while the run goes on) raises nothing twice."""
    now = now or utcnow()
    raised = extended = 0
    rules = db.session.scalars(select(AlertRule).where(AlertRule.active.is_(True))).all()
    for rule in rules:
        agents = rule_agents(rule)
        first = today - timedelta(days=rule.days + CATCH_UP_DAYS + 31)
        daily = compute.agents_daily(first, today - timedelta(days=1), [a.id for a in agents])
        for agent in agents:
            values = {d: m.values.get(rule.metric) for d, m in daily.get(agent.id, {}).items()}
            run = latest_run(rule, values)
            if len(run) < rule.days or run[-1][0] < today - timedelta(days=CATCH_UP_DAYS):
                continue
            found = db.session.scalar(
                select(Alert).where(
                    Alert.rule_id == rule.id,
                    Alert.user_id == agent.id,
                    Alert.first_day == run[0][0],
                )
            )
            stored = [[d.isoformat(), v] for d, v in run]
            if found is not None:
                if found.last_day != run[-1][0]:
                    found.last_day, found.values = run[-1][0], stored
                    extended += 1
                continue
            alert = Alert(
                rule_id=rule.id,
                user_id=agent.id,
                first_day=run[0][0],
                last_day=run[-1][0],
                values=stored,
                created_at=now,
            )
            db.session.add(alert)
            db.session.flush()
            _open_plan(alert, rule, agent, now)
            raised += 1
    return f"raised {raised} alert(s), {extended} run(s) extended"


def _open_plan(alert: Alert, rule: AlertRule, agent: User, now: datetime) -> ImprovementPlan:
    plan = ImprovementPlan(user_id=agent.id, alert_id=alert.id, metric=rule.metric, opened_at=now)
    db.session.add(plan)
    db.session.flush()
    link = plan_path(plan)
    params = {
        "metric": rule.metric,
        "comparison": rule.comparison,
        "threshold": format_metric(rule.threshold, rule.metric),
        "days": len(alert.values),
        "first": alert.first_day.isoformat(),
        "last": alert.last_day.isoformat(),
    }
    notify(agent, "alert", params, link)
    for lead in agent.team.leads if agent.team else []:
        if lead.active and lead.id != agent.id:
            notify(lead, "alert_for_lead", {**params, "agent": agent.name}, link)
    record(
        None,
        "improvement_plan.open",
        "improvement_plan",
        plan.id,
        summary=f"{agent.agent_no} {rule.name}",
    )
    return plan


# --- improvement plans ----------------------------------------------------------------------


def plan_path(plan: ImprovementPlan) -> str:
    """The plan's page (a path: jobs run outside any request, where url_for cannot build)."""
    return f"/improvement-plans/{plan.id}"


def can_view_plan(viewer: User, plan: ImprovementPlan) -> bool:
    return can_view_user(viewer, plan.user)


def can_follow_up(viewer: User, plan: ImprovementPlan) -> bool:
    """The agent's team lead or an admin; never the agent on their own plan."""
    if viewer.id == plan.user_id:
        return False
    if viewer.has_role(Role.ADMIN):
        return True
    return viewer.has_role(Role.TEAM_LEAD) and plan.user.team_id in led_team_ids(viewer)


def add_note(actor: User, plan: ImprovementPlan, text: str) -> ImprovementNote:
    text = text.strip()
    if not text:
        raise AlertError(_l("Write what was done or agreed."), "text")
    if plan.status != "open":
        raise AlertError(_l("This plan is closed."), "text")
    note = ImprovementNote(plan_id=plan.id, author_id=actor.id, text=text[:4000])
    db.session.add(note)
    db.session.flush()
    return note


def close_plan(actor: User, plan: ImprovementPlan, note: str, now: datetime) -> None:
    note = note.strip()
    if not note:
        raise AlertError(_l("Write a closing note: what improved, or why the plan ends."), "note")
    if plan.status != "open":
        raise AlertError(_l("This plan is already closed."), "note")
    plan.status, plan.closed_at, plan.closed_by_id = "closed", now, actor.id
    plan.closing_note = note[:4000]
    notify(
        plan.user,
        "plan_closed",
        {"metric": plan.metric, "note": plan.closing_note[:300]},
        plan_path(plan),
    )
    record(actor, "improvement_plan.close", "improvement_plan", plan.id, summary=note[:200])
