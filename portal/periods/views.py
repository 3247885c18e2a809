"""The admin's periods page: each period's state, close time and what holds its close back."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.db import utcnow
from portal.extensions import db
from portal.jobs import heartbeat_age
from portal.metrics.labels import PERIOD_KIND_NAMES
from portal.periods import services
from portal.periods.models import PeriodRow
from portal.web.auth import require
from portal.web.htmx import is_partial, redirect_to, render

bp = Blueprint("periods", __name__)

STATES = {
    "open": _l("open"),
    "grace": _l("grace"),
    "closing": _l("closing"),
    "closed": _l("closed"),
}
HELD = _l(
    "The close is held back by undecided appeals or running imports. Decide them first, or "
    "force the close and write why it cannot wait."
)


@bp.get("/admin/periods")
@require("periods.manage")
def period_list():
    now = utcnow()
    page = db.paginate(
        select(PeriodRow).order_by(PeriodRow.last_day.desc(), PeriodRow.kind),
        page=request.args.get("page", 1, type=int),
        per_page=25,
        error_out=False,
    )
    running = services.running_imports()
    done = services.Blockers(0, 0)  # a closed period has nothing left to hold it back
    rows = [
        (row, services.state(row, now), done if row.closed_at else services.blockers(row, running))
        for row in page.items
    ]
    return render(
        "periods/list.html",
        "items",
        page=page,
        rows=rows,
        states=STATES,
        kinds=PERIOD_KIND_NAMES,
        begun={row.id for row in page.items if services.has_begun(row, now)},
    )


@bp.post("/admin/periods/<int:period_id>/revise")
@require("periods.manage")
def period_revise(period_id: int):
    row = _period(period_id)
    try:
        services.revise_period(
            row,
            current_user,
            request.form.get("reason", ""),
            utcnow(),
            seen=request.form.get("version", type=int),
        )
    except services.PeriodError as exc:
        db.session.rollback()
        return render("periods/error.html", status=422, message=exc.message)
    db.session.commit()
    return redirect_to(url_for("periods.period_list"))


@bp.post("/admin/periods/<int:period_id>/close")
@require("periods.manage")
def period_close(period_id: int):
    """Close now, or force the close with a reason: the scheduler does it within seconds
    (what it would do at the close time) and the page shows the progress."""
    row = _period(period_id)
    force = request.form.get("force") == "1"
    if not force and services.blockers(row).any:
        return render("periods/error.html", status=409, message=HELD)
    try:
        services.request_close(row, current_user, utcnow(), force, request.form.get("reason", ""))
    except services.PeriodError as exc:
        db.session.rollback()
        return render("periods/error.html", status=422, message=exc.message)
    db.session.commit()
    return redirect_to(url_for("periods.period_list"))


@bp.get("/admin/periods/<int:period_id>/progress")
@require("periods.manage")
def period_progress(period_id: int):
    """The close's progress, polled by the periods page while it runs."""
    row = _period(period_id)
    now = utcnow()
    age = heartbeat_age(now)
    waiting = (now - row.close_requested_at).total_seconds() if row.close_requested_at else 0
    response = render(
        "periods/_progress.html",
        None,
        row=row,
        state=services.state(row, now),
        states=STATES,
        no_scheduler=row.closing_at is None and waiting > 10 and (age is None or age > 120),
    )
    if row.closed_at is not None and is_partial():
        response.headers["HX-Refresh"] = "true"  # the row's actions change: publish, awards
    return response


@bp.post("/admin/periods/<int:period_id>/publish")
@require("periods.manage")
def period_publish(period_id: int):
    """Publish the period's latest results version and its awards."""
    row = _period(period_id)
    now = utcnow()
    try:
        services.publish_period(row, current_user, now)
    except services.PeriodError as exc:
        db.session.rollback()
        return render("periods/error.html", status=409, message=exc.message)
    db.session.commit()  # certificates still missing are rendered by the scheduler
    if request.form.get("next") == "awards":
        return redirect_to(url_for("awards.award_admin", period=row.key))
    return redirect_to(url_for("periods.period_list"))


def _period(period_id: int) -> PeriodRow:
    row = db.session.get(PeriodRow, period_id)
    if row is None:
        abort(404)
    return row
