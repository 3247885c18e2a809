"""Jinja filters and globals: dates and times in the portal's timezone, role and cohort names."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask
from flask_babel import format_date, format_datetime
from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "agent": _l("Agent"),
    "team_lead": _l("Team lead"),
    "qa": _l("QA"),
    "qa_lead": _l("QA lead"),
    "admin": _l("Administrator"),
}


def role_label(role) -> str:
    return str(ROLE_LABELS.get(str(role), role))


COHORT_GROUPS = {"new": _l("new agents"), "regular": _l("regular agents")}


def cohort_label(cohort: str) -> str:
    """A cohort key ("电话客服/new") as people read it: "电话客服 · 新员工"."""
    position, _sep, group = str(cohort).rpartition("/")
    if not position or group not in COHORT_GROUPS:
        return str(cohort)
    return f"{position} · {COHORT_GROUPS[group]}"


def local_datetime(value: datetime | None, fmt: str = "yyyy-MM-dd HH:mm") -> str:
    """An aware UTC datetime shown in PORTAL_TIMEZONE (Flask-Babel's default timezone)."""
    return format_datetime(value, fmt) if value else ""


def local_date(value: date | None) -> str:
    return format_date(value, "yyyy-MM-dd") if value else ""


def init_app(app: Flask) -> None:
    app.add_template_filter(local_datetime, "datetime")
    app.add_template_filter(local_date, "date")
    app.add_template_filter(role_label, "role")
    app.add_template_filter(cohort_label, "cohort")
