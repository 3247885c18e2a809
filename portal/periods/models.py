"""Assessment periods as rows: created ahead for every plan's period kind and for past periods
with data; their close time and, once the close has run, its outcome."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
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
    # When the reviewers of its undecided appeals were last told the close waits for them.
    held_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "Close now" on the periods page asks the scheduler to close (a close is long work, never
    # run in a web request): who asked, whether to force past the blockers, and why.
    close_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    close_force: Mapped[bool] = mapped_column(Boolean, default=False)
    close_reason: Mapped[str] = mapped_column(String(500), default="")
    # The close's progress while it runs: its step (freezing, certificates, finishing) and,
    # for the certificates, how many of how many are rendered. Each step commits.
    close_step: Mapped[str | None] = mapped_column(String(12))
    close_done: Mapped[int] = mapped_column(Integer, default=0)
    close_total: Mapped[int] = mapped_column(Integer, default=0)
    # Publishing makes the results (this version) and the awards visible to agents.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResultsVersion(db.Model):
    """A frozen set of a period's results: written by the close, and again by each reopening;
    earlier versions stay readable."""

    __tablename__ = "results_versions"
    __table_args__ = (UniqueConstraint("period_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(500), default="")
    # Random, written once: with the id it names this version's rows wherever they are kept
    # (a process keeps what it has read), even in a database emptied and filled again.
    token: Mapped[str] = mapped_column(String(16), default=lambda: secrets.token_hex(8))


class ResultRow(db.Model):
    """One agent's result in a results version, with the plan version it was scored under."""

    __tablename__ = "result_rows"
    __table_args__ = (UniqueConstraint("version_id", "agent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("results_versions.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The agent's team when the results were frozen (team boards read the snapshot).
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    handled: Mapped[int] = mapped_column(Integer, default=0)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id"))
    cohort: Mapped[str] = mapped_column(String(120))
    weighted: Mapped[float | None] = mapped_column(Float)
    bonus: Mapped[float] = mapped_column(Float, default=0)
    deductions: Mapped[float] = mapped_column(Float, default=0)
    offset: Mapped[float] = mapped_column(Float, default=0)
    final: Mapped[float | None] = mapped_column(Float)
    gate_open: Mapped[bool] = mapped_column(Boolean)
    eligible: Mapped[bool] = mapped_column(Boolean)
    rank: Mapped[int | None] = mapped_column(Integer)
    tier_multiplier: Mapped[float | None] = mapped_column(Float)
    bonus_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    lines: Mapped[list] = mapped_column(JSON)  # as in `flask results export --format json`


class ReportRequest(db.Model):
    """An admin's request for a period report PDF, rendered by the scheduler (a report of
    thousands of agents takes longer than a web request may). One row per file: the period,
    results version, language and fingerprint of the awards shown, so a double click queues one
    render. requested → started (claimed; taken over when stale) → finished or failed."""

    __tablename__ = "report_requests"
    __table_args__ = (UniqueConstraint("period_id", "version", "locale", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    locale: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str] = mapped_column(String(120), default="")
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str] = mapped_column(Text, default="")
