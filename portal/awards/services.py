"""Awards: the close's nominations by the rules of scoring.md §7, team leads' and admins'
nominations of custom awards, the admin's decisions, publishing (points granted once) and
revoking."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.audit.services import record
from portal.awards.models import BUILTIN_NAMES, MOST_IMPROVED, SERVICE_STAR, Award, AwardType
from portal.extensions import db
from portal.ledger.models import PointsEntry
from portal.ledger.services import grant
from portal.notifications.services import notify
from portal.scoring import engine
from portal.scoring.services import PlanResults, red_line_counts

# The two awards of scoring.md §7: stored name, default points, criteria (kept in the database so an
# admin may change the points; created on first use where a database was emptied).
BUILTIN = {
    SERVICE_STAR: (
        "服务之星",
        500,
        "每个考核周期、每个队列（岗位、新员工/老员工）得分最高的合格坐席：质量门槛通过、"
        "无红线扣分、最终得分不低于方案的最低获奖分。",
    ),
    MOST_IMPROVED: (
        "进步标兵",
        300,
        "每个团队中，最终得分比上一已结算周期提升最多（至少 5 分）的合格坐席。",
    ),
}
MIN_RISE = 5.0  # 进步标兵: the smallest rise in F that counts
IMPROVED_PER_TEAM = 1
STATUS_NAMES = {
    "nominated": _l("nominated"),
    "approved": _l("approved"),
    "rejected": _l("rejected"),
    "published": _l("published"),
    "revoked": _l("revoked"),
}
NOMINATION_INCOMPLETE = _l("Choose the period, the agent and the award.")
PERIOD_PUBLISHED = _l("This period's awards are published: nominate for a later period.")
# Certificate numbers: the period and 8 characters without look-alikes (no 0/O, 1/I/L).
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class AwardError(ValueError):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def award_type(code: str) -> AwardType:
    """The award type with `code`; the built-in ones are created when missing."""
    found = db.session.scalar(select(AwardType).where(AwardType.code == code))
    if found is None and code in BUILTIN:
        name, points, criteria = BUILTIN[code]
        found = AwardType(code=code, name=name, criteria=criteria, points=points, builtin=True)
        db.session.add(found)
        db.session.flush()
    return found


def award_name(kind: AwardType) -> str:
    """A built-in award's name in the reader's language; a custom award's name as written."""
    return (
        str(BUILTIN_NAMES[kind.code]) if kind.builtin and kind.code in BUILTIN_NAMES else kind.name
    )


def certificate_number(period_key: str) -> str:
    """A unique, unguessable certificate number such as 202611-7K3F9Q2M."""
    while True:
        number = (
            period_key.replace("-", "") + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
        )
        if db.session.scalar(select(Award.id).where(Award.certificate_no == number)) is None:
            return number


def citation(award: Award) -> str:
    """The 推荐理由: as written by whoever nominated, or what the rule found."""
    if award.citation:
        return award.citation
    if award.award_type.code == SERVICE_STAR:
        from portal.web.filters import cohort_label

        return _(
            "Rank %(rank)s among %(cohort)s, with a final score of %(final)s.",
            rank=award.rank,
            cohort=cohort_label(award.cohort),
            final=f"{award.final:.2f}",
        )
    if award.award_type.code == MOST_IMPROVED:
        return _(
            "Final score up %(rise)s points on the previous period, to %(final)s.",
            rise=f"{award.rise:.2f}",
            final=f"{award.final:.2f}",
        )
    return ""


# --- nominations by the rules -----------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    code: str
    agent_id: int
    cohort: str
    rank: int | None
    final: float
    rise: float | None = None


def _top(ordered: list[tuple[tuple, engine.Result]], count: int) -> list[engine.Result]:
    """The first `count` by their sort key; whoever is fully tied with the last one chosen
    (final and every tie-break equal) is chosen too: no coin decides an award."""
    chosen = [result for _key, result in ordered[:count]]
    if len(ordered) > count and count > 0:
        last = ordered[count - 1][0]
        chosen += [result for key, result in ordered[count:] if key == last]
    return chosen


def service_stars(found: PlanResults, red_lines: dict[int, int]) -> list[Candidate]:
    """§7 服务之星: per cohort, the top N eligible agents whose quality gate is open, with no
    red-line deduction in the period and a final of at least the plan's award minimum."""
    rules = found.rules
    picked = []
    for cohort in sorted({r.cohort for r in found.results}):
        ordered = sorted(
            (
                (engine.award_order(r), r)
                for r in found.results
                if r.cohort == cohort
                and r.rank is not None
                and r.gate_open
                and red_lines.get(r.key, 0) == 0
                and r.final_shown >= rules.award_min_final
            ),
            key=lambda pair: pair[0],
        )
        picked += [
            Candidate(SERVICE_STAR, r.key, r.cohort, r.rank, r.final_shown)
            for r in _top(ordered, rules.service_star_count)
        ]
    return picked


def most_improved(
    found: list[PlanResults], previous: dict[int, float], teams: dict[int, int | None]
) -> list[Candidate]:
    """§7 进步标兵: per team, the ranked agent with the largest rise in F over their previous
    closed period (where they were ranked too), if the rise is at least MIN_RISE."""
    by_team: dict[int, list[tuple[tuple, engine.Result, float]]] = {}
    for plan in found:
        for r in plan.results:
            team = teams.get(r.key)
            if r.rank is None or team is None or r.key not in previous:
                continue
            rise = engine.rounded(r.final_shown - previous[r.key])
            if rise >= MIN_RISE:
                # Equal rises: qa_score, fcr, handled decide (§6), not the final itself.
                order = (-rise, *engine.award_order(r)[1:])
                by_team.setdefault(team, []).append((order, r, rise))
    picked = []
    for team in sorted(by_team):
        ordered = sorted(by_team[team], key=lambda item: item[0])
        rises = {r.key: rise for _key, r, rise in ordered}
        winners = _top([(key, r) for key, r, _rise in ordered], IMPROVED_PER_TEAM)
        picked += [
            Candidate(MOST_IMPROVED, r.key, r.cohort, r.rank, r.final_shown, rises[r.key])
            for r in winners
        ]
    return picked


def nominate_by_rules(
    period_id: int,
    period_key: str,
    version: int,
    found: list[PlanResults],
    previous: dict[int, float],
    now: datetime,
) -> int:
    """Write the close's nominations for results version `version`. Rerun (a revision), it
    updates the undecided ones, adds the new, and sets aside those no longer qualifying;
    decided awards are left as they are. Returns how many are nominated now."""
    if not found:
        return 0
    period = found[0].period
    ids = [r.key for plan in found for r in plan.results]
    red_lines = red_line_counts(period, ids)
    teams = {a.id: a.team_id for plan in found for a in plan.agents.values()}
    candidates = [c for plan in found for c in service_stars(plan, red_lines)]
    candidates += most_improved(found, previous, teams)
    kinds = {code: award_type(code) for code in BUILTIN}
    existing = {
        (a.award_type_id, a.agent_id): a
        for a in db.session.scalars(
            select(Award).where(Award.period_id == period_id, Award.source == "rule")
        )
    }
    wanted = set()
    for c in candidates:
        kind = kinds[c.code]
        wanted.add((kind.id, c.agent_id))
        award = existing.get((kind.id, c.agent_id))
        if award is None:
            award = Award(
                period_id=period_id,
                award_type_id=kind.id,
                agent_id=c.agent_id,
                source="rule",
                certificate_no=certificate_number(period_key),
                nominated_at=now,
            )
            db.session.add(award)
        elif award.status == "rejected" and award.decided_by is None:
            award.status, award.decided_at = "nominated", None  # set aside by a revision
        elif award.status != "nominated":
            continue
        award.results_version, award.cohort, award.rank = version, c.cohort, c.rank
        award.final, award.rise = c.final, c.rise
        award.pdf_path = award.rendered_at = None  # the certificate shows the new figures
    for key, award in existing.items():
        if key not in wanted and award.status == "nominated":
            # Set aside by the rules (no one decided): the page says it no longer qualifies.
            award.status, award.decided_at, award.results_version = "rejected", now, version
    db.session.flush()
    return len(candidates)


# --- nominations by people, decisions, publishing, revoking ------------------------------------


def _check_type(name: str, criteria: str, points: int | None) -> None:
    if not name or len(name) > 80:
        raise AwardError(_l("Give the award a name of at most 80 characters."))
    if points is None or not 0 <= points <= 100_000:
        raise AwardError(_l("Points must be a whole number from 0 to 100,000."))
    if len(criteria) > 2000:
        raise AwardError(_l("Keep the criteria under 2,000 characters."))


def define_award(actor: User, name: str, criteria: str, points: int | None) -> AwardType:
    """A custom award an admin defines: name, criteria and the points it grants."""
    _check_type(name, criteria, points)
    if db.session.scalar(select(AwardType.id).where(AwardType.name == name)):
        raise AwardError(_l("An award with this name exists already."))
    kind = AwardType(name=name, criteria=criteria, points=points, builtin=False)
    kind.code = f"custom_{secrets.token_hex(4)}"
    db.session.add(kind)
    db.session.flush()
    kind.code = f"custom_{kind.id}"
    record(actor, "award_type.create", "award_type", kind.id, summary=f"{name} ({points})")
    return kind


def change_award(
    actor: User, kind: AwardType, name: str, criteria: str, points: int | None, active: bool
) -> None:
    """Change an award type. Built-in awards keep their name; points already granted stay
    (the ledger is history), new grants use the new points."""
    if kind.builtin:
        name = kind.name
    _check_type(name, criteria, points)
    clash = db.session.scalar(
        select(AwardType.id).where(AwardType.name == name, AwardType.id != kind.id)
    )
    if clash:
        raise AwardError(_l("An award with this name exists already."))
    before = {"name": kind.name, "points": kind.points, "active": kind.active}
    kind.name, kind.criteria, kind.points = name, criteria, points
    kind.active = True if kind.builtin else active
    record(
        actor,
        "award_type.update",
        "award_type",
        kind.id,
        before=before,
        after={"name": kind.name, "points": kind.points, "active": kind.active},
    )


def can_nominate(actor: User, agent: User) -> bool:
    """Admins nominate anyone; a team lead the members of the teams they lead."""
    if actor.has_role(Role.ADMIN):
        return True
    return actor.has_role(Role.TEAM_LEAD) and agent.team_id in {t.id for t in actor.led_teams}


def nominate(
    actor: User, period_id: int, period_key: str, agent: User, kind: AwardType, text: str, now
) -> Award:
    """A custom award nominated by a team lead or an admin, with a citation (推荐理由)."""
    text = text.strip()
    if kind.builtin:
        raise AwardError(
            _l("Service Star and Most Improved are nominated by the close's rules, not by hand.")
        )
    if not kind.active:
        raise AwardError(_l("This award is no longer given."))
    if not agent.active or not agent.has_role(Role.AGENT):
        raise AwardError(_l("Only active agents can receive awards."))
    if not can_nominate(actor, agent):
        raise AwardError(_l("You can nominate only the members of your own teams."))
    if not text:
        raise AwardError(_l("Write the citation: why this agent deserves the award."))
    if len(text) > 1000:
        raise AwardError(_l("Keep the citation under 1,000 characters."))
    taken = db.session.scalar(
        select(Award.id).where(
            Award.period_id == period_id,
            Award.award_type_id == kind.id,
            Award.agent_id == agent.id,
        )
    )
    if taken:
        raise AwardError(_l("This agent is already nominated for this award in this period."))
    award = Award(
        period_id=period_id,
        award_type_id=kind.id,
        agent_id=agent.id,
        source="admin" if actor.has_role(Role.ADMIN) else "lead",
        citation=text,
        nominated_by=actor.id,
        nominated_at=now,
        certificate_no=certificate_number(period_key),
    )
    db.session.add(award)
    db.session.flush()
    record(actor, "award.nominate", "award", award.id, summary=f"{kind.code} {agent.agent_no}")
    return award


def decide(actor: User, award: Award, approve: bool, reason: str, now, published: bool) -> None:
    """An admin approves or rejects a nomination (a rejection says why). Once the period is
    `published`, an approval publishes the award at once."""
    reason = reason.strip()
    if award.status not in ("nominated", "approved", "rejected"):
        raise AwardError(_l("A published award can only be revoked."))
    if not approve and not reason:
        raise AwardError(_l("Say why the nomination is rejected."))
    award.status = "approved" if approve else "rejected"
    award.decided_by, award.decided_at, award.decision_reason = actor.id, now, reason
    record(
        actor,
        "award.approve" if approve else "award.reject",
        "award",
        award.id,
        summary=reason,
    )
    if approve and published:
        publish_awards([award], actor, now)


def publish_awards(awards: list[Award], actor: User | None, now: datetime) -> int:
    """Publish awards (nominated or approved): visible on the wall, the holder told, the
    award's points granted once (the ledger's source key `award:<id>` makes a rerun grant
    nothing)."""
    count = 0
    for award in awards:
        if award.status not in ("nominated", "approved"):
            continue
        award.status, award.published_at = "published", now
        if award.decided_at is None:
            award.decided_by = actor.id if actor else None
            award.decided_at = now
        kind = award.award_type
        if kind.points:
            grant(
                award.agent_id,
                kind.points,
                "award",
                f"award:{award.id}",
                f"{kind.name} {award.period.key}",
                actor,
                now,
            )
        notify(
            award.agent,
            "award_published",
            {"award": kind.name, "award_code": kind.code, "period": award.period.key},
            f"/awards/wall#award-{award.id}",
        )
        count += 1
    db.session.flush()
    return count


def revoke(actor: User, award: Award, reason: str, now: datetime) -> None:
    """Revoke a published award: its history stays, its points are taken back by a
    compensating entry, and its certificate and verification page say it is revoked."""
    reason = reason.strip()
    if award.status != "published":
        raise AwardError(_l("Only a published award can be revoked."))
    if not reason:
        raise AwardError(_l("Say why the award is revoked."))
    award.status, award.revoked_by, award.revoked_at = "revoked", actor.id, now
    award.revoke_reason = reason
    award.pdf_path = award.rendered_at = None  # re-rendered with the revocation
    granted = db.session.scalar(
        select(PointsEntry.points).where(PointsEntry.source_key == f"award:{award.id}")
    )
    if granted:
        grant(
            award.agent_id,
            -granted,
            "award_revoked",
            f"award:{award.id}:revoked",
            f"{award.award_type.name} {award.period.key}: {reason}",
            actor,
            now,
        )
    notify(
        award.agent,
        "award_revoked",
        {
            "award": award.award_type.name,
            "award_code": award.award_type.code,
            "period": award.period.key,
            "reason": reason,
        },
        f"/verify/{award.certificate_no}",
    )
    record(actor, "award.revoke", "award", award.id, summary=reason)


def can_download(viewer: User, award: Award) -> bool:
    """The certificate's holder (once published), their team lead and admins."""
    if viewer.has_role(Role.ADMIN):
        return True
    if award.status not in ("published", "revoked"):
        return False
    if viewer.id == award.agent_id:
        return True
    return viewer.has_role(Role.TEAM_LEAD) and award.agent.team_id in {
        t.id for t in viewer.led_teams
    }
