"""A closed period's frozen results as people read them: one results version's rows for the
score screens, the downloads, the API and the period report. Nothing here recomputes a score:
the numbers are the snapshot's, and what explains them (bands, tiers, scenario days) comes from
the plan version the snapshot was scored under, which never changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from portal.accounts.models import Position, Team, User
from portal.extensions import db
from portal.metrics.periods import Period
from portal.periods.models import PeriodRow, ResultRow, ResultsVersion
from portal.scoring import engine, plans
from portal.scoring.export import export_row
from portal.scoring.models import Plan, PlanVersion
from portal.scoring.services import PlanResults


@dataclass(frozen=True)
class Frozen:
    """One agent's frozen result with who they were when it was frozen."""

    result: ResultRow
    agent: User
    position: str
    team: Team | None


def frozen_team_id():
    """The team a result counts for: the one recorded at the freeze (rows frozen before the
    team was recorded fall back to the agent's team)."""
    return func.coalesce(ResultRow.team_id, User.team_id)


def version_rows(
    row: PeriodRow,
    number: int,
    *,
    team_ids: Iterable[int] | None = None,
    plan_version_id: int | None = None,
    cohort: str | None = None,
) -> list[Frozen]:
    """The rows of results version `number` (of `team_ids`, one plan version or one cohort
    only, when given), by position, cohort and rank (unranked last), in one query."""
    team_id = frozen_team_id()
    query = (
        select(ResultRow, User, Position.name, Team)
        .join(ResultsVersion, ResultsVersion.id == ResultRow.version_id)
        .join(User, User.id == ResultRow.agent_id)
        .join(PlanVersion, PlanVersion.id == ResultRow.plan_version_id)
        .join(Plan, Plan.id == PlanVersion.plan_id)
        .join(Position, Position.id == Plan.position_id)
        .outerjoin(Team, Team.id == team_id)
        .where(ResultsVersion.period_id == row.id, ResultsVersion.number == number)
        .order_by(
            Position.name,
            ResultRow.cohort,
            ResultRow.rank.is_(None),
            ResultRow.rank,
            User.agent_no,
        )
    )
    if team_ids is not None:
        query = query.where(team_id.in_(list(team_ids)))
    if plan_version_id is not None:
        query = query.where(ResultRow.plan_version_id == plan_version_id)
    if cohort is not None:
        query = query.where(ResultRow.cohort == cohort)
    return [Frozen(*found) for found in db.session.execute(query)]


def export_rows(row: PeriodRow, number: int, team_ids: Iterable[int] | None = None) -> list[dict]:
    """Results version `number` in the layout of `flask results export` (status "final")."""
    return [
        export_row(
            row.key,
            found.agent,
            found.team.name if found.team else "",
            found.position,
            found.result,
            found.result.lines,
            "final",
        )
        for found in version_rows(row, number, team_ids=team_ids)
    ]


def agent_result(row: PeriodRow, number: int, agent_id: int) -> ResultRow | None:
    """The agent's row in results version `number`, if they were scored."""
    return db.session.scalar(
        select(ResultRow)
        .join(ResultsVersion, ResultsVersion.id == ResultRow.version_id)
        .where(
            ResultsVersion.period_id == row.id,
            ResultsVersion.number == number,
            ResultRow.agent_id == agent_id,
        )
    )


def plan_results(
    row: PeriodRow,
    period: Period,
    number: int,
    *,
    team_ids: Iterable[int] | None = None,
    plan_version_id: int | None = None,
    cohort: str | None = None,
) -> list[PlanResults]:
    """Results version `number` as the score screens read live results: one PlanResults per
    plan version scored, each result rebuilt from its frozen row (no inputs: nothing can be
    simulated on a closed period)."""
    grouped: dict[int, list[Frozen]] = {}
    for found in version_rows(
        row, number, team_ids=team_ids, plan_version_id=plan_version_id, cohort=cohort
    ):
        grouped.setdefault(found.result.plan_version_id, []).append(found)
    if not grouped:
        return []
    versions = {
        version.id: version
        for version in db.session.scalars(
            select(PlanVersion).where(PlanVersion.id.in_(list(grouped)))
        )
    }
    days = engine.period_days(row.first_day, row.last_day)
    scored = []
    for version_id, members in grouped.items():
        version = versions[version_id]
        rules = plans.rules(version.document)
        weights = engine.weighting(rules, days)
        scored.append(
            PlanResults(
                position=version.plan.position,
                version=version,
                period=period,
                rules=rules,
                weighting=weights,
                results=[as_result(found.result, rules, weights) for found in members],
                agents={found.agent.id: found.agent for found in members},
                inputs={},
            )
        )
    return sorted(scored, key=lambda found: found.position.name)


def as_result(
    frozen: ResultRow, rules: engine.Rules, weights: engine.Weighting | None = None
) -> engine.Result:
    """A frozen row as an engine result: the frozen numbers, with each line's band taken from
    the plan version it was scored under (new agents' bands for the new-agent cohort)."""
    new_agent = frozen.cohort.endswith("/new")
    included_weight = sum(line["weight"] for line in frozen.lines if line["included"])
    lines = []
    for line in frozen.lines:
        rule = rules.line(line["metric"])
        use_new = new_agent and rule.new_agent is not None
        band = rule.new_agent if use_new else rule.band
        raw = line["score"]
        if line["note"] == "gated":  # scored 0 by the gate: what the line itself scored
            raw = engine.line_score(line["value"], band, rule.lower_is_better)
        lines.append(
            engine.LineResult(
                metric=line["metric"],
                category=line["category"],
                core=rule.core,
                weight=line["weight"],
                share=100.0 * line["weight"] / included_weight
                if line["included"] and included_weight
                else 0.0,
                value=line["value"],
                sample=0,  # not frozen; the screens do not show it for a closed period
                band=band,
                new_agent_band=use_new,
                raw_score=raw if line["included"] else None,
                score=line["score"],
                included=line["included"],
                note=line["note"],
            )
        )
    return engine.Result(
        key=frozen.agent_id,
        cohort=frozen.cohort,
        lines=tuple(lines),
        weighted=frozen.weighted,
        gate_open=frozen.gate_open,
        gate_failed=tuple(
            line.metric
            for line in lines
            if line.category == "quality" and line.raw_score is not None and line.raw_score == 0
        ),
        bonus_earned=frozen.bonus,
        bonus=frozen.bonus,
        deductions=frozen.deductions,
        offset=frozen.offset,
        final=frozen.final,
        handled=frozen.handled,
        eligible=frozen.eligible,
        tier_multiplier=frozen.tier_multiplier,
        bonus_amount=frozen.bonus_amount,
        values={line.metric: line.value for line in lines},
        rank=frozen.rank,
        weighting=weights,
    )


def versions(row: PeriodRow) -> list[ResultsVersion]:
    """The period's results versions, newest first."""
    return list(
        db.session.scalars(
            select(ResultsVersion)
            .where(ResultsVersion.period_id == row.id)
            .order_by(ResultsVersion.number.desc())
        )
    )
