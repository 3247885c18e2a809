"""Periods: which exist, where each stands, and what holds its close back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, or_, select, update

from portal.accounts.models import Role, User
from portal.accounts.services import active_with_role
from portal.audit.services import record
from portal.awards.certificates import render_certificate
from portal.awards.models import Award
from portal.awards.services import nominate_by_rules, publish_awards
from portal.db import utcnow
from portal.extensions import db
from portal.metrics.models import Interaction, QaEvaluation, UploadTask
from portal.metrics.periods import Period, parse_period, period_of
from portal.notifications.services import notify, notify_many
from portal.periods.models import PeriodRow, ResultRow, ResultsVersion
from portal.periods.results import export_rows
from portal.qa.models import Appeal
from portal.qa.services import remind_blocking_reviewers, undecided_appeals
from portal.scoring.engine import rounded
from portal.scoring.export import line_dict
from portal.scoring.models import Plan
from portal.scoring.services import PlanResults, all_results

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


def has_begun(row: PeriodRow, now: datetime) -> bool:
    """Whether the period's first day has come (in PORTAL_TIMEZONE): a period that has not
    begun has nothing to close."""
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    return now >= datetime.combine(row.first_day, time(0), tzinfo=tz)


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
    if viewer.has_role(Role.ADMIN, Role.TEAM_LEAD, Role.QA_LEAD):
        return Visible("final", row.results_version, row.published_version == row.results_version)
    if row.published_version is None:
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

# A close whose last sign of progress is this old belonged to a process that died: the step it
# was in rolled back, so the close may be claimed again and resumed from its last committed step.
STALE_CLOSE = timedelta(minutes=10)
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
    progress: Callable[[PeriodRow], None] | None = None,
) -> CloseOutcome:
    """Close one period exactly once, in steps that each commit: claim it with a conditional
    update; freeze every plan's results as a new results version and nominate the awards (one
    transaction); render the certificates (one commit each, counted for the progress shown);
    mark it closed and tell the admins. A second process finds the claim taken; a rerun after
    a crash finds the claim stale and resumes at the step that did not commit."""
    if row.closed_at is not None:
        return CloseOutcome("already", f"{row.key} is already closed.", row.results_version)
    if not has_begun(row, now):
        return CloseOutcome("held", f"{row.key} has not begun yet: there is nothing to close.")
    # Once its results are frozen, a close is finished whatever came up since.
    held = blockers(row) if row.close_step in (None, "freezing") else Blockers(0, 0)
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
    started, claim = utcnow(), {"at": now}

    def beat(row: PeriodRow) -> None:
        """Commit a step with a sign of life (the claim's time moved on by the time spent),
        only while the claim is still this process's: the time it last wrote is its token. A
        process that lost it (it stalled, another took over) rolls its step back and stops."""
        moved = now + (utcnow() - started)
        kept = db.session.execute(
            update(PeriodRow)
            .where(PeriodRow.id == row.id, PeriodRow.closing_at == claim["at"])
            .values(closing_at=moved)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not kept:
            db.session.rollback()
            raise _LostClaim
        claim["at"] = moved
        db.session.commit()
        if progress:
            progress(row)

    row = db.session.get(PeriodRow, row.id)
    try:
        if row.close_step in (None, "freezing"):
            row.close_step = "freezing"
            beat(row)
            number, found = _freeze(row, now, actor, reason.strip() if force else "")
            nominate_by_rules(row.id, row.key, number, found, previous_finals(row), now)
            row.close_step, row.close_done = "certificates", 0
            row.close_total = len(_unrendered(row))
            beat(row)
        for award in _unrendered(row):
            render_certificate(award, now)
            row.close_done += 1
            beat(row)
        row.closed_at, row.close_step = now, None
        row.close_requested_at, row.close_requested_by = None, None
        row.close_force, row.close_reason = False, ""
        record(
            actor,
            "period.force_close" if force else "period.close",
            "period",
            row.id,
            summary=f"{row.key} v{row.results_version}" + (f": {reason.strip()}" if force else ""),
        )
        for admin in active_with_role(Role.ADMIN):
            notify(admin, "period_closed", {"period": row.key}, "/admin/periods")
        beat(row)
    except _LostClaim:
        return CloseOutcome("busy", f"{row.key} was taken over by another process.")
    return CloseOutcome(
        "closed", f"{row.key} closed: results version {row.results_version}.", row.results_version
    )


class _LostClaim(Exception):
    """Another process took the close over: this one stops."""


def _unrendered(row: PeriodRow) -> list[Award]:
    """The period's awards still standing whose certificate is not rendered yet."""
    return list(
        db.session.scalars(
            select(Award)
            .where(
                Award.period_id == row.id,
                Award.status.in_(("nominated", "approved", "published", "revoked")),
                Award.pdf_path.is_(None),
            )
            .order_by(Award.id)
        )
    )


def _freeze(
    row: PeriodRow, now: datetime, actor: User | None, reason: str
) -> tuple[int, list[PlanResults]]:
    """Write the period's results as they are now as its next results version; returns its
    number and the scored plans it was written from."""
    version = ResultsVersion(
        period_id=row.id,
        number=row.results_version + 1,
        actor_id=actor.id if actor else None,
        reason=reason[:500],
        created_at=now,
    )
    db.session.add(version)
    db.session.flush()
    found = all_results(as_period(row))
    rows = []
    for plan in found:
        for result in plan.results:
            agent = plan.agents[result.key]
            rows.append(
                {
                    "version_id": version.id,
                    "agent_id": result.key,
                    "team_id": agent.team_id,
                    "handled": result.handled,
                    "plan_version_id": plan.version.id,
                    "cohort": result.cohort,
                    "weighted": result.weighted,
                    "bonus": result.bonus,
                    "deductions": result.deductions,
                    "offset": result.offset,
                    "final": result.final,
                    "gate_open": result.gate_open,
                    "eligible": result.eligible,
                    "rank": result.rank,
                    "tier_multiplier": result.tier_multiplier,
                    "bonus_amount": result.bonus_amount,
                    "lines": [line_dict(line) for line in result.lines],
                }
            )
    if rows:
        db.session.execute(insert(ResultRow), rows)
    row.results_version, row.revision_pending = version.number, False
    db.session.flush()
    return version.number, found


def previous_closed(period: Period | PeriodRow) -> PeriodRow | None:
    """The latest closed period of the same kind that ended before `period` began."""
    return db.session.scalar(
        select(PeriodRow)
        .where(
            PeriodRow.kind == period.kind,
            PeriodRow.last_day < period.first_day,
            PeriodRow.closed_at.is_not(None),
        )
        .order_by(PeriodRow.last_day.desc())
        .limit(1)
    )


def previous_finals(row: PeriodRow) -> dict[int, float]:
    """Each agent's shown final in the previous closed period of the same kind, for those
    who were ranked in it (进步标兵 compares against it)."""
    before = previous_closed(row)
    if before is None:
        return {}
    found = db.session.execute(
        select(ResultRow.agent_id, ResultRow.final).where(
            ResultRow.version_id == version_id(before, before.results_version),
            ResultRow.rank.is_not(None),
        )
    )
    return {agent_id: rounded(final) for agent_id, final in found}


def request_close(row: PeriodRow, actor: User, now: datetime, force: bool, reason: str) -> None:
    """ "Close now" from the periods page: the scheduler does it within seconds (long work is
    never done in a web request); the page shows its progress."""
    if row.closed_at is not None:
        raise PeriodError(_l("This period is already closed."))
    if not has_begun(row, now):
        raise PeriodError(_l("This period has not begun yet: there is nothing to close."))
    if force and not reason.strip():
        raise PeriodError(_l("A forced close needs a reason: write why it cannot wait."))
    row.close_requested_at, row.close_requested_by = now, actor.id
    row.close_force, row.close_reason = force, reason.strip()[:500] if force else ""
    record(actor, "period.close_requested", "period", row.id, summary=row.close_reason)


def run_requested_closes(now: datetime) -> int:
    """Close the periods an admin asked to close now (called every few seconds by the
    scheduler). A held close is dropped and its requester told why."""
    done, started = 0, utcnow()
    for row in db.session.scalars(
        select(PeriodRow)
        .where(PeriodRow.close_requested_at.is_not(None), PeriodRow.closed_at.is_(None))
        .order_by(PeriodRow.close_requested_at)
    ).all():
        actor = db.session.get(User, row.close_requested_by) if row.close_requested_by else None
        outcome = close_period(
            row,
            now + (utcnow() - started),
            actor=actor,
            force=row.close_force,
            reason=row.close_reason,
        )
        if outcome.status == "held":
            row.close_requested_at, row.close_force, row.close_reason = None, False, ""
            if actor is not None:
                notify(actor, "close_held", {"period": row.key}, "/admin/periods")
            db.session.commit()
        done += outcome.status == "closed"
    return done


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


def revise_period(
    row: PeriodRow, actor: User, reason: str, now: datetime, seen: int | None = None
) -> int:
    """Reopen a closed period's results: freeze them again as a new version (audited); the
    earlier versions stay readable. `seen`: the version the admin was looking at, so that a
    double click or two admins write one new version."""
    if row.closed_at is None:
        raise PeriodError(_l("Only a closed period can be revised."))
    if seen is not None and seen != row.results_version:
        raise PeriodError(_l("This period was revised meanwhile: look at its new version first."))
    if not reason.strip():
        raise PeriodError(_l("Say why the results are revised."))
    number, found = _freeze(row, now, actor, reason.strip())
    nominate_by_rules(row.id, row.key, number, found, previous_finals(row), now)
    record(actor, "period.revise", "period", row.id, summary=f"{row.key} v{number}: {reason}")
    return number


class PeriodError(ValueError):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def publish_period(row: PeriodRow, actor: User | None, now: datetime) -> int:
    """Publish a closed period's latest results version and its awards: agents see them and
    are told; every nomination not rejected is published and its points granted (once). A
    revised period is published again for its new version. Returns the awards published."""
    if row.closed_at is None:
        raise PeriodError(_l("Only a closed period can be published."))
    if row.revision_pending:
        raise PeriodError(
            _l("An appeal changed this period's results: write a new results version first.")
        )
    claimed = db.session.execute(
        update(PeriodRow)
        .where(
            PeriodRow.id == row.id,
            or_(
                PeriodRow.published_version.is_(None),
                PeriodRow.published_version < PeriodRow.results_version,
            ),
        )
        .values(
            published_at=now,
            published_by=actor.id if actor else None,
            published_version=PeriodRow.results_version,
        )
    ).rowcount
    if not claimed:
        raise PeriodError(_l("This results version is already published."))
    db.session.refresh(row)
    awards = db.session.scalars(
        select(Award)
        .where(Award.period_id == row.id, Award.status.in_(("nominated", "approved")))
        .order_by(Award.id)
        .with_for_update(of=Award)  # a decision on one of them waits, or is waited for
    ).all()
    count = publish_awards(list(awards), actor, now)
    agents = db.session.scalars(
        select(ResultRow.agent_id).where(
            ResultRow.version_id == version_id(row, row.published_version)
        )
    ).all()
    notify_many(list(agents), "results_published", {"period": row.key}, "/scores/me")
    record(
        actor,
        "period.publish",
        "period",
        row.id,
        summary=f"{row.key} v{row.published_version}: {count} award(s)",
    )
    return count


def render_certificates(row: PeriodRow, now: datetime) -> int:
    """Render the certificates the period still lacks (awards approved after the close),
    committing each."""
    done = 0
    for award in _unrendered(row):
        render_certificate(award, now)
        db.session.commit()
        done += 1
    return done


def render_pending_certificates(now: datetime, limit: int = 20) -> int:
    """The scheduler's share of certificates: those of closed periods not rendered yet
    (nominations approved after the close, revocations), a few at a time, one commit each.
    A download renders its own at once if it comes first."""
    awards = db.session.scalars(
        select(Award)
        .join(PeriodRow, PeriodRow.id == Award.period_id)
        .where(
            PeriodRow.closed_at.is_not(None),
            Award.status.in_(("nominated", "approved", "published", "revoked")),
            Award.pdf_path.is_(None),
        )
        .order_by(Award.id)
        .limit(limit)
    ).all()
    for award in awards:
        render_certificate(award, now)
        db.session.commit()
    return len(awards)


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
    started = utcnow()  # each close claims with the job's time moved on by the time spent
    outcomes = [close_period(row, now + (utcnow() - started)).status for row in due]
    summary = ", ".join(f"{s}: {outcomes.count(s)}" for s in sorted(set(outcomes)))
    return (summary or "none due") + (f"; {flagged} flagged for revision" if flagged else "")


def frozen_results(key: str) -> list[dict] | None:
    """A closed period's latest results version, in the layout of `flask results export`
    (status "final"); None while the period is not closed."""
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
    if row is None or row.closed_at is None:
        return None
    return export_rows(row, row.results_version)
