"""Points: granted once per source key into the append-only ledger, summed for balances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.accounts.models import User
from portal.extensions import db
from portal.ledger.models import PointsEntry


def grant(
    user_id: int,
    points: int,
    source: str,
    source_key: str,
    reason: str,
    actor: User | None,
    now: datetime,
) -> PointsEntry | None:
    """Add an entry unless one with `source_key` exists (then None): a rerun, a double click
    or a second process grants nothing twice. Runs in a savepoint of the caller's transaction."""
    if db.session.scalar(select(PointsEntry.id).where(PointsEntry.source_key == source_key)):
        return None
    entry = PointsEntry(
        user_id=user_id,
        points=points,
        source=source,
        source_key=source_key,
        reason=reason[:300],
        actor_id=actor.id if actor else None,
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:  # another process granted it between the check and the insert
        return None
    return entry


def balance(user_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.user_id == user_id)
    )
