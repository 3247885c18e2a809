"""The admin's period report: a closed period's results version summed up, drawn and listed,
as a page and as a PDF, and its results as CSV or XLSX."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.awards.services import STATUS_NAMES, award_name
from portal.extensions import db
from portal.pdf import CJK_FONTS, render_pdf
from portal.periods.models import PeriodRow
from portal.periods.report import Report, period_report
from portal.periods.results import export_rows, versions
from portal.scoring.export import download
from portal.web.auth import require
from portal.web.htmx import render

bp = Blueprint("period_reports", __name__)

CHART_LABELS = {
    "histogram": _l("Final scores of the eligible agents"),
    "teams": _l("Mean final of each team's eligible members"),
}
MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


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
    report = period_report(row, number, {k: str(v) for k, v in CHART_LABELS.items()})
    if report is None:
        abort(404)
    return report


def _context(report: Report) -> dict:
    return {
        "report": report,
        "award_name": award_name,
        "award_states": STATUS_NAMES,
        "fonts": CJK_FONTS,
    }


@bp.get("/admin/periods/<key>/report")
@require("periods.manage")
def report(key: str):
    """The report as a page: summary, charts and awards, with the downloads."""
    found = _load(key)
    return render("periods/report.html", versions=versions(found.row), **_context(found))


@bp.get("/admin/periods/<key>/report.pdf")
@require("periods.manage")
def report_pdf(key: str):
    """The report as a PDF: summary, charts, awards and every agent's result."""
    found = _load(key)
    pdf = render_pdf(render_template("periods/report_pdf.html", **_context(found)))
    name = f"report-{found.row.key}-v{found.version.number}.pdf"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


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
