"""Awards of a period (服务之星, 进步标兵 and the admins' own), and their certificates."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import UTCDateTime, utcnow
from portal.extensions import db

SERVICE_STAR = "service_star"
MOST_IMPROVED = "most_improved"
STATUSES = ("nominated", "approved", "rejected", "published", "revoked")
# The built-in awards' names in the reader's language (custom awards show their own name).
BUILTIN_NAMES = {SERVICE_STAR: _l("Service Star"), MOST_IMPROVED: _l("Most Improved")}


class AwardType(db.Model):
    """What can be awarded: the two of scoring.md §7 (seeded, code fixed) and custom awards
    an admin defines with a name, criteria and points."""

    __tablename__ = "award_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    criteria: Mapped[str] = mapped_column(Text, default="")
    points: Mapped[int] = mapped_column(Integer, default=0)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Award(db.Model):
    """One award of one period to one agent: nominated (by the close's rules, a team lead or
    an admin) → approved or rejected → published → (perhaps) revoked. Nothing is deleted: a
    revoked award keeps its history and its certificate says it is revoked."""

    __tablename__ = "awards"
    __table_args__ = (
        UniqueConstraint("period_id", "award_type_id", "agent_id"),
        CheckConstraint(
            "status IN ('nominated', 'approved', 'rejected', 'published', 'revoked')",
            name="known_status",
        ),
        CheckConstraint("source IN ('rule', 'lead', 'admin')", name="known_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"), index=True)
    award_type_id: Mapped[int] = mapped_column(ForeignKey("award_types.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="nominated")
    source: Mapped[str] = mapped_column(String(5))
    # What the nomination rests on: the results version, cohort or team, rank, final, rise.
    results_version: Mapped[int | None] = mapped_column(Integer)
    cohort: Mapped[str] = mapped_column(String(120), default="")
    rank: Mapped[int | None] = mapped_column(Integer)
    final: Mapped[float | None] = mapped_column(Float)
    rise: Mapped[float | None] = mapped_column(Float)
    citation: Mapped[str] = mapped_column(Text, default="")  # 推荐理由
    nominated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    nominated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str] = mapped_column(Text, default="")
    certificate_no: Mapped[str] = mapped_column(String(24), unique=True)
    # Where the certificate's PDF lies (relative to CERTIFICATES_DIR), once rendered.
    pdf_path: Mapped[str | None] = mapped_column(String(200))
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    award_type: Mapped[AwardType] = relationship(lazy="joined")
    agent = relationship("User", foreign_keys=[agent_id], lazy="joined")
    nominator = relationship("User", foreign_keys=[nominated_by], lazy="joined")
    period = relationship("PeriodRow", lazy="joined")
