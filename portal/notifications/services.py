"""Sending notifications, reading them, and their e-mail copies (sent by the scheduler)."""

from __future__ import annotations

import smtplib
from datetime import datetime
from email.message import EmailMessage

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select, update

from portal.accounts.models import User
from portal.db import utcnow
from portal.extensions import db
from portal.metrics.labels import metric_name
from portal.notifications.models import Notification

# kind → the message, with the notification's params filled in (in the reader's language).
MESSAGES = {
    "alert": _l(
        "Alert: %(metric)s was %(comparison)s %(threshold)s for %(days)s days in a row "
        "(%(first)s to %(last)s). An improvement plan is open."
    ),
    "alert_for_lead": _l(
        "Alert for %(agent)s: %(metric)s was %(comparison)s %(threshold)s for %(days)s days in "
        "a row (%(first)s to %(last)s). An improvement plan is open for you to follow up."
    ),
    "plan_closed": _l("Your improvement plan for %(metric)s was closed: %(note)s"),
    "evaluation_released": _l(
        "Your interaction %(interaction)s was evaluated: %(score)s points. You may appeal "
        "within the appeal window."
    ),
    "appeal_assigned": _l(
        "%(agent)s appealed the evaluation of %(interaction)s; please decide by %(due)s."
    ),
    "appeal_reminder": _l("Reminder: the appeal on %(interaction)s is due by %(due)s."),
    "appeal_escalated": _l(
        "The appeal on %(interaction)s was due by %(due)s and is overdue; it is now yours to "
        "decide."
    ),
    "appeal_decided": _l(
        "The appeal on %(interaction)s was decided: %(status)s (score %(before)s → %(after)s)."
    ),
    "appeal_withdrawn": _l("%(agent)s withdrew the appeal on %(interaction)s."),
    "period_closed": _l(
        "Period %(period)s is closed: its results await your review and publication."
    ),
    "period_revision": _l(
        "An appeal upheld after period %(period)s closed changed its results: revise them as "
        "a new version."
    ),
    "award_published": _l(
        "Congratulations: you received the award %(award)s for %(period)s. Your certificate is "
        "ready to download."
    ),
    "award_revoked": _l("Your award %(award)s for %(period)s was revoked: %(reason)s"),
    "results_published": _l("The results of %(period)s are published: see your score."),
    "close_held": _l(
        "Period %(period)s was not closed: undecided appeals or running imports hold it back."
    ),
    "appeal_blocks_close": _l(
        "Period %(period)s cannot close while the appeal on %(interaction)s is undecided."
    ),
}
APPEAL_OUTCOMES = {
    "upheld": _l("upheld"),
    "partially_upheld": _l("partially upheld"),
    "rejected": _l("rejected"),
}


COMPARISONS = {"below": _l("below"), "above": _l("above")}


def message(notification: Notification) -> str:
    """The notification's text in the current language. Params hold plain values, except
    `metric` (a metric code), `comparison` (below/above) and a built-in award's code, named
    here in that language."""
    template = MESSAGES.get(notification.kind)
    if template is None:
        return notification.kind
    params = dict(notification.params or {})
    if "metric" in params:
        params["metric"] = metric_name(params["metric"])
    if "status" in params:
        params["status"] = str(APPEAL_OUTCOMES.get(params["status"], params["status"]))
    if params.get("award_code"):
        from portal.awards.models import BUILTIN_NAMES

        params["award"] = str(BUILTIN_NAMES.get(params["award_code"], params["award"]))
    if "comparison" in params:
        params["comparison"] = str(COMPARISONS.get(params["comparison"], params["comparison"]))
    return str(template) % params


def notify(user: User, kind: str, params: dict, link: str = "") -> Notification:
    """Tell `user`; the e-mail copy, if SMTP is set up, goes out with the next scheduler run."""
    if kind not in MESSAGES:
        raise KeyError(kind)
    note = Notification(user_id=user.id, kind=kind, params=params, link=link[:300])
    db.session.add(note)
    db.session.flush()
    return note


def notify_many(user_ids: list[int], kind: str, params: dict, link: str = "") -> int:
    """Tell many people the same thing in one statement (a period's results published)."""
    if kind not in MESSAGES:
        raise KeyError(kind)
    if user_ids:
        db.session.execute(
            insert(Notification),
            [{"user_id": uid, "kind": kind, "params": params, "link": link} for uid in user_ids],
        )
    return len(user_ids)


def unread_count(user: User) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(
            Notification.user_id == user.id, Notification.read_at.is_(None)
        )
    )


def unread_column():
    """The unread count as a column correlated with User, for the query that loads the
    logged-in user (every page's bell shows it)."""
    return (
        select(func.count(Notification.id))
        .where(Notification.user_id == User.id, Notification.read_at.is_(None))
        .scalar_subquery()
    )


def mark_read(user: User, notification: Notification | None = None, now=None) -> int:
    """Mark one (or, with None, all) of `user`'s notifications read."""
    stmt = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if notification is not None:
        stmt = stmt.where(Notification.id == notification.id)
    return db.session.execute(stmt.values(read_at=now or utcnow())).rowcount


def send_emails(now: datetime | None = None, limit: int = 200) -> str:
    """E-mail the notifications not yet sent, each claimed before sending so a second
    scheduler never sends it twice."""
    cfg = current_app.config
    if not cfg["SMTP_HOST"]:
        return "SMTP_HOST is not set: no e-mail sent"
    now = now or utcnow()
    sent = failed = 0
    pending = db.session.scalars(
        select(Notification.id)
        .where(Notification.emailed_at.is_(None))
        .order_by(Notification.id)
        .limit(limit)
    ).all()
    for note_id in pending:
        claimed = db.session.execute(
            update(Notification)
            .where(Notification.id == note_id, Notification.emailed_at.is_(None))
            .values(emailed_at=now, email_status="sending")
        ).rowcount
        db.session.commit()
        if not claimed:
            continue
        note = db.session.get(Notification, note_id)
        user = db.session.get(User, note.user_id)
        if not user.email or not user.active:
            note.email_status = "skipped: no address" if not user.email else "skipped: inactive"
            db.session.commit()
            continue
        try:
            _send(user, note)
            note.email_status, sent = "sent", sent + 1
        except (OSError, smtplib.SMTPException) as exc:
            note.email_status, failed = f"failed: {exc}"[:200], failed + 1
        db.session.commit()
    return f"sent {sent} e-mail(s), {failed} failed"


def _send(user: User, note: Notification) -> None:
    cfg = current_app.config
    with force_locale(user.locale or "zh_CN"):
        subject = str(_l("Performance portal: you have a new notification"))
        body = message(note)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = cfg["SMTP_FROM"], user.email, subject
    link = f"{cfg['PORTAL_BASE_URL']}{note.link}" if note.link else cfg["PORTAL_BASE_URL"]
    mail.set_content(f"{body}\n\n{link}\n")
    with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=20) as smtp:
        if cfg["SMTP_STARTTLS"]:
            smtp.starttls()
        if cfg["SMTP_USER"]:
            smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"])
        smtp.send_message(mail)
