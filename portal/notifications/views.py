"""The bell, the list, and marking notifications read."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from portal.db import SAFE_METHODS
from portal.extensions import db
from portal.notifications import services
from portal.notifications.models import Notification
from portal.web.auth import require
from portal.web.fragments import kept
from portal.web.htmx import redirect_to, render

bp = Blueprint("notifications", __name__)

BELL_SECONDS = 30  # how often an open page asks for the unread count


@bp.app_context_processor
def bell_context() -> dict:
    """Every page's bell starts with the current count (then polls for it). A read-only request
    shows the count read with its login session; one that may have changed notifications
    counts again."""
    if not current_user.is_authenticated:
        return {}
    count = getattr(current_user, "unread_notifications", None)
    if count is None or request.method not in SAFE_METHODS:
        count = services.unread_count(current_user)
    return {
        "unread_notifications": count,
        "bell_seconds": BELL_SECONDS,
        "bell": lambda: _bell(count),
    }


def _bell(count: int) -> Markup:
    """The bell as every page's header shows it: kept per process for each count."""
    return kept(
        "notifications/_bell.html",
        (get_locale(), request.script_root, count),
        lambda: {"unread_notifications": count, "bell_seconds": BELL_SECONDS},
    )


@bp.get("/notifications/bell")
@require("portal.use")
def bell():
    return render("notifications/_bell.html")


@bp.get("/notifications")
@require("portal.use")
def notification_list():
    page = db.paginate(
        select(Notification)
        .where(Notification.user_id == current_user.id)
        .order_by(Notification.id.desc()),
        page=request.args.get("page", 1, type=int),
        per_page=25,
        error_out=False,
    )
    return render("notifications/list.html", "items", page=page, message=services.message)


@bp.post("/notifications/<int:notification_id>/open")
@require("portal.use")
def notification_open(notification_id: int):
    """Mark one read and go where it points."""
    note = db.session.get(Notification, notification_id)
    if note is None or note.user_id != current_user.id:
        abort(404)
    services.mark_read(current_user, note)
    db.session.commit()
    return redirect_to(note.link or url_for("notifications.notification_list"))


@bp.post("/notifications/read-all")
@require("portal.use")
def notification_read_all():
    services.mark_read(current_user)
    db.session.commit()
    return redirect_to(url_for("notifications.notification_list"))
