"""Uploading data files: preview first (nothing stored), then import; the import history."""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime
from pathlib import Path

from flask import Blueprint, abort, current_app, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.models import User
from portal.extensions import db
from portal.metrics.ingest import KINDS, run_import
from portal.metrics.models import ImportRecord
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("imports", __name__)

KIND_LABELS = {
    "interactions": _l("Interactions (call records)"),
    "surveys": _l("Survey responses"),
    "qa": _l("QA evaluations"),
    "metric-values": _l("Supplied metric values"),
}
# Parsed fields that name a user: shown as the employee number.
USER_FIELDS = ("agent_id", "evaluator_id")
HIDDEN_FIELDS = ("offered_s", "ended_s", "offered_day", "_interaction", "original_score")


def _uploads() -> Path:
    folder = Path(current_app.instance_path) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stored(token: str) -> tuple[Path, dict]:
    """The uploaded file of `token`, if it belongs to the current user."""
    if not token.isalnum():
        abort(404)
    path = _uploads() / f"{token}.upload"
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        abort(404)
    meta = json.loads(meta_path.read_text())
    if meta["user_id"] != current_user.id:
        abort(403)
    return path, meta


def _display_rows(sample: list[dict]) -> tuple[list[str], list[dict]]:
    ids = {row[f] for row in sample for f in USER_FIELDS if row.get(f)}
    numbers = dict(db.session.execute(select(User.id, User.agent_no).where(User.id.in_(ids))).all())
    columns = [k for k in (sample[0] if sample else {}) if k not in HIDDEN_FIELDS]
    rows = []
    for row in sample:
        shown = {}
        for key in columns:
            value = row.get(key)
            shown[key] = numbers.get(value, value) if key in USER_FIELDS else value
        rows.append(shown)
    return [c.replace("_id", "_no") if c in USER_FIELDS else c for c in columns], rows


@bp.get("/imports")
@require("imports.manage")
def import_list():
    page = db.paginate(
        select(ImportRecord).order_by(ImportRecord.started_at.desc(), ImportRecord.id.desc()),
        page=request.args.get("page", 1, type=int),
        per_page=25,
        error_out=False,
    )
    return render(
        "imports/list.html",
        "history",
        page=page,
        kinds=KIND_LABELS,
        max_mb=current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
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
            kinds=KIND_LABELS,
            max_mb=current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
            error=_l("Choose what the file contains and the file to upload."),
        )
    token = secrets.token_hex(16)
    path = _uploads() / f"{token}.upload"
    upload.save(path)
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "kind": kind,
                "filename": Path(upload.filename).name,
                "user_id": current_user.id,
                "at": datetime.now().isoformat(),
            }
        )
    )
    with path.open("rb") as stream:
        preview = run_import(
            kind, stream, filename=upload.filename, door="upload", actor=current_user, dry_run=True
        )
    columns, rows = _display_rows(preview.sample)
    return render(
        "imports/preview.html",
        preview=preview,
        token=token,
        kind=kind,
        kind_label=KIND_LABELS[kind],
        filename=Path(upload.filename).name,
        sample_columns=columns,
        sample_rows=rows,
    )


@bp.post("/imports/commit")
@require("imports.manage")
def import_commit():
    path, meta = _stored(request.form.get("token", ""))
    valid_only = request.form.get("valid_only") == "1"
    with path.open("rb") as stream:
        record = run_import(
            meta["kind"],
            stream,
            filename=meta["filename"],
            door="upload",
            actor=current_user,
            valid_only=valid_only,
        )
    db.session.commit()
    os.remove(path)
    os.remove(path.with_suffix(".json"))
    return redirect_to(url_for("imports.import_detail", import_id=record.id))


@bp.get("/imports/<int:import_id>")
@require("imports.manage")
def import_detail(import_id: int):
    record = db.session.get(ImportRecord, import_id)
    if record is None:
        abort(404)
    return render("imports/detail.html", record=record, kinds=KIND_LABELS)
