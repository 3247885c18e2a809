"""Awards: the admin's review of a period's nominations, custom award types, team leads'
nominations, certificate downloads and the public verification page."""

from __future__ import annotations

import io
import zipfile

from flask import Blueprint, abort, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.awards import services
from portal.awards.certificates import certificate_file
from portal.awards.models import Award, AwardType
from portal.db import utcnow
from portal.extensions import db
from portal.periods.models import PeriodRow
from portal.web.auth import public, require
from portal.web.htmx import redirect_to, render

bp = Blueprint("awards", __name__)


def _award(award_id: int) -> Award:
    """The award, locked for this transaction (PostgreSQL): a decision and a publication of
    the same award wait for each other instead of overwriting each other."""
    award = db.session.scalar(select(Award).where(Award.id == award_id).with_for_update(of=Award))
    if award is None:
        abort(404)
    return award


def _by_number(certificate_no: str) -> Award | None:
    return db.session.scalar(select(Award).where(Award.certificate_no == certificate_no))


# --- certificates -------------------------------------------------------------------------------


@bp.get("/certificates/<certificate_no>.pdf")
@require("portal.use")
def certificate_pdf(certificate_no: str):
    """The certificate, for its holder, their team lead and admins."""
    award = _by_number(certificate_no)
    if award is None or award.status == "rejected":
        abort(404)
    if not services.can_download(current_user, award):
        abort(403)
    path = certificate_file(award, utcnow())
    db.session.commit()
    return send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=f"{award.certificate_no}.pdf",
        max_age=0,
    )


@bp.get("/verify/<certificate_no>")
@public
def verify(certificate_no: str):
    """Anyone may confirm a certificate: holder, award and period, or that it was revoked;
    a number never published (or unknown) does not exist."""
    award = _by_number(certificate_no)
    if award is not None and award.status not in ("published", "revoked"):
        award = None
    return render(
        "awards/verify.html",
        None,
        status=200 if award else 404,
        award=award,
        number=certificate_no,
        name=services.award_name(award.award_type) if award else "",
    )


@bp.get("/admin/awards/<period_key>/certificates.zip")
@require("awards.manage")
def certificates_zip(period_key: str):
    """Every certificate of the period's published (and revoked) awards, in one zip."""
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == period_key))
    if row is None:
        abort(404)
    awards = db.session.scalars(
        select(Award)
        .where(Award.period_id == row.id, Award.status.in_(("published", "revoked")))
        .order_by(Award.id)
    ).all()
    buffer = io.BytesIO()
    now = utcnow()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for award in awards:
            name = f"{award.award_type.code}-{award.agent.agent_no}-{award.certificate_no}.pdf"
            archive.write(certificate_file(award, now), name)
    db.session.commit()
    buffer.seek(0)
    return send_file(
        buffer,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"certificates-{row.key}.zip",
    )


# --- the admin's review -----------------------------------------------------------------------


def _award_periods() -> list[PeriodRow]:
    """Periods that have awards or are closed, newest first."""
    with_awards = select(Award.period_id).distinct()
    return list(
        db.session.scalars(
            select(PeriodRow)
            .where((PeriodRow.closed_at.is_not(None)) | PeriodRow.id.in_(with_awards))
            .order_by(PeriodRow.last_day.desc(), PeriodRow.kind)
            .limit(24)
        )
    )


@bp.get("/admin/awards")
@require("awards.manage")
def award_admin():
    periods = _award_periods()
    key = request.args.get("period") or (periods[0].key if periods else None)
    row = next((p for p in periods if p.key == key), None)
    if row is None and key:
        row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
        if row is None:
            abort(404)  # a period key that was mistyped or never existed
    page = None
    if row is not None:
        page = db.paginate(
            select(Award)
            .where(Award.period_id == row.id)
            .order_by(Award.award_type_id, Award.cohort, Award.rank, Award.id),
            page=request.args.get("page", 1, type=int),
            per_page=50,
            error_out=False,
        )
    return render(
        "awards/admin.html",
        "items",
        periods=periods,
        row=row,
        page=page,
        statuses=services.STATUS_NAMES,
        award_name=services.award_name,
        citation=services.citation,
    )


def _back(award: Award):
    return redirect_to(url_for("awards.award_admin", period=award.period.key))


def _refused(message, back: str):
    db.session.rollback()
    return render("awards/error.html", None, status=422, message=message, back=back)


@bp.post("/admin/awards/<int:award_id>/decide")
@require("awards.manage")
def award_decide(award_id: int):
    award = _award(award_id)
    back = url_for("awards.award_admin", period=award.period.key)
    try:
        services.decide(
            current_user,
            award,
            request.form.get("approve") == "1",
            request.form.get("reason", ""),
            utcnow(),
            # Published at once only where the results agents see are the latest version.
            published=award.period.published_version is not None
            and award.period.published_version == award.period.results_version,
        )
    except services.AwardError as exc:
        return _refused(exc.message, back)
    db.session.commit()
    return _back(award)


@bp.post("/admin/awards/<int:award_id>/revoke")
@require("awards.manage")
def award_revoke(award_id: int):
    award = _award(award_id)
    back = url_for("awards.award_admin", period=award.period.key)
    now = utcnow()
    try:
        services.revoke(current_user, award, request.form.get("reason", ""), now)
    except services.AwardError as exc:
        return _refused(exc.message, back)
    db.session.commit()
    certificate_file(award, now)  # the certificate now says it is revoked
    db.session.commit()
    return _back(award)


# --- custom award types -----------------------------------------------------------------------


@bp.get("/admin/award-types")
@require("awards.manage")
def award_types():
    kinds = db.session.scalars(select(AwardType).order_by(AwardType.builtin.desc(), AwardType.id))
    return render("awards/types.html", None, kinds=list(kinds), award_name=services.award_name)


def _type_fields() -> tuple[str, str, int | None]:
    name = request.form.get("name", "").strip()
    criteria = request.form.get("criteria", "").strip()
    try:
        points = int(request.form.get("points", "0"))
    except ValueError:
        points = None
    return name, criteria, points


@bp.post("/admin/award-types")
@require("awards.manage")
def award_type_create():
    name, criteria, points = _type_fields()
    back = url_for("awards.award_types")
    try:
        kind = services.define_award(current_user, name, criteria, points)
    except services.AwardError as exc:
        return _refused(exc.message, back)
    db.session.commit()
    return redirect_to(url_for("awards.award_types", _anchor=f"award-type-{kind.id}"))


@bp.post("/admin/award-types/<int:type_id>")
@require("awards.manage")
def award_type_update(type_id: int):
    kind = db.session.get(AwardType, type_id)
    if kind is None:
        abort(404)
    name, criteria, points = _type_fields()
    back = url_for("awards.award_types")
    try:
        services.change_award(
            current_user, kind, name, criteria, points, request.form.get("active") == "1"
        )
    except services.AwardError as exc:
        return _refused(exc.message, back)
    db.session.commit()
    return redirect_to(back)


# --- nominations by team leads and admins -----------------------------------------------------


def _nominees() -> list[User]:
    """Who the current user may nominate: a lead's team members; an admin's every agent."""
    from portal.accounts.models import UserRole

    query = (
        select(User)
        .where(
            User.active.is_(True),
            User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.AGENT.value)),
        )
        .order_by(User.agent_no)
    )
    if not current_user.has_role(Role.ADMIN):
        query = query.where(User.team_id.in_([t.id for t in current_user.led_teams]))
    return list(db.session.scalars(query))


def _open_for_nomination() -> list[PeriodRow]:
    """Periods whose awards are not yet published, newest first."""
    return list(
        db.session.scalars(
            select(PeriodRow)
            .where(PeriodRow.published_at.is_(None), PeriodRow.first_day <= utcnow().date())
            .order_by(PeriodRow.last_day.desc(), PeriodRow.kind)
            .limit(12)
        )
    )


@bp.get("/awards/nominate")
@require("awards.nominate")
def nominate_form():
    return _nominate_page()


def _nominate_page(message=None, code: int = 200, form=None):
    kinds = db.session.scalars(
        select(AwardType)
        .where(AwardType.builtin.is_(False), AwardType.active.is_(True))
        .order_by(AwardType.name)
    )
    mine = db.session.scalars(
        select(Award)
        .where(Award.nominated_by == current_user.id)
        .order_by(Award.nominated_at.desc())
        .limit(50)
    )
    return render(
        "awards/nominate.html",
        None,
        status=code,
        kinds=list(kinds),
        agents=_nominees(),
        periods=_open_for_nomination(),
        mine=list(mine),
        message=message,
        form=form or {},
        statuses=services.STATUS_NAMES,
        award_name=services.award_name,
    )


@bp.post("/awards/nominate")
@require("awards.nominate")
def nominate():
    form = request.form
    row = db.session.get(PeriodRow, form.get("period_id", type=int) or 0)
    agent = db.session.get(User, form.get("agent_id", type=int) or 0)
    kind = db.session.get(AwardType, form.get("award_type_id", type=int) or 0)
    if row is None or agent is None or kind is None:
        return _nominate_page(services.NOMINATION_INCOMPLETE, 422, form)
    if row.published_at is not None:
        return _nominate_page(services.PERIOD_PUBLISHED, 422, form)
    if row.first_day > utcnow().date():
        return _nominate_page(services.NOMINATION_INCOMPLETE, 422, form)
    try:
        services.nominate(
            current_user, row.id, row.key, agent, kind, form.get("citation", ""), utcnow()
        )
    except services.AwardError as exc:
        db.session.rollback()
        return _nominate_page(exc.message, 422, form)
    db.session.commit()
    return redirect_to(url_for("awards.nominate_form"))
