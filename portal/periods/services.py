"""Periods: which exist, where each stands, and what holds its close back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from portal.extensions import db
from portal.metrics.models import Interaction, UploadTask
from portal.metrics.periods import Period, parse_period, period_of
from portal.periods.models import PeriodRow
from portal.qa.services import undecided_appeals
from portal.scoring.models import Plan

AHEAD = 1  # periods created beyond the current one, per kind


def close_time(period: Period) -> datetime:
    """The end of the period's last day in PORTAL_TIMEZONE, plus CLOSE_GRACE_HOURS (UTC)."""
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    end = datetime.combine(period.last_day + timedelta(days=1), time(0), tzinfo=tz)
    return (end + timedelta(hours=current_app.config["CLOSE_GRACE_HOURS"])).astimezone(
        ZoneInfo("UTC")
    )


def period_end(row: PeriodRow) -> datetime:
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    return datetime.combine(row.last_day + timedelta(days=1), time(0), tzinfo=tz)


def ensure_period(period: Period) -> PeriodRow:
    """The row of `period`, created when missing (any period key can be named)."""
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == period.key))
    if row is None:
        row = PeriodRow(
            key=period.key,
            kind=period.kind,
            first_day=period.first_day,
            last_day=period.last_day,
            close_at=close_time(period),
        )
        db.session.add(row)
        db.session.flush()
    return row


def sync_periods(today: date) -> int:
    """Create the periods of every plan's kind: from the first day with data (or today) to
    one period ahead. Returns how many were created."""
    kinds = set(db.session.scalars(select(Plan.period_kind).distinct()))
    first_data = db.session.scalar(select(func.min(Interaction.offered_day)))
    start = min(first_data, today) if first_data else today
    created = 0
    for kind in sorted(kinds):
        period = period_of(start, kind)
        last = period_of(today, kind)
        for _ in range(AHEAD):
            last = period_of(last.last_day + timedelta(days=1), kind)
        while True:
            exists = db.session.scalar(select(PeriodRow.id).where(PeriodRow.key == period.key))
            if exists is None:
                ensure_period(period)
                created += 1
            if period.key == last.key:
                break
            period = period_of(period.last_day + timedelta(days=1), kind)
    return created


def state(row: PeriodRow, now: datetime) -> str:
    """open, grace (its last day has passed), closing or closed (scoring.md §8)."""
    if row.closed_at is not None:
        return "closed"
    if row.closing_at is not None:
        return "closing"
    return "grace" if now >= period_end(row) else "open"


@dataclass
class Blockers:
    appeals: int  # undecided QA appeals of the period's interactions
    imports: int  # uploads being checked or imported right now

    @property
    def any(self) -> bool:
        return bool(self.appeals or self.imports)


def blockers(row: PeriodRow) -> Blockers:
    running = db.session.scalar(
        select(func.count(UploadTask.id)).where(
            UploadTask.action == "import", UploadTask.status.in_(("queued", "running"))
        )
    )
    return Blockers(len(undecided_appeals(row.first_day, row.last_day)), running)


def as_period(row: PeriodRow) -> Period:
    return parse_period(row.key)
