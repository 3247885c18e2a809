"""Alert rules (admins) and improvement plans (the agent, their lead, admins)."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from portal.accounts.models import Position, Role, Team, User
from portal.accounts.services import led_team_ids
from portal.alerts import services
from portal.alerts.models import AlertRule, ImprovementPlan
from portal.db import utcnow
from portal.extensions import db
from portal.metrics.compute import AGENT_CODES, RATES
from portal.metrics.labels import format_metric, metric_name
from portal.notifications.services import COMPARISONS
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("alerts", __name__)


def _rule_form_context(**extra) -> dict:
    return {
        "rules": db.session.scalars(select(AlertRule).order_by(AlertRule.id)).all(),
        "metric_codes": AGENT_CODES,
        "metric_name": metric_name,
        "format_metric": format_metric,
        "comparisons": COMPARISONS,
        "positions": db.session.scalars(select(Position).order_by(Position.name)).all(),
        "teams": db.session.scalars(select(Team).order_by(Team.name)).all(),
        "rates": RATES,
        "form": {},
        "errors": {},
        **extra,
    }


@bp.get("/alerts/rules")
@require("alerts.manage")
def rule_list():
    return render("alerts/rules.html", **_rule_form_context())


def _rule_data(form) -> services.RuleData:
    metric = form.get("metric", "")
    try:
        threshold = float(form.get("threshold", ""))
    except ValueError:
        raise services.AlertError(_l("Enter a number."), "threshold") from None
    try:
        days = int(form.get("days", ""))
    except ValueError:
        raise services.AlertError(_l("Between 1 and 31 days."), "days") from None
    scope = form.get("scope", "")
    kind, _, number = scope.partition(":")
    return services.RuleData(
        name=form.get("name", ""),
        metric=metric,
        comparison=form.get("comparison", ""),
        threshold=threshold / 100 if metric in RATES else threshold,  # rates are typed in %
        days=days,
        position_id=int(number) if kind == "position" and number.isdigit() else None,
        team_id=int(number) if kind == "team" and number.isdigit() else None,
    )


@bp.post("/alerts/rules")
@require("alerts.manage")
def rule_create():
    try:
        services.save_rule(current_user, None, _rule_data(request.form))
    except services.AlertError as exc:
        db.session.rollback()
        context = _rule_form_context(form=request.form, errors={exc.field: exc.message})
        return render("alerts/rules.html", status=422, **context)
    db.session.commit()
    return redirect_to(url_for("alerts.rule_list"))


@bp.post("/alerts/rules/<int:rule_id>/active")
@require("alerts.manage")
def rule_set_active(rule_id: int):
    rule = db.session.get(AlertRule, rule_id)
    if rule is None:
        abort(404)
    services.set_rule_active(current_user, rule, request.form.get("active") == "1")
    db.session.commit()
    return redirect_to(url_for("alerts.rule_list"))


@bp.get("/improvement-plans")
@require("portal.use")
def plan_list():
    """Admins: every plan; leads: their teams' members'; everyone: their own."""
    status = request.args.get("status", "open")
    stmt = (
        select(ImprovementPlan)
        .join(User, User.id == ImprovementPlan.user_id)
        .options(joinedload(ImprovementPlan.user))
    )
    if not current_user.has_role(Role.ADMIN):
        mine = ImprovementPlan.user_id == current_user.id
        teams = led_team_ids(current_user) if current_user.has_role(Role.TEAM_LEAD) else set()
        stmt = stmt.where(or_(mine, User.team_id.in_(teams)) if teams else mine)
    if status in ("open", "closed"):
        stmt = stmt.where(ImprovementPlan.status == status)
    page = db.paginate(
        stmt.order_by(ImprovementPlan.opened_at.desc(), ImprovementPlan.id.desc()),
        page=request.args.get("page", 1, type=int),
        per_page=25,
        error_out=False,
    )
    return render("alerts/plans.html", "items", page=page, showing=status, metric_name=metric_name)


def _plan(plan_id: int) -> ImprovementPlan:
    plan = db.session.get(ImprovementPlan, plan_id)
    if plan is None:
        abort(404)
    if not services.can_view_plan(current_user, plan):
        abort(403)
    return plan


def _plan_page(plan: ImprovementPlan, status: int = 200, errors=None, form=None):
    return render(
        "alerts/plan.html",
        status=status,
        plan=plan,
        can_follow_up=services.can_follow_up(current_user, plan),
        metric_name=metric_name,
        format_metric=format_metric,
        comparisons=COMPARISONS,
        errors=errors or {},
        form=form or {},
    )


@bp.get("/improvement-plans/<int:plan_id>")
@require("portal.use")
def plan_detail(plan_id: int):
    return _plan_page(_plan(plan_id))


@bp.post("/improvement-plans/<int:plan_id>/notes")
@require("portal.use")
def plan_note(plan_id: int):
    plan = _plan(plan_id)
    if not services.can_follow_up(current_user, plan):
        abort(403)
    try:
        services.add_note(current_user, plan, request.form.get("text", ""))
    except services.AlertError as exc:
        db.session.rollback()
        return _plan_page(plan, 422, {exc.field: exc.message}, request.form)
    db.session.commit()
    return redirect_to(url_for("alerts.plan_detail", plan_id=plan.id))


@bp.post("/improvement-plans/<int:plan_id>/close")
@require("portal.use")
def plan_close(plan_id: int):
    plan = _plan(plan_id)
    if not services.can_follow_up(current_user, plan):
        abort(403)
    try:
        services.close_plan(current_user, plan, request.form.get("note", ""), utcnow())
    except services.AlertError as exc:
        db.session.rollback()
        return _plan_page(plan, 422, {exc.field: exc.message}, request.form)
    db.session.commit()
    return redirect_to(url_for("alerts.plan_detail", plan_id=plan.id))
