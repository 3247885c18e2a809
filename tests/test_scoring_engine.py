"""The scoring engine against scoring.md, in tables: line scores, weights, gate, final, ranks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal.scoring.engine import (
    AgentInput,
    Band,
    Line,
    Measure,
    Rules,
    Scenario,
    award_order,
    is_new_agent,
    line_score,
    next_tier,
    period_days,
    rank_cohort,
    rounded,
    score_agent,
    tier_multiplier,
    weighting,
    what_it_takes,
)

NOVEMBER = period_days(date(2026, 11, 1), date(2026, 11, 30))

PHONE = Rules(
    lines=(
        Line("aht", "efficiency", 40, True, Band(420, 360, 300), lower_is_better=True),
        Line("csat", "quality", 30, True, Band(0.80, 0.90, 0.95), min_sample=5),
        Line("qa_score", "quality", 15, False, Band(70, 85, 95)),
        Line("fcr", "quality", 15, False, Band(0.65, 0.75, 0.85)),
    ),
    base_bonus=1000,
)
PEAK = Scenario(
    "peak",
    date(2026, 11, 1),
    date(2026, 11, 11),
    {"aht": 60, "csat": 20, "qa_score": 10, "fcr": 10},
)


def agent(key="张三", cohort="电话客服", new=False, handled=200, **values):
    measures = {"handled": Measure(handled, handled)}
    measures.update({code: Measure(v, 100) for code, v in values.items()})
    return AgentInput(key=key, cohort=cohort, new_agent=new, measures=measures)


ZHANG = dict(aht=330, csat=0.92, qa_score=80, fcr=0.70)
LI = dict(aht=300, csat=0.78, qa_score=90, fcr=0.80)


@pytest.mark.parametrize(
    ("value", "band", "lower", "score"),
    [
        # higher is better, f=70 t=85 x=95
        (69.99, Band(70, 85, 95), False, 0),
        (70, Band(70, 85, 95), False, 60),
        (80, Band(70, 85, 95), False, 86.67),
        (85, Band(70, 85, 95), False, 100),
        (90, Band(70, 85, 95), False, 110),
        (95, Band(70, 85, 95), False, 120),
        (200, Band(70, 85, 95), False, 120),
        (90, Band(70, 85), False, 100),  # no stretch: capped at 100
        # lower is better, f=420 t=360 x=300
        (420.01, Band(420, 360, 300), True, 0),
        (420, Band(420, 360, 300), True, 60),
        (390, Band(420, 360, 300), True, 80),
        (360, Band(420, 360, 300), True, 100),
        (330, Band(420, 360, 300), True, 110),
        (300, Band(420, 360, 300), True, 120),
        (10, Band(420, 360, 300), True, 120),
        (200, Band(420, 360), True, 100),
    ],
)
def test_line_score_follows_section_2(value, band, lower, score):
    assert rounded(line_score(value, band, lower)) == score


def test_worked_example_of_section_5():
    weights = weighting(PHONE, NOVEMBER)
    zhang = score_agent(PHONE, agent(**ZHANG), weights)
    assert [rounded(line.score) for line in zhang.lines] == [110, 108, 86.67, 80]
    assert rounded(zhang.weighted) == 101.40 and zhang.gate_open
    li = score_agent(PHONE, agent("李四", **LI), weights)
    assert [rounded(line.raw_score) for line in li.lines] == [120, 0, 110, 110]
    assert [rounded(line.score) for line in li.lines] == [0, 0, 110, 110]
    assert li.lines[0].note == "gated" and li.gate_failed == ("csat",)
    assert rounded(li.weighted) == 33.00 and not li.gate_open
    assert (zhang.tier_multiplier, zhang.bonus_amount) == (1.5, Decimal("1500.00"))
    assert (li.tier_multiplier, li.bonus_amount) == (0, Decimal("0.00"))


def test_peak_days_change_the_weights_and_the_score():
    rules = Rules(lines=PHONE.lines, scenarios=(PEAK,))
    weights = weighting(rules, NOVEMBER)
    assert {m: rounded(w) for m, w in weights.weights.items()} == {
        "aht": 47.33,
        "csat": 26.33,
        "qa_score": 13.17,
        "fcr": 13.17,
    }
    assert weights.days == {"peak": 11, "normal": 19}
    assert rounded(score_agent(rules, agent(**ZHANG), weights).weighted) == 102.45


def test_a_scenario_naming_some_lines_leaves_the_others_at_their_normal_weight():
    shift = Scenario("custom", date(2026, 11, 1), date(2026, 11, 30), {"aht": 30, "csat": 40})
    weights = weighting(Rules(lines=PHONE.lines, scenarios=(shift,)), NOVEMBER)
    assert weights.weights == {"aht": 30, "csat": 40, "qa_score": 15, "fcr": 15}


def test_a_missing_metric_and_a_small_sample_are_left_out_and_the_rest_rescaled():
    measures = agent(**ZHANG).measures | {"fcr": Measure(None, 0), "csat": Measure(0.92, 4)}
    result = score_agent(
        PHONE, AgentInput("王五", "电话客服", False, measures), weighting(PHONE, NOVEMBER)
    )
    notes = {line.metric: line.note for line in result.lines}
    assert notes == {
        "aht": None,
        "csat": "insufficient_sample",
        "qa_score": None,
        "fcr": "no_value",
    }
    # W over aht (40) and qa_score (15) only: (40·110 + 15·86.67) / 55
    assert rounded(result.weighted) == rounded((40 * 110 + 15 * (60 + 40 * 10 / 15)) / 55)
    assert [rounded(line.share) for line in result.lines] == [72.73, 0, 27.27, 0]


def test_no_scored_line_means_no_score_and_no_rank():
    result = score_agent(PHONE, agent(), weighting(PHONE, NOVEMBER))
    assert result.weighted is None and result.final is None and not result.eligible
    assert result.tier_multiplier is None


def test_new_agents_are_scored_against_their_own_targets():
    lines = (
        Line(
            "aht",
            "efficiency",
            100,
            True,
            Band(420, 360, 300),
            lower_is_better=True,
            new_agent=Band(480, 420, 360),
        ),
    )
    rules = Rules(lines=lines)
    weights = weighting(rules, NOVEMBER)
    regular = score_agent(rules, agent(aht=420), weights)
    new = score_agent(rules, agent(new=True, aht=420), weights)
    assert (rounded(regular.final), rounded(new.final)) == (60, 100)
    assert new.lines[0].new_agent_band and new.lines[0].band == Band(480, 420, 360)


@pytest.mark.parametrize(
    ("hired", "new"),
    [
        (date(2026, 9, 2), True),
        (date(2026, 9, 1), False),
        (None, False),
        (date(2026, 11, 30), True),
    ],
)
def test_new_agent_means_hired_within_the_days_before_the_last_day(hired, new):
    assert is_new_agent(hired, date(2026, 11, 30), 90) is new


def test_bonus_is_capped_deductions_subtract_and_the_offset_never_exceeds_them():
    weights = weighting(PHONE, NOVEMBER)
    base = agent(**ZHANG)
    capped = score_agent(PHONE, AgentInput(**{**base.__dict__, "bonus": 8}), weights)
    assert capped.bonus == 5 and rounded(capped.final) == 106.40
    deducted = score_agent(
        PHONE, AgentInput(**{**base.__dict__, "deductions": 10, "offset": 15}), weights
    )
    assert deducted.offset == 10 and rounded(deducted.final) == 101.40
    floor = score_agent(
        PHONE, AgentInput(**{**agent("李四", **LI).__dict__, "deductions": 40}), weights
    )
    assert floor.final == 0


@pytest.mark.parametrize(
    ("final", "multiplier"),
    [
        (59.99, 0),
        (60, 0.6),
        (79.994, 0.6),
        (79.995, 1.0),
        (100, 1.5),
        (109.99, 1.5),
        (110, 2.0),
        (0, 0),
    ],
)
def test_tiers_take_the_shown_final_with_inclusive_lower_bounds(final, multiplier):
    assert tier_multiplier(final, PHONE.tiers) == multiplier


def test_ranks_are_competition_ranks_within_each_cohort_and_skip_the_ineligible():
    weights = weighting(PHONE, NOVEMBER)
    people = [
        agent("a", **ZHANG),
        agent("b", **ZHANG),
        agent("c", **{**ZHANG, "aht": 360}),
        agent("d", **{**ZHANG, "aht": 300}),
        agent("e", handled=10, **{**ZHANG, "aht": 300}),  # too few contacts: shown, not ranked
        agent("f", cohort="电话客服·新人", new=True, **LI),
    ]
    ranked = {r.key: r.rank for r in rank_cohort(score_agent(PHONE, p, weights) for p in people)}
    assert ranked == {"d": 1, "a": 2, "b": 2, "c": 4, "e": None, "f": 1}


def test_award_ties_are_broken_by_qa_score_then_fcr_then_handled():
    weights = weighting(PHONE, NOVEMBER)
    tied = [
        score_agent(PHONE, agent("low_qa", **ZHANG), weights),
        score_agent(PHONE, agent("more_handled", handled=300, **ZHANG), weights),
    ]
    assert rounded(tied[0].final) == rounded(tied[1].final)
    assert [r.key for r in sorted(tied, key=award_order)] == ["more_handled", "low_qa"]
    values = {**ZHANG, "qa_score": 81}
    better_qa = score_agent(PHONE, agent("better_qa", **values), weights)
    assert better_qa.values["qa_score"] == 81


def test_what_it_takes_finds_the_smallest_single_change_for_a_goal():
    weights = weighting(PHONE, NOVEMBER)
    person = agent(**ZHANG)  # W 101.40: tier 1.5, the next is 2.0 from 110
    assert next_tier(PHONE, score_agent(PHONE, person, weights).final).lower == 110
    # No single line lifts 101.40 to 110 (fcr at its best gives 101.40 + 15·40/100 = 107.40).
    assert what_it_takes(PHONE, person, weights, 110) == []
    # To 105, W needs +3.6: csat to 0.95, aht to 303 s, qa_score to 90.33 or fcr to 0.77.
    changes = what_it_takes(PHONE, person, weights, 105)
    assert [c.metric for c in changes] == ["csat", "aht", "qa_score", "fcr"]
    needed = {c.metric: c.needed for c in changes}
    assert needed == pytest.approx(
        {"csat": 0.95, "aht": 303, "qa_score": 90.33, "fcr": 0.77}, rel=1e-3
    )
    for change in changes:
        moved = person.measures | {change.metric: Measure(change.needed, 100)}
        assert score_agent(PHONE, AgentInput("x", "c", False, moved), weights).final_shown >= 105


def test_what_it_takes_can_open_the_quality_gate():
    weights = weighting(PHONE, NOVEMBER)
    li = agent("李四", **LI)  # W 33 with the gate closed by csat 0.78
    changes = {c.metric: c for c in what_it_takes(PHONE, li, weights, 60)}
    assert changes["csat"].needed == pytest.approx(0.80, abs=1e-6)  # the threshold opens it
