"""Assessment periods as rows: created ahead for every plan's period kind and for past periods
with data; their close time and, once the close has run, its outcome."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import UTCDateTime, utcnow
from portal.extensions import db


class PeriodRow(db.Model):
    """One period (2026-11, 2026-W47, 2026-Q4). open → grace → closing → closed: the first two
    follow from the clock; closing and closed are recorded by the close."""

    __tablename__ = "periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(10), unique=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    close_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    results_version: Mapped[int] = mapped_column(Integer, default=0)
    revision_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
