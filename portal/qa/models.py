"""Rubrics (评分标准), the items of portal evaluations, and appeals (质检申诉) with their trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import Position, User
from portal.db import UTCDateTime, utcnow
from portal.extensions import db
from portal.metrics.models import QaEvaluation

OPEN_APPEAL_STATES = ("submitted", "in_review")
APPEAL_STATES = (*OPEN_APPEAL_STATES, "upheld", "partially_upheld", "rejected", "withdrawn")


class Rubric(db.Model):
    """A position's standard scoring matrix; each saved change is a new version."""

    __tablename__ = "qa_rubrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(
        ForeignKey("positions.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    position: Mapped[Position] = relationship()

    @property
    def current(self) -> RubricVersion | None:
        return db.session.scalar(
            select(RubricVersion)
            .where(RubricVersion.rubric_id == self.id)
            .order_by(RubricVersion.number.desc())
            .limit(1)
        )


class RubricVersion(db.Model):
    """One saved state of a rubric, never changed: evaluations keep the version they used.

    `document`: {"items": [{"code", "title", "max_points", "levels": [{"points", "anchor"}]}],
    "red_lines": [{"code", "title", "anchor", "points"}]} — scored items add up to 100."""

    __tablename__ = "qa_rubric_versions"
    __table_args__ = (UniqueConstraint("rubric_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rubric_id: Mapped[int] = mapped_column(ForeignKey("qa_rubrics.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    rubric: Mapped[Rubric] = relationship()

    def item(self, code: str) -> dict | None:
        for item in [*self.document["items"], *self.document.get("red_lines", [])]:
            if item["code"] == code:
                return item
        return None


class EvaluationItem(db.Model):
    """One rubric item as scored in one evaluation (red-line items: violated or not)."""

    __tablename__ = "qa_evaluation_items"
    __table_args__ = (UniqueConstraint("evaluation_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("qa_evaluations.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(32))
    points: Mapped[float | None] = mapped_column(Float)  # scored items
    original_points: Mapped[float | None] = mapped_column(Float)  # as released
    violated: Mapped[bool | None] = mapped_column(Boolean)  # red-line items
    original_violated: Mapped[bool | None] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text, default="")

    evaluation: Mapped[QaEvaluation] = relationship()


class Appeal(db.Model):
    """An agent's appeal of a released evaluation. One open appeal per evaluation."""

    __tablename__ = "qa_appeals"
    __table_args__ = (
        CheckConstraint(f"status IN {APPEAL_STATES!r}", name="known_status"),
        Index(
            "uq_qa_appeals_open",
            "evaluation_id",
            unique=True,
            sqlite_where=text("status IN ('submitted', 'in_review')"),
            postgresql_where=text("status IN ('submitted', 'in_review')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("qa_evaluations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="submitted", index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score_before: Mapped[float] = mapped_column(Float)
    score_after: Mapped[float | None] = mapped_column(Float)

    evaluation: Mapped[QaEvaluation] = relationship()
    agent: Mapped[User] = relationship(foreign_keys=[agent_id])
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    items: Mapped[list[AppealItem]] = relationship(
        back_populates="appeal", order_by="AppealItem.id"
    )
    events: Mapped[list[AppealEvent]] = relationship(
        back_populates="appeal", order_by="AppealEvent.id"
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_APPEAL_STATES


class AppealItem(db.Model):
    """One appealed item (or, for an imported evaluation, the whole score), with the agent's
    reason and proposed value, and the reviewer's decision and reason."""

    __tablename__ = "qa_appeal_items"
    __table_args__ = (
        CheckConstraint(
            "decision IS NULL OR decision IN ('upheld', 'partial', 'rejected')",
            name="known_decision",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("qa_appeals.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))  # a rubric item, or "score" for the whole
    reason: Mapped[str] = mapped_column(Text)
    proposed: Mapped[float] = mapped_column(Float)  # points (red lines: 0 = not violated)
    decision: Mapped[str | None] = mapped_column(String(10))
    decided: Mapped[float | None] = mapped_column(Float)
    decision_reason: Mapped[str] = mapped_column(Text, default="")

    appeal: Mapped[Appeal] = relationship(back_populates="items")


class AppealEvent(db.Model):
    """A step of an appeal, for its timeline (the audit log has them too)."""

    __tablename__ = "qa_appeal_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(
        ForeignKey("qa_appeals.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    appeal: Mapped[Appeal] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()
