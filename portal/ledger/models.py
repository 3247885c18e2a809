"""The points ledger: append-only. A grant is never changed or deleted; a correction is a new
entry. Each entry's source key is unique, so no grant can happen twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import UTCDateTime, utcnow
from portal.extensions import db


class PointsEntry(db.Model):
    __tablename__ = "points_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))  # award | award_revoked | …
    source_key: Mapped[str] = mapped_column(String(80), unique=True)  # e.g. award:17
    reason: Mapped[str] = mapped_column(String(300), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LedgerIsAppendOnly(RuntimeError):
    pass


@event.listens_for(PointsEntry, "before_update")
@event.listens_for(PointsEntry, "before_delete")
def _refuse_change(_mapper, _connection, entry):
    raise LedgerIsAppendOnly(f"points entry {entry.id} cannot be changed or deleted")
