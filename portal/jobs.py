"""Every periodic job, declared in one list, and the scheduler that runs them.

A job is a thin wrapper around a service. Before working it claims its time slot by inserting a
`JobRun` row whose (job_id, slot) is unique: a second scheduler process, another host or a rerun
finds the slot taken and does nothing. In production exactly one `flask scheduler run` process
runs beside the web workers; web processes never run jobs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from portal.db import utcnow
from portal.extensions import db
from portal.system.models import JobRun, SchedulerHeartbeat

log = logging.getLogger(__name__)

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
HEARTBEAT_SECONDS = 30
UPLOAD_POLL_SECONDS = 2  # how soon an uploaded file's check or import starts
STALE_RUN = timedelta(hours=6)


@dataclass(frozen=True)
class Job:
    id: str
    func: Callable[[datetime], str]  # does the work for `now`, returns a one-line summary
    minutes: int  # runs every `minutes` (a divisor of a day), aligned to UTC midnight
    description: object

    def __post_init__(self):
        if 1440 % self.minutes:
            raise ValueError(f"job {self.id}: minutes must divide 1440")

    def slot(self, now: datetime) -> str:
        """The time slot `now` falls in: the claim key of this run."""
        step = self.minutes * 60
        start = EPOCH + timedelta(seconds=((now - EPOCH).total_seconds() // step) * step)
        return start.strftime("%Y-%m-%dT%H:%M")


def purge_login_records(now: datetime) -> str:
    """Delete expired login-throttle records and ended sessions."""
    from portal.accounts.security import purge_expired

    window = timedelta(minutes=current_app.config["LOGIN_FAILURE_WINDOW_MINUTES"])
    failures, sessions = purge_expired(now, window)
    return f"removed {failures} login failures and {sessions} ended sessions"


def purge_uploads(now: datetime) -> str:
    """Delete uploaded files whose preview was never imported, a day later, and forget
    finished upload tasks after a week."""
    from portal.metrics import uploads

    removed = 0
    cutoff = now.timestamp() - 24 * 3600
    for path in uploads.folder().glob("*"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    tasks = uploads.purge(now)
    db.session.commit()
    return f"removed {removed} abandoned upload files and {tasks} finished upload tasks"


def run_upload_tasks() -> None:
    """Check and import uploaded files (every few seconds, outside the slot claims: each
    task is claimed on its own)."""
    from sqlalchemy.exc import OperationalError

    from portal.metrics.uploads import run_upload_tasks as run

    try:
        run()
    except OperationalError as exc:  # SQLite: another process's import holds the write lock
        db.session.rollback()
        log.info("upload tasks wait: %s", exc.orig)


def run_close_requests() -> None:
    """Close the periods an admin asked to close now (every few seconds, like uploads; each
    close claims its period itself), then render certificates still missing."""
    from sqlalchemy.exc import OperationalError

    from portal.periods.services import render_pending_certificates, run_requested_closes

    try:
        run_requested_closes(utcnow())
        render_pending_certificates(utcnow())
    except OperationalError as exc:  # SQLite: an import holds the write lock; next poll
        db.session.rollback()
        log.info("close requests wait: %s", exc.orig)


def run_report_requests() -> None:
    """Render the period report PDFs admins asked for (every few seconds, like close requests;
    each render claims its request itself)."""
    from sqlalchemy.exc import OperationalError

    from portal.periods.report_files import run_report_requests as run

    try:
        run(utcnow())
    except OperationalError as exc:  # SQLite: an import holds the write lock; next poll
        db.session.rollback()
        log.info("report requests wait: %s", exc.orig)


def import_inbox(now: datetime) -> str:
    """Import the files waiting in INBOX_DIR."""
    from portal.metrics.inbox import import_inbox as run

    return run(now)


def _local_day(now: datetime):
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(current_app.config["PORTAL_TIMEZONE"])).date()


def evaluate_alerts(now: datetime) -> str:
    """Check the alert rules on the agents' daily figures up to yesterday."""
    from portal.alerts.services import evaluate_rules

    return evaluate_rules(_local_day(now), now)


def sync_periods(now: datetime) -> str:
    """Create the periods of every plan's kind, up to one ahead."""
    from portal.periods.services import sync_periods as sync

    return f"created {sync(_local_day(now))} period(s)"


def close_periods(now: datetime) -> str:
    """Close every period whose close time has passed (each exactly once)."""
    from portal.periods.services import close_due_periods

    return close_due_periods(now)


def appeal_deadlines(now: datetime) -> str:
    """Remind appeal reviewers before the deadline; escalate overdue appeals (each once)."""
    from portal.qa.services import remind_and_escalate

    return remind_and_escalate(now)


def send_notification_emails(now: datetime) -> str:
    """E-mail copies of new notifications (when SMTP_HOST is set)."""
    from portal.notifications.services import send_emails

    return send_emails(now)


JOBS: list[Job] = [
    Job(
        id="purge_login_records",
        func=purge_login_records,
        minutes=15,
        description=_l("Remove expired login-throttle records and ended sessions"),
    ),
    Job(
        id="purge_uploads",
        func=purge_uploads,
        minutes=60,
        description=_l("Remove uploaded files whose preview was never imported"),
    ),
    Job(
        id="import_inbox",
        func=import_inbox,
        minutes=5,
        description=_l("Import the files dropped into the inbox folder"),
    ),
    Job(
        id="evaluate_alerts",
        func=evaluate_alerts,
        minutes=360,
        description=_l("Check the alert rules and open improvement plans"),
    ),
    Job(
        id="sync_periods",
        func=sync_periods,
        minutes=60,
        description=_l("Create the assessment periods of every plan"),
    ),
    Job(
        id="close_periods",
        func=close_periods,
        minutes=15,
        description=_l("Close the periods whose close time has passed"),
    ),
    Job(
        id="appeal_deadlines",
        func=appeal_deadlines,
        minutes=30,
        description=_l("Remind appeal reviewers and escalate overdue appeals"),
    ),
    Job(
        id="send_notification_emails",
        func=send_notification_emails,
        minutes=5,
        description=_l("E-mail copies of new notifications"),
    ),
]


def job_by_id(job_id: str) -> Job:
    for job in JOBS:
        if job.id == job_id:
            return job
    raise KeyError(job_id)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job: Job, now: datetime | None = None) -> JobRun | None:
    """Claim `job`'s current slot and run it; None when another process already claimed it."""
    now = now or utcnow()
    _mark_stale_runs(job, now)
    run = JobRun(
        job_id=job.id, slot=job.slot(now), status="running", started_at=now, worker=worker_name()
    )
    db.session.add(run)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    try:
        detail = job.func(now)
        run.status, run.detail = "ok", detail or ""
    except Exception as exc:  # the failure is recorded and shown on the jobs page
        db.session.rollback()
        log.exception("job %s failed", job.id)
        run = db.session.get(JobRun, run.id)
        run.status = "failed"
        run.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
    run.finished_at = utcnow()
    db.session.commit()
    return run


def _mark_stale_runs(job: Job, now: datetime) -> None:
    """A run left 'running' long ago belonged to a process that died: say so."""
    db.session.execute(
        update(JobRun)
        .where(
            JobRun.job_id == job.id, JobRun.status == "running", JobRun.started_at < now - STALE_RUN
        )
        .values(status="failed", error="interrupted: the scheduler process ended during the run")
    )
    db.session.commit()


def beat(worker: str, started_at: datetime, now: datetime | None = None) -> None:
    """Record that this scheduler process is alive."""
    now = now or utcnow()
    row = db.session.get(SchedulerHeartbeat, worker)
    if row is None:
        db.session.add(SchedulerHeartbeat(worker=worker, started_at=started_at, beat_at=now))
    else:
        row.beat_at = now
    db.session.commit()


def heartbeat_age(now: datetime | None = None) -> float | None:
    """Seconds since any scheduler last beat, or None if none ever ran."""
    latest = db.session.scalar(
        select(SchedulerHeartbeat.beat_at).order_by(SchedulerHeartbeat.beat_at.desc()).limit(1)
    )
    if latest is None:
        return None
    return round(((now or utcnow()) - latest).total_seconds(), 1)


def _in_app(app: Flask, func: Callable, *args) -> Callable:
    def call():
        with app.app_context():
            try:
                func(*args)
            finally:
                db.session.remove()

    return call


def run_scheduler(app: Flask, once: bool = False) -> None:
    """Run every job on its schedule in the foreground (or each due job once, with `once`)."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    worker, started = worker_name(), utcnow()
    if once:
        with app.app_context():
            beat(worker, started)
            for job in JOBS:
                run_job(job)
            run_upload_tasks()
            run_close_requests()
            run_report_requests()
        return

    scheduler = BlockingScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
    )
    scheduler.add_job(
        _in_app(app, beat, worker, started),
        IntervalTrigger(seconds=HEARTBEAT_SECONDS, start_date=EPOCH),
        id="heartbeat",
        next_run_time=utcnow(),
    )
    scheduler.add_job(
        _in_app(app, run_upload_tasks),
        IntervalTrigger(seconds=UPLOAD_POLL_SECONDS, start_date=EPOCH),
        id="upload_tasks",
        next_run_time=utcnow(),
    )
    scheduler.add_job(
        _in_app(app, run_close_requests),
        IntervalTrigger(seconds=UPLOAD_POLL_SECONDS, start_date=EPOCH),
        id="close_requests",
        next_run_time=utcnow(),
    )
    scheduler.add_job(
        _in_app(app, run_report_requests),
        IntervalTrigger(seconds=UPLOAD_POLL_SECONDS, start_date=EPOCH),
        id="report_requests",
        next_run_time=utcnow(),
    )
    for job in JOBS:
        scheduler.add_job(
            _in_app(app, run_job, job),
            IntervalTrigger(minutes=job.minutes, start_date=EPOCH),
            id=job.id,
            next_run_time=utcnow(),
        )
    log.info("scheduler %s running %d jobs", worker, len(JOBS))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
