"""`flask results export` (interfaces.md): scores, ranks and tiers as CSV or JSON."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from portal.metrics.compute import AGENT_CODES
from portal.metrics.export import format_number
from portal.metrics.periods import Period
from portal.scoring import engine
from portal.scoring.services import PlanResults, all_results

HEADER = (
    "period",
    "agent_no",
    "name",
    "team",
    "position",
    "cohort",
    "weighted",
    "bonus",
    "deductions",
    "offset",
    "final",
    "gate_open",
    "eligible",
    "rank",
    "tier_multiplier",
    "status",
)


def _score(value: float | None) -> float | None:
    return engine.rounded(value)


def result_rows(period: Period, plan_results: list[PlanResults]) -> list[dict]:
    """One dict per scored agent: the keys of interfaces.md, numbers rounded for reading."""
    rows = []
    for found in plan_results:
        for result in found.results:
            agent = found.agents[result.key]
            rows.append(
                {
                    "period": period.key,
                    "agent_no": agent.agent_no,
                    "name": agent.name,
                    "team": agent.team.name if agent.team else "",
                    "position": found.position.name,
                    "cohort": result.cohort,
                    "weighted": _score(result.weighted),
                    "bonus": _score(result.bonus),
                    "deductions": _score(result.deductions),
                    "offset": _score(result.offset),
                    "final": _score(result.final),
                    "gate_open": result.gate_open,
                    "eligible": result.eligible,
                    "rank": result.rank,
                    "tier_multiplier": result.tier_multiplier,
                    "status": "provisional",
                    "lines": [
                        {
                            "metric": line.metric,
                            "category": line.category,
                            "weight": _score(line.weight),
                            "value": _value(line.value),
                            "score": _score(line.score),
                            "included": line.included,
                            "note": line.note,
                        }
                        for line in result.lines
                    ],
                }
            )
    return rows


def _value(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def write_results(out: TextIO, period: Period, fmt: str) -> None:
    rows = result_rows(period, all_results(period))
    if fmt == "json":
        json.dump(rows, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return
    metrics = [
        c for c in AGENT_CODES if any(line["metric"] == c for r in rows for line in r["lines"])
    ]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*HEADER, *(f"score_{m}" for m in metrics)])
    for row in rows:
        scores = {line["metric"]: line["score"] for line in row["lines"]}
        writer.writerow(
            [
                *(_cell(row[key]) for key in HEADER),
                *(_cell(scores.get(m)) for m in metrics),
            ]
        )


def _cell(value) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, float):
        return format_number(value)
    return str(value)
