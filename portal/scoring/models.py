"""Assessment plans, one per position, each saved change a new version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Position, User
from portal.db import UTCDateTime, utcnow
from portal.extensions import db


class Plan(db.Model):
    """考核方案: the plan of one position."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(
        ForeignKey("positions.id", ondelete="CASCADE"), unique=True
    )
    period_kind: Mapped[str] = mapped_column(String(10), default="monthly")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    position: Mapped[Position] = relationship()
    versions: Mapped[list[PlanVersion]] = relationship(
        back_populates="plan", order_by="PlanVersion.number"
    )

    @property
    def current(self) -> PlanVersion:
        return db.session.scalar(
            select(PlanVersion)
            .where(PlanVersion.plan_id == self.id)
            .order_by(PlanVersion.number.desc())
            .limit(1)
        )


class PlanVersion(db.Model):
    """One saved state of a plan, never changed afterwards: closed periods point at the
    version they were closed with."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict] = mapped_column(JSON)  # the checked plan (scoring/plans.py)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(500), default="")

    plan: Mapped[Plan] = relationship(back_populates="versions")
    created_by: Mapped[User | None] = relationship()
