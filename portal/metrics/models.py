"""What metrics are computed from (metrics.md §1–3), its daily sums, and import records."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import User
from portal.db import UTCDateTime, utcnow
from portal.extensions import db
from portal.metrics.messages import MessageText


class ImportRecord(db.Model):
    """One import through any door: who, when, which file, what it did, what it refused."""

    __tablename__ = "imports"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('interactions', 'surveys', 'metric-values', 'qa', 'users')", name="known_kind"
        ),
        CheckConstraint(
            "status IN ('running', 'committed', 'rejected', 'failed')", name="known_status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    door: Mapped[str] = mapped_column(String(8))  # upload, cli, api, inbox
    filename: Mapped[str] = mapped_column(String(255), default="")
    checksum: Mapped[str] = mapped_column(String(64), default="", index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(120), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="running")
    valid_only: Mapped[bool] = mapped_column(Boolean, default=False)
    encoding: Mapped[str] = mapped_column(String(16), default="")
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    # The first rejections (row, reason as kept by portal/metrics/messages.py), in row order;
    # `rejected` counts them all. Up to 10,000: read only when asked for (not by the history).
    rejections: Mapped[list | None] = mapped_column(JSON, deferred=True)
    unknown_columns: Mapped[list | None] = mapped_column(JSON)
    # Why it was refused or failed (portal/metrics/messages.py: shown in the reader's language).
    message: Mapped[str | dict] = mapped_column(MessageText, default="")

    actor: Mapped[User | None] = relationship()


class Interaction(db.Model):
    """One contact offered to the center (话单). Times are seconds since the epoch (UTC), so
    window arithmetic is the same SQL on every database; `offered_day` is the local day.

    The table is kept narrow and lightly indexed because it is by far the largest (millions of
    rows a month) and every import writes to it in bulk: no foreign keys (the importer checks
    agents; users and imports are never deleted, only deactivated) and no index beyond the
    source id and (day, agent, queue). FCR repeats live in `interaction_repeats`, so computing them
    never rewrites interaction rows."""

    __tablename__ = "interactions"
    __table_args__ = (
        # Written as ORs: SQLite evaluates `IN (…)` by building a lookup table at every
        # execution, which made a bulk import's inserts half again as slow.
        CheckConstraint(
            "channel = 'phone' OR channel = 'chat' OR channel = 'email' OR channel = 'social'",
            name="known_channel",
        ),
        # With the queue, SQLite groups the daily sums in index order, without sorting.
        Index("ix_interactions_day_agent_queue", "offered_day", "agent_id", "queue"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8), default="phone")
    queue: Mapped[str] = mapped_column(String(64), default="")
    agent_id: Mapped[int | None] = mapped_column(Integer)
    offered_day: Mapped[date] = mapped_column(Date)
    offered_s: Mapped[float] = mapped_column(Float)
    ended_s: Mapped[float] = mapped_column(Float)
    wait_s: Mapped[float] = mapped_column(Float)  # until answered, or until the caller hung up
    talk_s: Mapped[float | None] = mapped_column(Float)  # answered only
    wrap_s: Mapped[float] = mapped_column(Float, default=0)
    hold_s: Mapped[float] = mapped_column(Float, default=0)
    customer_key: Mapped[str | None] = mapped_column(String(128))
    transferred: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved: Mapped[bool | None] = mapped_column(Boolean)
    import_id: Mapped[int | None] = mapped_column(Integer)

    agent: Mapped[User | None] = relationship(
        primaryjoin="foreign(Interaction.agent_id) == User.id", viewonly=True
    )

    @property
    def offered_at(self) -> datetime:
        return _utc(self.offered_s)

    @property
    def answered_at(self) -> datetime | None:
        return None if self.talk_s is None else _utc(self.offered_s + self.wait_s)

    @property
    def ended_at(self) -> datetime:
        return _utc(self.ended_s)

    @property
    def answered(self) -> bool:
        return self.talk_s is not None


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(seconds, 6), UTC)


class InteractionRepeat(db.Model):
    """An answered interaction with a repeat (metrics.md §4, FCR): another interaction of the
    same customer offered within FCR_WINDOW_HOURS after it ended. Derived by metrics/stats.py;
    no foreign key, for the same reason as the interactions' own."""

    __tablename__ = "interaction_repeats"

    interaction_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class Survey(db.Model):
    """A customer's rating of one interaction (满意度回访)."""

    __tablename__ = "surveys"
    __table_args__ = (
        CheckConstraint("csat IS NULL OR (csat BETWEEN 1 AND 5)", name="csat_range"),
        CheckConstraint("nps IS NULL OR (nps BETWEEN 0 AND 10)", name="nps_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), unique=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    csat: Mapped[int | None] = mapped_column(SmallInteger)
    nps: Mapped[int | None] = mapped_column(SmallInteger)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id", ondelete="SET NULL"))


class QaEvaluation(db.Model):
    """A QA evaluation of one interaction; `score` is the final score after appeals.

    Imported evaluations are scored as a whole and released when imported; evaluations made in
    the portal are scored item by item against a rubric version (portal/qa) and count only once
    released."""

    __tablename__ = "qa_evaluations"
    __table_args__ = (
        CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
        CheckConstraint("status IN ('draft', 'released')", name="known_status"),
        # One portal evaluation per interaction and evaluator: saving twice updates it.
        Index(
            "uq_qa_evaluations_portal",
            "interaction_id",
            "evaluator_id",
            unique=True,
            sqlite_where=text("rubric_version_id IS NOT NULL"),
            postgresql_where=text("rubric_version_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), unique=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    evaluator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    score: Mapped[float] = mapped_column(Float)
    original_score: Mapped[float] = mapped_column(Float)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    red_line: Mapped[bool] = mapped_column(Boolean, default=False)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id", ondelete="SET NULL"))
    rubric_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("qa_rubric_versions.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(8), default="released", server_default="released")
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")

    evaluator: Mapped[User | None] = relationship()
    interaction: Mapped[Interaction] = relationship()


class SuppliedValue(db.Model):
    """A metric value supplied by another system for one agent and period (metrics.md §3)."""

    __tablename__ = "supplied_values"
    __table_args__ = (UniqueConstraint("agent_id", "period_key", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(10), index=True)
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id", ondelete="SET NULL"))


class DayStats(db.Model):
    """Sums and counts of one day's interactions per (agent, queue): every metric of a period,
    team or queue is a ratio of sums of these rows. Rebuilt for the affected agents and days
    after each import (see metrics/stats.py)."""

    __tablename__ = "interaction_day_stats"
    __table_args__ = (
        Index("ix_day_stats_day_agent", "day", "agent_id"),
        Index("ix_day_stats_day_queue", "day", "queue"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    # No foreign key: these rows are derived from interactions, whose agent_id already has one,
    # and checking it again for every row costs a fifth of a month's rebuild on PostgreSQL.
    agent_id: Mapped[int | None] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(64), default="")
    n_all: Mapped[int] = mapped_column(Integer, default=0)  # every interaction
    n_short: Mapped[int] = mapped_column(Integer, default=0)  # short abandons
    n_answered: Mapped[int] = mapped_column(Integer, default=0)
    n_sl: Mapped[int] = mapped_column(Integer, default=0)  # answered within the service level
    sum_wait: Mapped[float] = mapped_column(Float, default=0)  # over answered
    sum_handle: Mapped[float] = mapped_column(Float, default=0)  # talk + wrap, over answered
    n_fcr: Mapped[int] = mapped_column(Integer, default=0)  # answered, resolved first time
    n_transferred: Mapped[int] = mapped_column(Integer, default=0)
    n_csat: Mapped[int] = mapped_column(Integer, default=0)
    n_csat_pos: Mapped[int] = mapped_column(Integer, default=0)
    n_nps: Mapped[int] = mapped_column(Integer, default=0)
    n_nps_pro: Mapped[int] = mapped_column(Integer, default=0)
    n_nps_det: Mapped[int] = mapped_column(Integer, default=0)
    n_qa: Mapped[int] = mapped_column(Integer, default=0)
    sum_qa: Mapped[float] = mapped_column(Float, default=0)


class UploadTask(db.Model):
    """Checking or importing an uploaded file: queued by the web page, run by the scheduler
    process, polled by the page. One task per file and action, so a double click queues one."""

    __tablename__ = "upload_tasks"
    __table_args__ = (
        UniqueConstraint("token", "action"),
        CheckConstraint("action IN ('preview', 'import')", name="known_action"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="known_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))  # names the stored file
    action: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    valid_only: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str] = mapped_column(String(16), default="zh_CN")  # of rejection reasons
    status: Mapped[str] = mapped_column(String(8), default="queued", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str] = mapped_column(String(120), default="")
    result: Mapped[dict | None] = mapped_column(JSON)  # the preview, ready to show
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id", ondelete="SET NULL"))
    error: Mapped[str | dict] = mapped_column(MessageText, default="")  # as message

    user: Mapped[User] = relationship()
