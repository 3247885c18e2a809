"""The audit log page for administrators."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, request
from sqlalchemy import distinct, or_, select

from portal.audit.models import AuditEntry
from portal.audit.services import changes
from portal.extensions import db
from portal.web.auth import require
from portal.web.htmx import render

bp = Blueprint("audit", __name__)


def _day_start(raw: str) -> datetime | None:
    """A YYYY-MM-DD from the filter, as the start of that day in the portal's timezone."""
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(current_app.config["PORTAL_TIMEZONE"]))


@bp.get("/admin/audit")
@require("audit.read")
def audit_list():
    action = request.args.get("action", "")
    who = request.args.get("who", "").strip()
    date_from = request.args.get("from", "")
    date_to = request.args.get("to", "")
    stmt = select(AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if who:
        like = f"%{who}%"
        stmt = stmt.where(or_(AuditEntry.actor_label.ilike(like), AuditEntry.summary.ilike(like)))
    if start := _day_start(date_from):
        stmt = stmt.where(AuditEntry.at >= start)
    if end := _day_start(date_to):
        stmt = stmt.where(AuditEntry.at < end + timedelta(days=1))
    page = db.paginate(
        stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()),
        page=request.args.get("page", 1, type=int),
        per_page=50,
        error_out=False,
    )
    actions = db.session.scalars(select(distinct(AuditEntry.action)).order_by(AuditEntry.action))
    return render(
        "audit/list.html",
        "results",
        page=page,
        actions=list(actions),
        action=action,
        who=who,
        date_from=date_from,
        date_to=date_to,
        changes=changes,
    )
