"""Alert rules on daily metrics, the alerts they raise, and the improvement plans that follow."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Position, Team, User
from portal.db import UTCDateTime, utcnow
from portal.extensions import db


class AlertRule(db.Model):
    """E.g. "CSAT below 85% for 3 days in a row", for everyone, a position or a team."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("comparison IN ('below', 'above')", name="known_comparison"),
        CheckConstraint("days >= 1", name="days_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    metric: Mapped[str] = mapped_column(String(32))
    comparison: Mapped[str] = mapped_column(String(8))
    threshold: Mapped[float] = mapped_column(Float)  # in the metric's own unit (rates: 0.85)
    days: Mapped[int] = mapped_column(Integer)
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    position: Mapped[Position | None] = relationship()
    team: Mapped[Team | None] = relationship()


class Alert(db.Model):
    """One run of days on which an agent met a rule's condition. The run is identified by its
    first day, so the days that extend it never raise a second alert."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("rule_id", "user_id", "first_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    values: Mapped[list] = mapped_column(JSON, default=list)  # [[day, value], …] of the run
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    rule: Mapped[AlertRule] = relationship()
    user: Mapped[User] = relationship()


class ImprovementPlan(db.Model):
    """改进计划: opened by an alert (or by a lead), followed up by the lead, closed with a note."""

    __tablename__ = "improvement_plans"
    __table_args__ = (CheckConstraint("status IN ('open', 'closed')", name="known_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), unique=True
    )
    metric: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    closing_note: Mapped[str] = mapped_column(Text, default="")

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])
    alert: Mapped[Alert | None] = relationship()
    notes: Mapped[list[ImprovementNote]] = relationship(
        back_populates="plan", order_by="ImprovementNote.id"
    )


class ImprovementNote(db.Model):
    """A follow-up entry on an improvement plan (coaching done, agreed actions…)."""

    __tablename__ = "improvement_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(
        ForeignKey("improvement_plans.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    plan: Mapped[ImprovementPlan] = relationship(back_populates="notes")
    author: Mapped[User | None] = relationship()
