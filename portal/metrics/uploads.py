"""Uploaded files, checked and imported as tasks the scheduler runs while the page polls.

The web request only stores the file and queues a task; the scheduler process claims it with a
conditional update (so two schedulers never run it twice), runs the one import pipeline, and
writes its progress to a small file beside the upload: the import's own transaction holds
SQLite's write lock, so progress cannot go through the database while it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from portal.accounts.models import User
from portal.db import utcnow
from portal.extensions import db
from portal.metrics import messages
from portal.metrics.ingest import Preview, run_import
from portal.metrics.models import ImportRecord, UploadTask
from portal.web.filters import local_datetime

# Columns of the preview's rows that hold a user's id: shown as the employee number.
USER_FIELDS = ("agent_no", "evaluator_no")
# A running task whose progress file has not moved for this long belongs to a dead process.
STALE_AFTER = timedelta(minutes=5)
KEEP_TASKS = timedelta(days=7)

# Why a task failed, in words the uploader can act on (the details go to the log).
FILE_GONE = _l(
    "The uploaded file is no longer there (files not imported within a day are deleted). "
    "Upload it again."
)
INTERRUPTED = _l(
    "The scheduler process working on this stopped before it finished (was it restarted?), so "
    "nothing was stored. Upload the file again."
)
DATABASE_BUSY = _l(
    "The database stayed busy with other changes for too long, so nothing was stored. Try again "
    "in a while; import large files outside office hours."
)


class UploadError(ValueError):
    """A request about an upload that cannot be honoured, with the reason to show."""


def folder() -> Path:
    path = Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_of(task: UploadTask) -> Path:
    return folder() / f"{task.token}.upload"


def _progress_path(task: UploadTask) -> Path:
    return folder() / f"{task.token}.{task.action}.progress"


def can_view_task(user: User, task: UploadTask) -> bool:
    """An uploader follows their own uploads only."""
    return task.user_id == user.id


def queue_preview(stream, filename: str, kind: str, user: User, locale: str) -> UploadTask:
    """Store an uploaded file and queue its check."""
    token = secrets.token_hex(16)
    task = UploadTask(
        token=token,
        action="preview",
        user_id=user.id,
        kind=kind,
        filename=Path(filename).name[:255],
        locale=locale,
    )
    path = folder() / f"{token}.upload"
    with path.open("wb") as out:
        while block := stream.read(1 << 20):
            out.write(block)
    task.size_bytes = path.stat().st_size
    db.session.add(task)
    db.session.flush()
    return task


def queue_import(preview: UploadTask, valid_only: bool) -> UploadTask:
    """Queue the import of a checked file; a second request returns the task already queued."""
    if preview.action != "preview" or preview.status != "done":
        raise UploadError("The file has not been checked yet; wait for its preview.")
    existing = db.session.scalar(
        select(UploadTask).where(UploadTask.token == preview.token, UploadTask.action == "import")
    )
    if existing is not None:
        return existing
    if not file_of(preview).exists():
        raise UploadError("The uploaded file is no longer there; upload it again.")
    task = UploadTask(
        token=preview.token,
        action="import",
        user_id=preview.user_id,
        kind=preview.kind,
        filename=preview.filename,
        size_bytes=preview.size_bytes,
        valid_only=valid_only,
        locale=preview.locale,
    )
    try:
        with db.session.begin_nested():
            db.session.add(task)
    except IntegrityError:  # the same click, from another request at the same moment
        return db.session.scalar(
            select(UploadTask).where(
                UploadTask.token == preview.token, UploadTask.action == "import"
            )
        )
    return task


def progress(task: UploadTask) -> dict:
    """Rows and bytes read so far by a running task, and when that was last reported."""
    try:
        return json.loads(_progress_path(task).read_text())
    except (FileNotFoundError, ValueError):
        return {"rows": 0, "bytes": 0, "at": None}


def _report(task: UploadTask, rows: int, done: int) -> None:
    path = _progress_path(task)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"rows": rows, "bytes": done, "at": utcnow().isoformat()}))
    os.replace(temporary, path)


def run_upload_tasks(now: datetime | None = None) -> str:
    """Run every queued task, oldest first, each claimed before it runs."""
    now = now or utcnow()
    failed = _fail_stale(now)
    done = 0
    while True:
        task_id = db.session.scalar(
            select(UploadTask.id)
            .where(UploadTask.status == "queued")
            .order_by(UploadTask.id)
            .limit(1)
        )
        if task_id is None:
            break
        claimed = db.session.execute(
            update(UploadTask)
            .where(UploadTask.id == task_id, UploadTask.status == "queued")
            .values(status="running", started_at=utcnow(), worker=_worker())
        ).rowcount
        db.session.commit()
        if claimed:
            run_task(db.session.get(UploadTask, task_id))
            done += 1
    return f"ran {done} upload task(s), {failed} interrupted"


def _worker() -> str:
    from portal.jobs import worker_name

    return worker_name()


def run_task(task: UploadTask) -> None:
    """Check or import the task's file; the task's outcome commits with the import's data."""
    path = file_of(task)
    actor = db.session.get(User, task.user_id)
    try:
        with force_locale(task.locale), path.open("rb") as stream:
            outcome = run_import(
                task.kind,
                stream,
                filename=task.filename,
                door="upload",
                actor=actor,
                valid_only=task.valid_only,
                dry_run=task.action == "preview",
                progress=lambda rows, done: _report(task, rows, done),
            )
            if isinstance(outcome, Preview):
                task.result = _preview_result(outcome)
    except FileNotFoundError:
        db.session.rollback()
        _failed(db.session.get(UploadTask, task.id), FILE_GONE, utcnow(), started=False)
        db.session.commit()
        return
    except Exception as exc:  # the uploader reads what to do; the log has the details
        current_app.logger.exception("upload task %s failed", task.id)
        db.session.rollback()
        _failed(db.session.get(UploadTask, task.id), _failure(exc, task.id), utcnow())
        db.session.commit()
        return
    if not isinstance(outcome, Preview):
        task.import_id = outcome.id
    # Done only if still running: a task another scheduler took for dead meanwhile was
    # reported failed with nothing stored, and so it stays (its import is undone).
    finished = db.session.execute(
        update(UploadTask)
        .where(UploadTask.id == task.id, UploadTask.status == "running")
        .values(status="done", finished_at=utcnow())
    ).rowcount
    if not finished:
        current_app.logger.warning("upload task %s was marked failed while it ran", task.id)
        db.session.rollback()
        return
    db.session.commit()
    _progress_path(task).unlink(missing_ok=True)
    if task.action == "import":
        path.unlink(missing_ok=True)


def _failure(exc: Exception, task_id: int):
    """What the uploader is told about an error that stopped their task."""
    if isinstance(exc, OperationalError) and "locked" in str(exc):  # SQLite's write lock
        return DATABASE_BUSY
    return _l(
        "An unexpected error stopped this, so nothing was stored. Try again; if it happens "
        "again, tell the portal's administrators (the details are in the scheduler's log, "
        "upload task %(id)s).",
        id=task_id,
    )


def _failed(task: UploadTask, message, now: datetime, *, started: bool = True) -> None:
    """Mark a task failed, with what to tell the uploader. An import that had started leaves
    a failed import record (its rows were rolled back): what it was, and why."""
    task.status, task.finished_at = "failed", now
    task.error = messages.stored(message)
    if started and task.action == "import":
        path = file_of(task)
        record = ImportRecord(
            kind=task.kind,
            door="upload",
            filename=task.filename,
            checksum=_checksum(path),
            actor_id=task.user_id,
            actor_label=f"{task.user.agent_no} {task.user.name}",
            started_at=task.started_at or now,
            finished_at=now,
            status="failed",
            valid_only=task.valid_only,
            rows_read=progress(task)["rows"],
            message=messages.stored(message),
        )
        db.session.add(record)
        db.session.flush()
        task.import_id = record.id
    _progress_path(task).unlink(missing_ok=True)


def _checksum(path: Path) -> str:
    """The SHA-256 of a stored upload; empty when it cannot be read any more."""
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while block := stream.read(1 << 20):
                hasher.update(block)
    except OSError:
        return ""
    return hasher.hexdigest()


def _fail_stale(now: datetime) -> int:
    """Mark running tasks whose process died as failed (their import rolled back with it)."""
    stale = 0
    running = db.session.scalars(select(UploadTask).where(UploadTask.status == "running")).all()
    for task in running:
        if not is_stale(task, now):
            continue
        # Claimed first, so that two schedulers never both report it (nor one report a task
        # that just finished).
        claimed = db.session.execute(
            update(UploadTask)
            .where(UploadTask.id == task.id, UploadTask.status == "running")
            .values(status="failed", finished_at=now)
        ).rowcount
        if claimed:
            _failed(task, INTERRUPTED, now)
            stale += 1
        db.session.commit()
    return stale


def is_stale(task: UploadTask, now: datetime) -> bool:
    reported = progress(task)["at"]
    last = datetime.fromisoformat(reported) if reported else task.started_at or task.created_at
    return task.status == "running" and now - last > STALE_AFTER


def purge(now: datetime) -> int:
    """Forget finished tasks after a week (their imports stay in the import history)."""
    result = db.session.execute(
        delete(UploadTask).where(
            UploadTask.status.in_(("done", "failed")), UploadTask.finished_at < now - KEEP_TASKS
        )
    )
    return result.rowcount


def _preview_result(preview: Preview) -> dict:
    """The preview as the page shows it: plain JSON, values already formatted."""
    result = asdict(preview)
    ids = {row[f] for row in preview.sample for f in USER_FIELDS if row.get(f)}
    numbers = dict(db.session.execute(select(User.id, User.agent_no).where(User.id.in_(ids))).all())
    columns = list(preview.sample[0]) if preview.sample else []  # "row", then the file's
    result["sample_columns"] = columns
    result["sample"] = [
        [
            _shown(numbers.get(row.get(c), row.get(c)) if c in USER_FIELDS else row.get(c))
            for c in columns
        ]
        for row in preview.sample
    ]
    result["importable"] = preview.importable
    return result


def _shown(value) -> str:
    if value is None:
        return "—"
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, datetime):
        return local_datetime(value, "yyyy-MM-dd HH:mm:ss")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
