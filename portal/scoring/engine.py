"""The scoring rules of scoring.md §2–6, as pure functions: dataclasses in, dataclasses out.

No database and no Flask here. Every result carries what explains it (the weights in force, the
lines left out and why, the gate, the caps), so the explanation page shows the same numbers the
score was computed from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

CATEGORIES = ("quality", "efficiency", "experience", "development")
MAX_LINE_SCORE = 120.0
BONUS_CAP = 5.0
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Band:
    """Threshold f, target t and optional stretch x of one line (scoring.md §2)."""

    threshold: float
    target: float
    stretch: float | None = None


@dataclass(frozen=True)
class Line:
    metric: str
    category: str
    weight: float  # in the normal scenario, percent
    core: bool
    band: Band
    lower_is_better: bool = False
    new_agent: Band | None = None  # 新人阶段目标
    min_sample: int = 0


@dataclass(frozen=True)
class Scenario:
    """A date range with its own weights for some lines (the others keep their normal weight)."""

    name: str
    first: date
    last: date
    weights: dict[str, float]

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class Tier:
    lower: float  # inclusive
    multiplier: float


DEFAULT_TIERS = (
    Tier(0, 0.0),
    Tier(60, 0.6),
    Tier(80, 1.0),
    Tier(100, 1.5),
    Tier(110, 2.0),
)


@dataclass(frozen=True)
class Rules:
    """What the engine needs of an assessment plan."""

    lines: tuple[Line, ...]
    scenarios: tuple[Scenario, ...] = ()
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    min_volume: int = 50
    base_bonus: Decimal = Decimal(0)  # money: the position's bonus at multiplier 1
    service_star_count: int = 3
    award_min_final: float = 90.0

    def line(self, metric: str) -> Line:
        for line in self.lines:
            if line.metric == metric:
                return line
        raise KeyError(metric)


@dataclass(frozen=True)
class Measure:
    value: float | None
    sample: int = 0


@dataclass(frozen=True)
class AgentInput:
    """One agent's period: metric values with their samples, and the adjustments of §4."""

    key: object  # the caller's id for this agent
    cohort: str
    new_agent: bool
    measures: dict[str, Measure]
    bonus: float = 0.0  # training bonuses earned, before the cap
    deductions: float = 0.0  # red-line points, positive
    offset: float = 0.0  # improvement points redeemed, in score points


@dataclass(frozen=True)
class Weighting:
    """The weights in force over a period: per line, and which scenario ran how many days."""

    weights: dict[str, float]
    days: dict[str, int]  # scenario name → days in force ("normal" included)


@dataclass(frozen=True)
class LineResult:
    metric: str
    category: str
    core: bool
    weight: float  # effective weight over the period (scenario days averaged)
    share: float  # the weight after rescaling over the lines that are in, percent
    value: float | None
    sample: int
    band: Band
    new_agent_band: bool
    raw_score: float | None  # by §2, before the gate
    score: float | None  # what counts: 0 when gated; None when the line is out
    included: bool
    note: str | None  # no_value | insufficient_sample | gated | None


@dataclass(frozen=True)
class Result:
    key: object
    cohort: str
    lines: tuple[LineResult, ...]
    weighted: float | None  # W; None when no line is in
    gate_open: bool
    gate_failed: tuple[str, ...]  # the quality lines that closed the gate
    bonus_earned: float
    bonus: float  # after the cap
    deductions: float
    offset: float  # after its cap (never more than the deductions)
    final: float | None
    handled: int
    eligible: bool
    tier_multiplier: float | None
    bonus_amount: Decimal | None  # base bonus × multiplier, to the cent
    values: dict[str, float | None] = field(default_factory=dict)  # every measure, for ties
    rank: int | None = None
    weighting: Weighting | None = field(default=None, compare=False)

    @property
    def final_shown(self) -> float | None:
        return rounded(self.final)


def rounded(value: float | None, places: int = 2) -> float | None:
    """Half-up rounding of what a person reads (ranks use it too): 101.405 → 101.41."""
    if value is None:
        return None
    step = Decimal(1).scaleb(-places)
    return float(Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP))


def line_score(value: float, band: Band, lower_is_better: bool = False) -> float:
    """§2: 0 below the threshold, 60–100 up to the target, 100–120 up to the stretch."""
    f, t, x = band.threshold, band.target, band.stretch
    if lower_is_better:  # the mirror image: distances measured downwards
        value, f, t = -value, -f, -t
        x = -x if x is not None else None
    if value < f:
        return 0.0
    if value < t:
        return 60.0 + 40.0 * (value - f) / (t - f)
    if x is None or x == t:
        return 100.0
    if value < x:
        return 100.0 + 20.0 * (value - t) / (x - t)
    return MAX_LINE_SCORE


def score_rule(value: float, band: Band, lower_is_better: bool = False) -> str:
    """Which case of §2 `line_score` applied, for the explanation: below_threshold,
    to_target, to_stretch, at_target (no stretch set) or at_stretch."""
    f, t, x = band.threshold, band.target, band.stretch
    if lower_is_better:
        value, f, t = -value, -f, -t
        x = -x if x is not None else None
    if value < f:
        return "below_threshold"
    if value < t:
        return "to_target"
    if x is None or x == t:
        return "at_target"
    return "to_stretch" if value < x else "at_stretch"


def period_days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def weighting(rules: Rules, days: Sequence[date]) -> Weighting:
    """§3 dynamic weights: each line's weight averaged over the period's days, each day taking
    the weights of the scenario in force (the normal weights outside every scenario)."""
    totals = {line.metric: 0.0 for line in rules.lines}
    counts: dict[str, int] = {}
    for day in days:
        scenario = next((s for s in rules.scenarios if s.covers(day)), None)
        name = scenario.name if scenario else "normal"
        counts[name] = counts.get(name, 0) + 1
        for line in rules.lines:
            weight = line.weight
            if scenario is not None:
                weight = scenario.weights.get(line.metric, weight)
            totals[line.metric] += weight
    n = len(days) or 1
    return Weighting({m: total / n for m, total in totals.items()}, counts)


def is_new_agent(hire_date: date | None, last_day: date, new_agent_days: int) -> bool:
    """Hired within `new_agent_days` before the period's last day (scoring.md §1)."""
    return hire_date is not None and (last_day - hire_date).days < new_agent_days


def tier_multiplier(final: float | None, tiers: Iterable[Tier]) -> float | None:
    """§6: the multiplier of the highest tier whose lower bound the (shown) final reaches."""
    if final is None:
        return None
    shown = rounded(final)
    found = None
    for tier in sorted(tiers, key=lambda t: t.lower):
        if shown >= tier.lower:
            found = tier.multiplier
    return float(found) if found is not None else 0.0


def score_agent(rules: Rules, agent: AgentInput, weights: Weighting) -> Result:
    """§2–4 for one agent (ranks are set over the cohort by `rank_cohort`)."""
    first_pass = []
    for line in rules.lines:
        measure = agent.measures.get(line.metric, Measure(None, 0))
        use_new = agent.new_agent and line.new_agent is not None
        band = line.new_agent if use_new else line.band
        note = None
        raw = None
        if measure.value is None:
            note = "no_value"
        elif measure.sample < line.min_sample:
            note = "insufficient_sample"
        else:
            raw = line_score(measure.value, band, line.lower_is_better)
        first_pass.append((line, measure, band, use_new, raw, note))

    gate_failed = tuple(
        line.metric
        for line, _m, _b, _n, raw, _note in first_pass
        if line.category == "quality" and raw is not None and raw == 0.0
    )
    included_weight = sum(
        weights.weights[line.metric] for line, *_rest, raw, _note in first_pass if raw is not None
    )
    results = []
    for line, measure, band, use_new, raw, note in first_pass:
        weight = weights.weights[line.metric]
        score = raw
        if raw is not None and gate_failed and line.category == "efficiency":
            score, note = 0.0, "gated"
        included = raw is not None
        results.append(
            LineResult(
                metric=line.metric,
                category=line.category,
                core=line.core,
                weight=weight,
                share=100.0 * weight / included_weight if included and included_weight else 0.0,
                value=measure.value,
                sample=measure.sample,
                band=band,
                new_agent_band=use_new,
                raw_score=raw,
                score=score,
                included=included,
                note=note,
            )
        )

    weighted = None
    if included_weight > 0:
        weighted = sum(r.weight * r.score for r in results if r.included) / included_weight
    bonus = min(max(agent.bonus, 0.0), BONUS_CAP)
    deductions = max(agent.deductions, 0.0)
    offset = min(max(agent.offset, 0.0), deductions)
    final = None if weighted is None else max(0.0, weighted + bonus - deductions + offset)
    handled_measure = agent.measures.get("handled")
    handled = int(handled_measure.value or 0) if handled_measure else 0
    multiplier = tier_multiplier(final, rules.tiers)
    return Result(
        key=agent.key,
        cohort=agent.cohort,
        lines=tuple(results),
        weighted=weighted,
        gate_open=not gate_failed,
        gate_failed=gate_failed,
        bonus_earned=agent.bonus,
        bonus=bonus,
        deductions=deductions,
        offset=offset,
        final=final,
        handled=handled,
        eligible=final is not None and handled >= rules.min_volume,
        tier_multiplier=multiplier,
        bonus_amount=None
        if multiplier is None
        else (Decimal(rules.base_bonus) * Decimal(repr(multiplier))).quantize(CENT),
        values={code: m.value for code, m in agent.measures.items()},
        weighting=weights,
    )


def rank_cohort(results: Iterable[Result]) -> list[Result]:
    """§6 standard competition ranking (1, 2, 2, 4) on the shown final, eligible agents only,
    within each cohort. Returns every result, ranked ones first, best first."""
    results = list(results)
    ranked: list[Result] = []
    for cohort in sorted({r.cohort for r in results}):
        members = [r for r in results if r.cohort == cohort]
        eligible = sorted(
            ((r.final_shown, r) for r in members if r.eligible), key=lambda p: p[0], reverse=True
        )
        rank, previous = 0, None
        for position, (shown, r) in enumerate(eligible, start=1):
            if shown != previous:  # a lower final: its rank is its position (1, 2, 2, 4)
                rank, previous = position, shown
            ranked.append(replace(r, rank=rank))
        ranked.extend(replace(r, rank=None) for r in members if not r.eligible)
    return ranked


def award_order(result: Result) -> tuple:
    """Sort key for awards: final, then ties broken by qa_score, fcr, handled (higher first)."""

    def value(metric: str) -> float:
        found = result.values.get(metric)
        return float("-inf") if found is None else found

    return (
        -(result.final_shown or 0.0),
        -value("qa_score"),
        -value("fcr"),
        -float(result.handled),
    )


@dataclass(frozen=True)
class Change:
    """One line's value that would, on its own, lift the shown final to a goal."""

    metric: str
    current: float
    needed: float
    effort: float  # the change as a share of the line's threshold-to-target distance


def next_tier(rules: Rules, final: float | None) -> Tier | None:
    shown = rounded(final) if final is not None else None
    above = [t for t in rules.tiers if shown is None or t.lower > shown]
    return min(above, key=lambda t: t.lower) if above else None


def what_it_takes(rules: Rules, agent: AgentInput, weights: Weighting, goal: float) -> list[Change]:
    """For each scored line, the smallest change of its value alone that reaches `goal`
    (a shown final), easiest first; lines that cannot reach it alone are left out."""
    changes = []
    for line in rules.lines:
        measure = agent.measures.get(line.metric)
        if measure is None or measure.value is None or measure.sample < line.min_sample:
            continue
        band = line.new_agent if agent.new_agent and line.new_agent else line.band
        best = band.stretch if band.stretch is not None else band.target

        def final_with(value: float, line=line, measure=measure) -> float:
            measures = {**agent.measures, line.metric: Measure(value, measure.sample)}
            result = score_agent(rules, replace(agent, measures=measures), weights)
            return result.final_shown or 0.0

        improving = best < measure.value if line.lower_is_better else best > measure.value
        if not improving or final_with(measure.value) >= goal or final_with(best) < goal:
            continue
        near, far = measure.value, best  # final_with(near) < goal <= final_with(far)
        for _ in range(60):
            middle = (near + far) / 2
            if final_with(middle) >= goal:
                far = middle
            else:
                near = middle
        span = abs(band.target - band.threshold) or 1.0
        changes.append(Change(line.metric, measure.value, far, abs(far - measure.value) / span))
    return sorted(changes, key=lambda c: c.effort)
