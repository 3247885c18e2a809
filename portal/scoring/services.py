"""Plans and results: saving plan versions, and scoring a period's agents with the engine."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.accounts.models import Position, Role, User, UserRole
from portal.accounts.services import can_view_user
from portal.audit.services import record
from portal.extensions import db
from portal.metrics import compute
from portal.metrics.models import Interaction, QaEvaluation
from portal.metrics.periods import Period
from portal.scoring import engine, plans
from portal.scoring.models import Plan, PlanVersion

DEFAULT_NOTE = _l("Created from the default plan")
RED_LINE_POINTS = 5.0  # scoring.md §4: each red-line violation deducts 5 points by default


# --- plans ----------------------------------------------------------------------------------


def plan_of(position: Position) -> Plan | None:
    return db.session.scalar(select(Plan).where(Plan.position_id == position.id))


def save_plan(actor: User | None, document: dict, note: str = "") -> PlanVersion:
    """Check `document` and make it its position's plan from now on, as a new version (the
    position is created when missing). Saving what is already in force changes nothing."""
    doc = plans.check(document)
    position = db.session.scalar(select(Position).where(Position.name == doc["position"]))
    if position is None:
        position = Position(name=doc["position"])
        db.session.add(position)
        db.session.flush()
        record(actor, "position.create", "position", position.id, summary=position.name)
    plan = plan_of(position)
    if plan is None:
        plan = Plan(position_id=position.id, period_kind=doc["period_kind"])
        db.session.add(plan)
        db.session.flush()
    current = plan.current
    if current is not None and current.document == doc:
        return current
    version = PlanVersion(
        plan_id=plan.id,
        number=(current.number if current else 0) + 1,
        document=doc,
        created_by_id=actor.id if actor else None,
        note=note[:500],
    )
    plan.period_kind = doc["period_kind"]
    db.session.add(version)
    db.session.flush()
    record(
        actor,
        "plan.save",
        "plan",
        plan.id,
        summary=f"{position.name} v{version.number}",
        before=plans.flatten(current.document) if current else None,
        after=plans.flatten(doc),
    )
    return version


def ensure_default_plan(actor: User | None, position: Position) -> PlanVersion | None:
    """Give a position of scoring.md's table its seeded plan, if it has none yet."""
    if position.name not in plans.DEFAULT_PLANS or plan_of(position) is not None:
        return None
    return save_plan(actor, plans.default_document(position.name), note=str(DEFAULT_NOTE))


# --- results --------------------------------------------------------------------------------


@dataclass
class PlanResults:
    """One plan's scored agents for one period, ranked within their cohorts."""

    position: Position
    version: PlanVersion
    period: Period
    rules: engine.Rules
    weighting: engine.Weighting
    results: list[engine.Result]
    agents: dict[int, User]  # result.key → the agent
    inputs: dict[int, engine.AgentInput]

    def result_of(self, user_id: int) -> engine.Result | None:
        return next((r for r in self.results if r.key == user_id), None)


def cohort_of(position: Position, new_agent: bool) -> str:
    return f"{position.name}/{'new' if new_agent else 'regular'}"


def position_agents(position: Position) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.position_id == position.id,
                User.active.is_(True),
                User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.AGENT.value)),
            )
            .order_by(User.agent_no)
        )
    )


def red_line_counts(period: Period, agent_ids: list[int]) -> dict[int, int]:
    """Red-line QA evaluations of each agent's interactions offered in the period."""
    rows = db.session.execute(
        select(Interaction.agent_id, func.count(QaEvaluation.id))
        .join(Interaction, Interaction.id == QaEvaluation.interaction_id)
        .where(
            QaEvaluation.red_line.is_(True),
            QaEvaluation.status == "released",
            Interaction.offered_day.between(period.first_day, period.last_day),
            Interaction.agent_id.in_(agent_ids),
        )
        .group_by(Interaction.agent_id)
    )
    return dict(rows.all())


def agent_inputs(
    position: Position, period: Period, agents: list[User], new_agent_days: int
) -> dict[int, engine.AgentInput]:
    """What the engine needs of each agent: measures, cohort and adjustments."""
    metrics = {m.key: m for m in compute.agent_metrics(period, agents)}
    red_lines = red_line_counts(period, [a.id for a in agents])
    inputs = {}
    for agent in agents:
        found = metrics[agent.agent_no]
        new = engine.is_new_agent(agent.hire_date, period.last_day, new_agent_days)
        inputs[agent.id] = engine.AgentInput(
            key=agent.id,
            cohort=cohort_of(position, new),
            new_agent=new,
            measures={
                code: engine.Measure(found.values.get(code), found.samples.get(code, 0))
                for code in compute.AGENT_CODES
            },
            # Courses and improvement points arrive with the training library and the
            # points ledger; until then nobody has a bonus or an offset to add.
            bonus=0.0,
            deductions=RED_LINE_POINTS * red_lines.get(agent.id, 0),
            offset=0.0,
        )
    return inputs


def plan_results(position: Position, period: Period) -> PlanResults | None:
    """Provisional results of a position's agents for `period` with the plan in force."""
    plan = plan_of(position)
    if plan is None:
        return None
    version = plan.current
    rules = plans.rules(version.document)
    agents = position_agents(position)
    inputs = agent_inputs(position, period, agents, current_app.config["NEW_AGENT_DAYS"])
    weights = engine.weighting(rules, engine.period_days(period.first_day, period.last_day))
    scored = [engine.score_agent(rules, inputs[a.id], weights) for a in agents]
    return PlanResults(
        position=position,
        version=version,
        period=period,
        rules=rules,
        weighting=weights,
        results=engine.rank_cohort(scored),
        agents={a.id: a for a in agents},
        inputs=inputs,
    )


def all_results(period: Period) -> list[PlanResults]:
    """Every plan of `period`'s kind, scored."""
    found = []
    for plan in db.session.scalars(
        select(Plan).where(Plan.period_kind == period.kind).order_by(Plan.id)
    ):
        results = plan_results(plan.position, period)
        if results is not None:
            found.append(results)
    return found


def can_view_score(viewer: User, agent: User) -> bool:
    """An agent sees their own score; a lead their team's members; admins everyone."""
    return can_view_user(viewer, agent)


@dataclass
class Standing:
    """Where one agent stands in their cohort, told humanely: the top of the cohort and the
    agent's own neighbourhood, never the bottom of the list."""

    rank: int | None
    ranked: int  # eligible agents in the cohort
    top: list[float]  # the best shown finals
    around: list[tuple[int, float, bool]]  # (rank, shown final, is this agent) near the agent


def standing(found: PlanResults, result: engine.Result, size: int = 2) -> Standing:
    cohort = sorted(
        (r for r in found.results if r.cohort == result.cohort and r.rank is not None),
        key=lambda r: (r.rank, r.key != result.key),
    )
    top = [r.final_shown for r in cohort[:3]]
    around = []
    if result.rank is not None:
        at = next(i for i, r in enumerate(cohort) if r.key == result.key)
        around = [
            (r.rank, r.final_shown, r.key == result.key)
            for r in cohort[max(0, at - size) : at + size + 1]
        ]
    return Standing(result.rank, len(cohort), top, around)


def simulate(
    found: PlanResults, agent_id: int, values: dict[str, float | None]
) -> tuple[engine.Result, int | None]:
    """The agent's result with some line values replaced (nothing is saved), and the rank it
    would have among the cohort's other results as they are."""
    agent_input = found.inputs[agent_id]
    measures = dict(agent_input.measures)
    for metric, value in values.items():
        sample = measures.get(metric, engine.Measure(None, 0)).sample
        line = found.rules.line(metric)
        measures[metric] = engine.Measure(value, max(sample, line.min_sample))
    changed = replace(agent_input, measures=measures)
    result = engine.score_agent(found.rules, changed, found.weighting)
    if not result.eligible:
        return result, None
    others = [
        r.final_shown
        for r in found.results
        if r.cohort == result.cohort and r.rank is not None and r.key != agent_id
    ]
    return result, 1 + sum(1 for f in others if f > result.final_shown)


def weakest_lines(rules: engine.Rules, rows, limit: int = 2) -> list[str]:
    """A team's short boards (短板): the lines with the lowest mean score over the members
    scored on them, when that mean is below the target's 100."""
    means = {}
    for line in rules.lines:
        scores = [
            r.score
            for _agent, result in rows
            for r in result.lines
            if r.metric == line.metric and r.score is not None
        ]
        if scores:
            means[line.metric] = sum(scores) / len(scores)
    low = sorted((mean, metric) for metric, mean in means.items() if mean < 100)
    return [metric for _mean, metric in low[:limit]]


def today() -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(current_app.config["PORTAL_TIMEZONE"])).date()
