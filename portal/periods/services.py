"""Periods: which exist, where each stands, and what holds its close back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update

from portal.accounts.models import Position, Role, User
from portal.accounts.services import active_with_role
from portal.audit.services import record
from portal.extensions import db
from portal.metrics.models import Interaction, QaEvaluation, UploadTask
from portal.metrics.periods import Period, parse_period, period_of
from portal.notifications.services import notify
from portal.periods.models import PeriodRow, ResultRow, ResultsVersion
from portal.qa.models import Appeal
from portal.qa.services import remind_blocking_reviewers, undecided_appeals
from portal.scoring.engine import rounded
from portal.scoring.models import Plan, PlanVersion
from portal.scoring.services import all_results

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


def running_imports() -> int:
    return db.session.scalar(
        select(func.count(UploadTask.id)).where(
            UploadTask.action == "import", UploadTask.status.in_(("queued", "running"))
        )
    )


def blockers(row: PeriodRow, running: int | None = None) -> Blockers:
    """What holds the close back (`running`: the import count, when already known)."""
    running = running_imports() if running is None else running
    return Blockers(len(undecided_appeals(row.first_day, row.last_day)), running)


@dataclass(frozen=True)
class Visible:
    """Which results of a period a person sees: `provisional` (computed live, the period is not
    closed), `final` (results version `version`; `published` says whether agents see it too)
    or `awaiting` (closed, not yet published: an agent sees nothing yet)."""

    kind: str  # provisional | final | awaiting
    version: int | None = None
    published: bool = False


def visible_results(row: PeriodRow | None, viewer: User) -> Visible:
    """Agents see a closed period's results once published (the published version); team
    leads, QA and admins see the latest version as soon as the period is closed."""
    if row is None or row.closed_at is None:
        return Visible("provisional")
    published = row.published_version is not None
    if viewer.has_role(Role.ADMIN, Role.LEAD, Role.QL):
        return Visible("final", row.results_version, published)
    if not published:
        return Visible("awaiting")
    return Visible("final", row.published_version, True)


def version_id(row: PeriodRow, number: int) -> int | None:
    """The id of results version `number` of the period."""
    return db.session.scalar(
        select(ResultsVersion.id).where(
            ResultsVersion.period_id == row.id, ResultsVersion.number == number
        )
    )


def as_period(row: PeriodRow) -> Period:
    return parse_period(row.key)


# --- the close ------------------------------------------------------------------------------

# A close claimed this long ago without finishing belonged to a process that died: its
# transaction rolled back, so the close may be claimed again and done whole.
STALE_CLOSE = timedelta(minutes=30)
REMIND_HELD_EVERY = timedelta(days=1)


@dataclass
class CloseOutcome:
    status: str  # closed | held | busy | already
    message: str
    version: int | None = None


def close_period(
    row: PeriodRow,
    now: datetime,
    *,
    actor: User | None = None,
    force: bool = False,
    reason: str = "",
) -> CloseOutcome:
    """Close one period exactly once: claim it with a conditional update, freeze every plan's
    results as a new results version in one transaction, and tell the admins. A second process
    finds the claim taken; a rerun after a crash finds the stale claim and does it all."""
    if row.closed_at is not None:
        return CloseOutcome("already", f"{row.key} is already closed.", row.results_version)
    held = blockers(row)
    if held.any and not force:
        # The scheduler retries every quarter hour; the reviewers hear of it once a day.
        if held.appeals and (
            row.held_reminded_at is None or now - row.held_reminded_at >= REMIND_HELD_EVERY
        ):
            remind_blocking_reviewers(row.first_day, row.last_day, row.key)
            row.held_reminded_at = now
        db.session.commit()
        return CloseOutcome(
            "held",
            f"{row.key} is held back by {held.appeals} undecided appeal(s) and "
            f"{held.imports} running import(s); decide them, or force the close with a reason.",
        )
    if force and not reason.strip():
        return CloseOutcome("held", "A forced close needs a reason.")
    claimed = db.session.execute(
        update(PeriodRow)
        .where(
            PeriodRow.id == row.id,
            PeriodRow.closed_at.is_(None),
            or_(PeriodRow.closing_at.is_(None), PeriodRow.closing_at < now - STALE_CLOSE),
        )
        .values(closing_at=now)
    ).rowcount
    db.session.commit()
    if not claimed:
        return CloseOutcome("busy", f"{row.key} is being closed by another process.")
    row = db.session.get(PeriodRow, row.id)
    number = _freeze(row, now, actor, reason.strip() if force else "")
    row.closed_at = now
    record(
        actor,
        "period.force_close" if force else "period.close",
        "period",
        row.id,
        summary=f"{row.key} v{number}" + (f": {reason.strip()}" if force else ""),
    )
    for admin in active_with_role(Role.ADMIN):
        notify(admin, "period_closed", {"period": row.key}, "/admin/periods")
    db.session.commit()
    return CloseOutcome("closed", f"{row.key} closed: results version {number}.", number)


def _freeze(row: PeriodRow, now: datetime, actor: User | None, reason: str) -> int:
    """Write the period's results as they are now as its next results version."""
    version = ResultsVersion(
        period_id=row.id,
        number=row.results_version + 1,
        actor_id=actor.id if actor else None,
        reason=reason[:500],
        created_at=now,
    )
    db.session.add(version)
    db.session.flush()
    for found in all_results(as_period(row)):
        for result in found.results:
            db.session.add(
                ResultRow(
                    version_id=version.id,
                    agent_id=result.key,
                    plan_version_id=found.version.id,
                    cohort=result.cohort,
                    weighted=result.weighted,
                    bonus=result.bonus,
                    deductions=result.deductions,
                    offset=result.offset,
                    final=result.final,
                    gate_open=result.gate_open,
                    eligible=result.eligible,
                    rank=result.rank,
                    tier_multiplier=result.tier_multiplier,
                    bonus_amount=result.bonus_amount,
                    lines=[
                        {
                            "metric": line.metric,
                            "category": line.category,
                            "weight": line.weight,
                            "value": line.value,
                            "score": line.score,
                            "included": line.included,
                            "note": line.note,
                        }
                        for line in result.lines
                    ],
                )
            )
    row.results_version, row.revision_pending = version.number, False
    db.session.flush()
    return version.number


def flag_revisions(now: datetime) -> int:
    """Mark closed periods whose results an appeal changed as revision pending, and tell the
    admins, once per period until it is revised."""
    flagged = 0
    for row in db.session.scalars(
        select(PeriodRow).where(
            PeriodRow.closed_at.is_not(None), PeriodRow.revision_pending.is_(False)
        )
    ):
        latest = db.session.scalar(
            select(func.max(ResultsVersion.created_at)).where(ResultsVersion.period_id == row.id)
        )
        if latest is None or _upheld_after(row, latest) == 0:
            continue
        row.revision_pending = True
        for admin in active_with_role(Role.ADMIN):
            notify(admin, "period_revision", {"period": row.key}, "/admin/periods")
        flagged += 1
    return flagged


def _upheld_after(row: PeriodRow, moment: datetime) -> int:
    return db.session.scalar(
        select(func.count(Appeal.id))
        .join(QaEvaluation, QaEvaluation.id == Appeal.evaluation_id)
        .join(Interaction, Interaction.id == QaEvaluation.interaction_id)
        .where(
            Appeal.status.in_(("upheld", "partially_upheld")),
            Appeal.decided_at > moment,
            Interaction.offered_day.between(row.first_day, row.last_day),
        )
    )


def revise_period(row: PeriodRow, actor: User, reason: str, now: datetime) -> int:
    """Reopen a closed period's results: freeze them again as a new version (audited); the
    earlier versions stay readable."""
    if row.closed_at is None:
        raise PeriodError(_l("Only a closed period can be revised."))
    if not reason.strip():
        raise PeriodError(_l("Say why the results are revised."))
    number = _freeze(row, now, actor, reason.strip())
    record(actor, "period.revise", "period", row.id, summary=f"{row.key} v{number}: {reason}")
    return number


class PeriodError(ValueError):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def close_due_periods(now: datetime) -> str:
    """The scheduler's close: every period whose close time has passed, oldest first; then
    the closed periods an appeal has changed since are flagged for revision."""
    flagged = flag_revisions(now)
    db.session.commit()
    due = db.session.scalars(
        select(PeriodRow)
        .where(PeriodRow.close_at <= now, PeriodRow.closed_at.is_(None))
        .order_by(PeriodRow.close_at)
    ).all()
    outcomes = [close_period(row, now).status for row in due]
    summary = ", ".join(f"{s}: {outcomes.count(s)}" for s in sorted(set(outcomes)))
    return (summary or "none due") + (f"; {flagged} flagged for revision" if flagged else "")


def frozen_results(key: str) -> list[dict] | None:
    """A closed period's latest results version, in the layout of `flask results export`
    (status "final"); None while the period is not closed."""
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
    if row is None or row.closed_at is None:
        return None
    version = db.session.scalar(
        select(ResultsVersion)
        .where(ResultsVersion.period_id == row.id)
        .order_by(ResultsVersion.number.desc())
        .limit(1)
    )
    found = db.session.execute(
        select(ResultRow, User, Position.name)
        .join(User, User.id == ResultRow.agent_id)
        .join(PlanVersion, PlanVersion.id == ResultRow.plan_version_id)
        .join(Plan, Plan.id == PlanVersion.plan_id)
        .join(Position, Position.id == Plan.position_id)
        .where(ResultRow.version_id == version.id)
        .order_by(
            Position.name, ResultRow.cohort, ResultRow.rank.is_(None), ResultRow.rank, User.agent_no
        )
    ).all()
    shown = rounded
    return [
        {
            "period": key,
            "agent_no": agent.agent_no,
            "name": agent.name,
            "team": agent.team.name if agent.team else "",
            "position": position,
            "cohort": result.cohort,
            "weighted": shown(result.weighted),
            "bonus": shown(result.bonus),
            "deductions": shown(result.deductions),
            "offset": shown(result.offset),
            "final": shown(result.final),
            "gate_open": result.gate_open,
            "eligible": result.eligible,
            "rank": result.rank,
            "tier_multiplier": result.tier_multiplier,
            "status": "final",
            "lines": [
                {
                    **line,
                    "weight": shown(line["weight"]),
                    "score": shown(line["score"]),
                    "value": None if line["value"] is None else round(line["value"], 4),
                }
                for line in result.lines
            ],
        }
        for result, agent, position in found
    ]
