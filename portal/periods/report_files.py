"""The period report as a PDF file. Laying out every agent's result takes seconds (7–10 s for
1,000 agents), longer than a web request may run, so an admin's download asks for the file and
the scheduler renders it into REPORTS_DIR; later downloads send the file until what the report
shows changes.

A file is named by its period, results version, language and a fingerprint of what the report
shows besides the frozen results (its awards and whether agents see the version): a decision
on an award makes the fingerprint, and so the file asked for, a new one."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from portal.awards.models import Award
from portal.awards.services import STATUS_NAMES, award_name
from portal.db import utcnow
from portal.extensions import db
from portal.pdf import CJK_FONTS, render_pdf
from portal.periods.models import PeriodRow, ReportRequest, ResultsVersion
from portal.periods.report import Report, period_awards, period_report

log = logging.getLogger(__name__)

CHART_LABELS = {
    "histogram": _l("Final scores of the eligible agents"),
    "teams": _l("Mean final of each team's eligible members"),
}
# A render whose claim is this old belonged to a scheduler that died (a render of 5,000 agents
# takes well under a minute): the next poll takes it over, up to MAX_ATTEMPTS claims in all.
STALE_RENDER = timedelta(minutes=10)
MAX_ATTEMPTS = 3
INTERRUPTED = (
    f"interrupted: the scheduler process stopped while rendering it ({MAX_ATTEMPTS} attempts)"
)


def folder() -> Path:
    return Path(current_app.config["REPORTS_DIR"])


def chart_labels() -> dict[str, str]:
    """The charts' captions in the current language."""
    return {name: str(label) for name, label in CHART_LABELS.items()}


def report_context(report: Report) -> dict:
    """What the report's templates (page and PDF) need besides the report."""
    return {
        "report": report,
        "award_name": award_name,
        "award_states": STATUS_NAMES,
        "fonts": CJK_FONTS,
    }


def report_fingerprint(row: PeriodRow, version: ResultsVersion, awards: list[Award]) -> str:
    """A hash of what the report shows that can change after the close: each reported award
    (state, holder, citation, certificate) and the version agents see. The frozen results
    cannot change: the version's identity stands for them (its row and freezing time, so a
    database restored from a backup and revised again never meets an older file)."""
    shown: list = [version.id, version.created_at, row.published_version, row.published_at]
    for award in awards:
        shown.append(
            [
                award.id,
                award.status,
                award.award_type.code,
                award.award_type.name,
                award.agent_id,
                award.agent.name,
                award.cohort,
                award.rank,
                award.final,
                award.citation,
                award.certificate_no,
                bool(award.pdf_path),
            ]
        )
    text = json.dumps(shown, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Wanted:
    """The report file that shows a period's version as it stands now, in one language."""

    period_id: int
    key: str
    number: int
    locale: str
    fingerprint: str

    @property
    def path(self) -> Path:
        name = f"report-{self.key}-v{self.number}-{self.locale}-{self.fingerprint}.pdf"
        return folder() / self.key / name

    @property
    def download_name(self) -> str:
        return f"report-{self.key}-v{self.number}.pdf"


def wanted_file(row: PeriodRow, number: int, locale: str) -> Wanted | None:
    """The file of results version `number` of the closed period `row`, as it stands now;
    None when there is no such version."""
    version = db.session.scalar(
        select(ResultsVersion).where(
            ResultsVersion.period_id == row.id, ResultsVersion.number == number
        )
    )
    if version is None:
        return None
    safe_locale = "".join(c for c in locale if c.isalnum() or c == "_")[:16] or "zh_CN"
    fingerprint = report_fingerprint(row, version, period_awards(row))
    return Wanted(row.id, row.key, number, safe_locale, fingerprint)


def find_request(wanted: Wanted) -> ReportRequest | None:
    return db.session.scalar(
        select(ReportRequest).where(
            ReportRequest.period_id == wanted.period_id,
            ReportRequest.version == wanted.number,
            ReportRequest.locale == wanted.locale,
            ReportRequest.fingerprint == wanted.fingerprint,
        )
    )


def request_report(wanted: Wanted, actor_id: int | None, now: datetime) -> ReportRequest:
    """Ask the scheduler to render `wanted`, once: a second request for the same file (a double
    click, another admin) finds the first through the unique constraint. A request rendered
    before whose file has gone is asked again. The insert comes first, so on SQLite a read-only
    request's transaction begins by waiting for the write lock instead of failing on a snapshot
    another writer has made stale."""
    fresh = ReportRequest(
        period_id=wanted.period_id,
        version=wanted.number,
        locale=wanted.locale,
        fingerprint=wanted.fingerprint,
        requested_at=now,
        requested_by=actor_id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(fresh)
        return fresh
    except IntegrityError:  # asked for already
        pass
    found = find_request(wanted)
    if found.finished_at is not None and not wanted.path.is_file():
        db.session.execute(
            update(ReportRequest)
            .where(ReportRequest.id == found.id, ReportRequest.finished_at.is_not(None))
            .values(
                finished_at=None,
                started_at=None,
                attempts=0,
                requested_at=now,
                requested_by=actor_id,
            )
        )
        db.session.refresh(found)
    return found


def retry_report(request: ReportRequest, actor_id: int | None, now: datetime) -> bool:
    """Ask again for a report whose render failed; False when it had not failed (or another
    click asked again first)."""
    retried = db.session.execute(
        update(ReportRequest)
        .where(ReportRequest.id == request.id, ReportRequest.failed_at.is_not(None))
        .values(
            failed_at=None,
            error="",
            started_at=None,
            attempts=0,
            requested_at=now,
            requested_by=actor_id,
        )
    ).rowcount
    db.session.refresh(request)
    return bool(retried)


def request_state(request: ReportRequest, now: datetime) -> str:
    """queued | rendering | failed | finished, as the waiting page shows it."""
    if request.failed_at is not None:
        return "failed"
    if request.finished_at is not None:
        return "finished"
    if request.started_at is not None and now - request.started_at <= STALE_RENDER:
        return "rendering"
    return "queued"


# --- the scheduler's side --------------------------------------------------------------------


def _due(now: datetime):
    """Requests waiting for a render: never claimed, or claimed by a process that died."""
    return and_(
        ReportRequest.finished_at.is_(None),
        ReportRequest.failed_at.is_(None),
        or_(ReportRequest.started_at.is_(None), ReportRequest.started_at < now - STALE_RENDER),
    )


def run_report_requests(now: datetime) -> int:
    """Render the requested report files, oldest request first, each claimed with a conditional
    update so that two schedulers never render the same one (called every few seconds by the
    scheduler). Returns how many files were rendered."""
    db.session.execute(
        update(ReportRequest)
        .where(_due(now), ReportRequest.attempts >= MAX_ATTEMPTS)
        .values(failed_at=now, error=INTERRUPTED)
    )
    db.session.commit()
    started = utcnow()
    rendered, tried = 0, [0]
    while True:
        request_id = db.session.scalar(
            select(ReportRequest.id)
            .where(_due(now), ReportRequest.id.not_in(tried))
            .order_by(ReportRequest.requested_at, ReportRequest.id)
            .limit(1)
        )
        if request_id is None:
            return rendered
        tried.append(request_id)
        claimed = db.session.execute(
            update(ReportRequest)
            .where(ReportRequest.id == request_id, _due(now))
            .values(
                started_at=now + (utcnow() - started),  # `now`, moved on by the renders before
                attempts=ReportRequest.attempts + 1,
                worker=_worker(),
            )
        ).rowcount
        db.session.commit()
        if claimed:
            rendered += render_requested(request_id)


def _worker() -> str:
    from portal.jobs import worker_name

    return worker_name()


def render_requested(request_id: int) -> bool:
    """Render a claimed request's file and record the outcome; a failure is recorded with its
    error for the waiting page. The file is named by the fingerprint of what it shows when it
    is rendered, which the page asks for next if an award changed in the meantime."""
    try:
        wanted, html = _report_html(request_id)
        db.session.rollback()  # end the reading transaction before the long render
        if not wanted.path.is_file():
            _write(wanted, render_pdf(html))
    except Exception as exc:  # recorded on the request and shown to the admin
        log.exception("report request %s failed", request_id)
        db.session.rollback()
        error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
        _finish(request_id, failed_at=utcnow(), error=error)
        return False
    _finish(request_id, finished_at=utcnow())
    _forget_older(wanted)
    db.session.commit()
    return True


def _report_html(request_id: int) -> tuple[Wanted, str]:
    """The report's PDF page in the language it was asked in. Rendered in a (read-only) request
    context of the portal's address: the template links certificates with url_for, which needs
    one outside a web request, and on SQLite the reading transaction then begins without
    taking the write lock."""
    with current_app.test_request_context(base_url=current_app.config["PORTAL_BASE_URL"]):
        request = db.session.get(ReportRequest, request_id)
        row = db.session.get(PeriodRow, request.period_id)
        with force_locale(request.locale):
            report = period_report(row, request.version, chart_labels())
            if report is None:
                raise LookupError(f"{row.key} has no results version {request.version}")
            fingerprint = report_fingerprint(row, report.version, report.awards)
            wanted = Wanted(row.id, row.key, request.version, request.locale, fingerprint)
            return wanted, render_template("periods/report_pdf.html", **report_context(report))


def _write(wanted: Wanted, data: bytes) -> None:
    """Write the file whole under a temporary name, then move it into place: a download never
    sends half a PDF."""
    target = wanted.path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _finish(request_id: int, **values) -> None:
    db.session.execute(update(ReportRequest).where(ReportRequest.id == request_id).values(**values))
    db.session.commit()


def _forget_older(wanted: Wanted) -> None:
    """Remove the files (and settled requests) of the same version and language that showed
    the awards as they were before."""
    prefix = f"report-{wanted.key}-v{wanted.number}-{wanted.locale}-"
    for path in wanted.path.parent.glob(f"{prefix}*.pdf"):
        if path != wanted.path:
            path.unlink(missing_ok=True)
    db.session.execute(
        ReportRequest.__table__.delete().where(
            ReportRequest.period_id == wanted.period_id,
            ReportRequest.version == wanted.number,
            ReportRequest.locale == wanted.locale,
            ReportRequest.fingerprint != wanted.fingerprint,
            or_(ReportRequest.finished_at.is_not(None), ReportRequest.failed_at.is_not(None)),
        )
    )
