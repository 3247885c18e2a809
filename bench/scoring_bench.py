"""Scoring engine benchmark: provisional results for 1,000 agents (goal: under a second)."""

from __future__ import annotations

import random
from datetime import date

from bench.__main__ import median_time
from portal.scoring import engine, plans

AGENTS = 1000


def _inputs(rules: engine.Rules) -> list[engine.AgentInput]:
    rng = random.Random(7)
    ranges = {"aht": (280, 450), "csat": (0.75, 0.97), "qa_score": (65, 98), "fcr": (0.6, 0.9)}
    agents = []
    for n in range(AGENTS):
        measures = {code: engine.Measure(rng.uniform(*span), 40) for code, span in ranges.items()}
        measures["handled"] = engine.Measure(rng.randint(30, 900), 40)
        agents.append(
            engine.AgentInput(
                n,
                "phone/new" if n % 7 == 0 else "phone/regular",
                n % 7 == 0,
                measures,
                bonus=rng.choice([0, 1, 2]),
                deductions=rng.choice([0, 0, 5]),
            )
        )
    return agents


def run() -> list[dict]:
    doc = plans.check(plans.default_document("电话客服"))
    doc["scenarios"] = [
        {
            "name": "peak",
            "from": "2026-11-01",
            "to": "2026-11-11",
            "weights": {"aht": 60, "csat": 20, "qa_score": 10, "fcr": 10},
        }
    ]
    rules = plans.rules(plans.check(doc))
    agents = _inputs(rules)
    days = engine.period_days(date(2026, 11, 1), date(2026, 11, 30))

    def portal():
        weights = engine.weighting(rules, days)
        engine.rank_cohort(engine.score_agent(rules, a, weights) for a in agents)

    def bare():
        """The same arithmetic written flat: line scores and one weighted sum per agent."""
        weights = engine.weighting(rules, days).weights
        finals = []
        for a in agents:
            total = 0.0
            for line in rules.lines:
                s = engine.line_score(
                    a.measures[line.metric].value, line.band, line.lower_is_better
                )
                total += weights[line.metric] * s
            finals.append(total / 100)
        sorted(finals, reverse=True)

    seconds, baseline = median_time(portal, 7), median_time(bare, 7)
    return [
        {
            "name": f"Provisional results for {AGENTS:,} agents (scoring engine)",
            "measure": f"{seconds * 1000:.0f} ms with explanations, gate, tiers and cohort ranks "
            "(goal: under a second)",
            "baseline": f"the bare weighted sums of the same values: {baseline * 1000:.0f} ms",
            "ratio": seconds / baseline,
            "note": "",
        }
    ]
