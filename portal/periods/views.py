"""The admin's periods page: each period's state, close time and what holds its close back."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.db import utcnow
from portal.extensions import db
from portal.metrics.labels import PERIOD_KIND_NAMES
from portal.periods import services
from portal.periods.models import PeriodRow
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

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
BUSY = _l("Another process is closing this period right now; reload in a minute.")


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
    rows = [(row, services.state(row, now), services.blockers(row, running)) for row in page.items]
    return render(
        "periods/list.html", "items", page=page, rows=rows, states=STATES, kinds=PERIOD_KIND_NAMES
    )


@bp.post("/admin/periods/<int:period_id>/revise")
@require("periods.manage")
def period_revise(period_id: int):
    row = db.session.get(PeriodRow, period_id)
    if row is None:
        abort(404)
    try:
        services.revise_period(row, current_user, request.form.get("reason", ""), utcnow())
    except services.PeriodError as exc:
        db.session.rollback()
        return render("periods/error.html", status=422, message=exc.message)
    db.session.commit()
    return redirect_to(url_for("periods.period_list"))


@bp.post("/admin/periods/<int:period_id>/close")
@require("periods.manage")
def period_close(period_id: int):
    """Close now (what the scheduler would do), or force the close with a reason."""
    row = db.session.get(PeriodRow, period_id)
    if row is None:
        abort(404)
    force = request.form.get("force") == "1"
    outcome = services.close_period(
        row, utcnow(), actor=current_user, force=force, reason=request.form.get("reason", "")
    )
    if outcome.status in ("held", "busy"):
        message = HELD if outcome.status == "held" else BUSY
        return render("periods/error.html", status=409, message=message)
    return redirect_to(url_for("periods.period_list"))
