"""Health check and the scheduler's job history."""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for
from flask_login import current_user
from sqlalchemy import func, select, text

from portal import pdf
from portal.db import utcnow
from portal.extensions import db
from portal.jobs import JOBS, heartbeat_age
from portal.system import settings
from portal.system.forms import SettingsForm
from portal.system.models import JobRun, SchedulerHeartbeat
from portal.web.auth import public, require
from portal.web.htmx import redirect_to, render

bp = Blueprint("system", __name__)


@bp.get("/healthz")
@public
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        age = heartbeat_age()
    except Exception:
        current_app.logger.exception("health check: database unreachable")
        db.session.rollback()
        return {"database": "unreachable", "scheduler_heartbeat_age_s": None}, 503
    return {"database": "ok", "scheduler_heartbeat_age_s": age}


@bp.get("/admin/jobs")
@require("jobs.read")
def job_list():
    latest_ids = select(func.max(JobRun.id)).group_by(JobRun.job_id).scalar_subquery()
    latest = {
        r.job_id: r for r in db.session.scalars(select(JobRun).where(JobRun.id.in_(latest_ids)))
    }
    page = db.paginate(
        select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()),
        page=request.args.get("page", 1, type=int),
        per_page=25,
        error_out=False,
    )
    heartbeats = db.session.scalars(
        select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.beat_at.desc()).limit(10)
    ).all()
    return render(
        "system/jobs.html",
        "runs",
        jobs=JOBS,
        latest=latest,
        page=page,
        heartbeats=heartbeats,
        heartbeat_age=heartbeat_age(),
        now=utcnow(),
        scheduler_enabled=current_app.config["SCHEDULER_ENABLED"],
        pdf_slow=pdf.subsetting_missing(),
    )


@bp.route("/admin/settings", methods=["GET", "POST"])
@require("settings.manage")
def settings_edit():
    """The portal's settings; each change is checked and audited, all saved together or none."""
    form = SettingsForm()
    if request.method == "GET":
        values = settings.get_settings(*SettingsForm.KEYS)
        form.leaderboard_humane.data = values["leaderboard_humane"]
        form.leaderboard_top_n.data = str(values["leaderboard_top_n"])
    if form.validate_on_submit():
        refused = False
        for key in SettingsForm.KEYS:
            field = form[key]
            try:
                settings.set_setting(key, field.data, current_user)
            except settings.SettingError as err:
                field.errors = [*field.errors, err.message]
                refused = True
        if not refused:
            db.session.commit()
            return redirect_to(url_for("system.settings_edit", saved=1))
        db.session.rollback()
    return render(
        "system/settings.html",
        "form",
        status=422 if form.is_submitted() else 200,
        form=form,
        saved=bool(request.args.get("saved")),
    )
