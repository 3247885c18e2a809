"""Health check and the scheduler's job history."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from sqlalchemy import func, select, text

from portal.db import utcnow
from portal.extensions import db
from portal.jobs import JOBS, heartbeat_age
from portal.system.models import JobRun, SchedulerHeartbeat
from portal.web.auth import public, require
from portal.web.htmx import render

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
    )
