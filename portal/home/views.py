"""The home page: what exists today for each of the user's roles, no invented numbers."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.accounts.models import Position, Role, Team, User, team_leads
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.jobs import heartbeat_age
from portal.system.models import JobRun
from portal.web.auth import require
from portal.web.htmx import render

bp = Blueprint("home", __name__)


def _admin_overview() -> dict:
    active, inactive = (
        db.session.scalar(select(func.count()).where(User.active.is_(flag)))
        for flag in (True, False)
    )
    return {
        "active_users": active,
        "inactive_users": inactive,
        "teams": db.session.scalar(select(func.count(Team.id))),
        "recent_audit": db.session.scalars(
            select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(5)
        ).all(),
        "failed_jobs": db.session.scalar(select(func.count()).where(JobRun.status == "failed")),
        "heartbeat_age": heartbeat_age(),
    }


def _profile(user: User) -> dict:
    """The names the profile card shows, read as plain columns (the logged-in user is loaded
    already; walking its relationships would run a query for each, and load the leads'
    roles)."""
    team, position = db.session.execute(
        select(Team.name, Position.name)
        .select_from(User)
        .outerjoin(Team, Team.id == User.team_id)
        .outerjoin(Position, Position.id == User.position_id)
        .where(User.id == user.id)
    ).one()
    leads = (
        db.session.scalars(
            select(User.name)
            .join(team_leads, team_leads.c.user_id == User.id)
            .where(team_leads.c.team_id == user.team_id)
            .order_by(User.agent_no)
        ).all()
        if user.team_id is not None
        else []
    )
    return {"team": team, "position": position, "leads": leads}


@bp.get("/")
@require("portal.use")
def index():
    me = current_user
    led = []
    if current_user.has_role(Role.TEAM_LEAD):
        led = db.session.scalars(
            select(Team)
            .options(selectinload(Team.members))
            .where(Team.id.in_([t.id for t in current_user.led_teams]))
            .order_by(Team.name)
        ).all()
    admin = _admin_overview() if current_user.has_role(Role.ADMIN) else None
    return render("home/index.html", me=me, profile=_profile(me), led_teams=led, admin=admin)
