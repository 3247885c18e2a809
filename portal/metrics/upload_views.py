"""Uploading data files: the file is checked (nothing stored), then imported, each as a task
the scheduler runs while the page shows its progress; and the import history."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, current_app, request, url_for
from flask_babel import format_decimal, get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.db import utcnow
from portal.extensions import db
from portal.jobs import heartbeat_age
from portal.metrics import uploads
from portal.metrics.ingest import KEEP_REJECTIONS, KINDS
from portal.metrics.messages import actor_shown, shown
from portal.metrics.models import ImportRecord, UploadTask
from portal.web.auth import require
from portal.web.htmx import redirect_to, render
from portal.web.pages import Page, paginate

bp = Blueprint("imports", __name__)

KIND_LABELS = {
    "interactions": _l("Interactions (call records)"),
    "surveys": _l("Survey responses"),
    "qa": _l("QA evaluations"),
    "metric-values": _l("Supplied metric values"),
}
# A queued task not picked up within this many seconds means no scheduler is running.
SCHEDULER_EXPECTED_SECONDS = 90
REJECTIONS_PER_PAGE = 100


@dataclass
class Rejections(Page):
    """One page of the rejections an import kept (at most KEEP_REJECTIONS), and how many
    more were rejected than kept."""

    rejected: int = 0  # in all
    kept_at_most: int = KEEP_REJECTIONS

    @property
    def more(self) -> int:
        """Rejected rows not kept, so listed nowhere."""
        return max(0, self.rejected - self.total)


def file_size(size: int) -> str:
    """A file's size in the current language (Jinja's filesizeformat writes English)."""
    if size < 1024:
        return gettext("%(n)s bytes", n=format_decimal(size))
    if size < 1024 * 1024:
        return gettext("%(n)s KB", n=format_decimal(round(size / 1024, 1)))
    return gettext("%(n)s MB", n=format_decimal(round(size / (1024 * 1024), 1)))


def _rejections(kept: list | None, rejected: int) -> Rejections:
    found = paginate(kept or [], request.args.get("page", 1, type=int), REJECTIONS_PER_PAGE)
    return Rejections(**vars(found), rejected=rejected)


def _max_mb() -> int:
    return current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)


@bp.get("/imports")
@require("imports.manage")
def import_list():
    page = db.paginate(
        select(ImportRecord).order_by(ImportRecord.started_at.desc(), ImportRecord.id.desc()),
        page=request.args.get("page", 1, type=int),
        per_page=25,
        error_out=False,
    )
    running = db.session.scalars(
        select(UploadTask)
        .options(joinedload(UploadTask.user))
        .where(UploadTask.status.in_(("queued", "running")))
        .order_by(UploadTask.id)
    ).all()
    return render(
        "imports/list.html",
        "history",
        page=page,
        running=running,
        kinds=KIND_LABELS,
        max_mb=_max_mb(),
        actor=actor_shown,
    )


@bp.post("/imports/preview")
@require("imports.manage")
def import_preview():
    kind = request.form.get("kind", "")
    upload = request.files.get("file")
    if kind not in KINDS or upload is None or not upload.filename:
        return render(
            "imports/list.html",
            status=422,
            page=None,
            running=[],
            kinds=KIND_LABELS,
            max_mb=_max_mb(),
            error=_l("Choose what the file contains and the file to upload."),
        )
    task = uploads.queue_preview(
        upload.stream, upload.filename, kind, current_user, str(get_locale() or "zh_CN")
    )
    db.session.commit()
    return redirect_to(url_for("imports.import_task", task_id=task.id))


@bp.post("/imports/commit")
@require("imports.manage")
def import_commit():
    token = request.form.get("token", "")
    preview = db.session.scalar(
        select(UploadTask).where(UploadTask.token == token, UploadTask.action == "preview")
    )
    if preview is None or not token.isalnum():
        abort(404)
    if not uploads.can_view_task(current_user, preview):
        abort(403)
    try:
        task = uploads.queue_import(preview, request.form.get("valid_only") == "1")
    except uploads.UploadError:
        abort(404)
    db.session.commit()
    return redirect_to(url_for("imports.import_task", task_id=task.id))


@bp.get("/imports/tasks/<int:task_id>")
@require("imports.manage")
def import_task(task_id: int):
    """A check or an import: its progress while it runs, then its outcome."""
    task = db.session.get(UploadTask, task_id)
    if task is None:
        abort(404)
    if not uploads.can_view_task(current_user, task):
        abort(403)
    if task.status == "done" and task.action == "import" and task.import_id:
        return redirect_to(url_for("imports.import_detail", import_id=task.import_id))
    if task.status == "done" and task.action == "preview":
        if request.args.get("poll"):  # the polling fragment: load the whole page once
            return redirect_to(url_for("imports.import_task", task_id=task.id))
        imported = db.session.scalar(
            select(UploadTask.id).where(
                UploadTask.token == task.token, UploadTask.action == "import"
            )
        )
        return render(
            "imports/preview.html",
            task=task,
            preview=task.result,
            rejections=_rejections(task.result["rejections"], task.result["rejected"]),
            kind_label=KIND_LABELS[task.kind],
            import_task_id=imported,
            shown=shown,
        )
    now = utcnow()
    waited = (now - task.created_at).total_seconds()
    age = heartbeat_age(now)
    return render(
        "imports/task.html",
        "status",
        task=task,
        size=file_size(task.size_bytes),
        # Tasks that failed before their errors were kept as messages: their text was technical.
        error=shown(task.error) if isinstance(task.error, dict) else None,
        progress=uploads.progress(task),
        kind_label=KIND_LABELS[task.kind],
        no_scheduler=task.status == "queued"
        and waited > 10
        and (age is None or age > SCHEDULER_EXPECTED_SECONDS),
        stale=uploads.is_stale(task, now),
    )


@bp.get("/imports/<int:import_id>")
@require("imports.manage")
def import_detail(import_id: int):
    record = db.session.get(ImportRecord, import_id)
    if record is None:
        abort(404)
    return render(
        "imports/detail.html",
        record=record,
        kinds=KIND_LABELS,
        rejections=_rejections(record.rejections, record.rejected),
        shown=shown,
        actor=actor_shown,
    )
