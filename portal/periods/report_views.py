"""The admin's period report: a closed period's results version summed up, drawn and listed,
as a page and as a PDF, and its results as CSV or XLSX. The PDF is rendered by the scheduler
(portal/periods/report_files.py): a download asks for it and waits on a page that polls."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request, send_file, url_for
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import select

from portal.db import utcnow
from portal.extensions import db
from portal.jobs import heartbeat_age
from portal.periods import report_files
from portal.periods.models import PeriodRow
from portal.periods.report import Report, period_report
from portal.periods.results import export_rows, versions
from portal.scoring.export import download
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("period_reports", __name__)

MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
NO_SCHEDULER_AFTER = 120  # seconds without a heartbeat: no scheduler is running


def _closed(key: str) -> tuple[PeriodRow, int]:
    """The closed period `key` and the results version asked for (the latest by default)."""
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
    if row is None or row.closed_at is None:
        abort(404)
    number = request.args.get("version", row.results_version, type=int)
    if not 1 <= number <= row.results_version:
        abort(404)
    return row, number


def _load(key: str) -> Report:
    row, number = _closed(key)
    report = period_report(row, number, report_files.chart_labels())
    if report is None:
        abort(404)
    return report


def _wanted(key: str) -> report_files.Wanted:
    row, number = _closed(key)
    locale = str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])
    wanted = report_files.wanted_file(row, number, locale)
    if wanted is None:
        abort(404)
    return wanted


def _asked(wanted: report_files.Wanted):
    """The request for the wanted file, recorded when there is none yet (or its file has
    gone). This GET writes: the read-only transaction ends first (see request_report)."""
    found = report_files.find_request(wanted)
    if found is not None and found.finished_at is None:
        return found
    actor_id = current_user.id
    db.session.commit()
    found = report_files.request_report(wanted, actor_id, utcnow())
    db.session.commit()
    return found


def _waiting(wanted: report_files.Wanted, http_status: int = 200) -> Response:
    """The page (or, polled, its fragment) that waits for the PDF and then links it."""
    asked = None if wanted.path.is_file() else _asked(wanted)
    now = utcnow()
    state = "ready" if asked is None else report_files.request_state(asked, now)
    age = heartbeat_age(now)
    return render(
        "periods/report_pdf_wait.html",
        "progress",
        status=http_status,
        row=db.session.get(PeriodRow, wanted.period_id),
        wanted=wanted,
        asked=asked,
        pdf_state=state,
        no_scheduler=state == "queued" and (age is None or age > NO_SCHEDULER_AFTER),
    )


@bp.get("/admin/periods/<key>/report")
@require("periods.manage")
def report(key: str):
    """The report as a page: summary, charts and awards, with the downloads."""
    found = _load(key)
    return render(
        "periods/report.html", versions=versions(found.row), **report_files.report_context(found)
    )


@bp.get("/admin/periods/<key>/report.pdf")
@require("periods.manage")
def report_pdf(key: str):
    """The report as a PDF (summary, charts, awards and every agent's result), sent from its
    file; when the file is not rendered yet, asked for, with a page that waits for it."""
    wanted = _wanted(key)
    if wanted.path.is_file():
        return send_file(
            wanted.path,
            mimetype="application/pdf",
            as_attachment=True,
            download_name=wanted.download_name,
            max_age=0,
        )
    return _waiting(wanted, 202)


@bp.get("/admin/periods/<key>/report-pdf/progress")
@require("periods.manage")
def report_pdf_progress(key: str):
    """How the PDF's render is getting on, polled by the waiting page every 2 seconds."""
    return _waiting(_wanted(key))


@bp.post("/admin/periods/<key>/report-pdf/retry")
@require("periods.manage")
def report_pdf_retry(key: str):
    """Ask again for a PDF whose render failed."""
    wanted = _wanted(key)
    found = report_files.find_request(wanted)
    if found is None:
        report_files.request_report(wanted, current_user.id, utcnow())
    else:
        report_files.retry_report(found, current_user.id, utcnow())
    db.session.commit()
    return redirect_to(url_for("period_reports.report_pdf", key=key, version=wanted.number))


@bp.get("/admin/periods/<key>/results.<any(csv, xlsx):fmt>")
@require("periods.manage")
def results_file(key: str, fmt: str):
    """The frozen results version as a spreadsheet file (text that could run as a formula is
    quoted)."""
    row, number = _closed(key)
    name = f"results-{row.key}-v{number}.{fmt}"
    return Response(
        download(export_rows(row, number), fmt),
        mimetype=MIMETYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
