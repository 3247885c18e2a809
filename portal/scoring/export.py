"""`flask results export` (interfaces.md): scores, ranks and tiers as CSV or JSON."""

from __future__ import annotations

import csv
import io
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


def export_row(
    period_key: str, agent, team: str, position: str, result, lines, status: str
) -> dict:
    """One agent's row in the layout of interfaces.md, numbers rounded for reading. `result`
    is a live engine result or a frozen result row (the same fields); `lines` are dicts of
    metric, category, weight, value, score, included and note."""
    return {
        "period": period_key,
        "agent_no": agent.agent_no,
        "name": agent.name,
        "team": team,
        "position": position,
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
        "status": status,
        "lines": [
            {
                "metric": line["metric"],
                "category": line["category"],
                "weight": _score(line["weight"]),
                "value": _value(line["value"]),
                "score": _score(line["score"]),
                "included": line["included"],
                "note": line["note"],
            }
            for line in lines
        ],
    }


def line_dict(line: engine.LineResult) -> dict:
    """A scorecard line as it is frozen and exported (unrounded)."""
    return {
        "metric": line.metric,
        "category": line.category,
        "weight": line.weight,
        "value": line.value,
        "score": line.score,
        "included": line.included,
        "note": line.note,
    }


def result_rows(
    period: Period, plan_results: list[PlanResults], team_ids: set[int] | None = None
) -> list[dict]:
    """The provisional results computed now: one row per scored agent (of `team_ids` only,
    when given)."""
    rows = []
    for found in plan_results:
        for result in found.results:
            agent = found.agents[result.key]
            if team_ids is not None and agent.team_id not in team_ids:
                continue
            team = agent.team.name if agent.team else ""
            lines = [line_dict(line) for line in result.lines]
            rows.append(
                export_row(
                    period.key, agent, team, found.position.name, result, lines, "provisional"
                )
            )
    return rows


def _value(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def write_results(out: TextIO, period: Period, fmt: str, rows: list[dict] | None = None) -> None:
    """The period's results: `rows` when given (a closed period's frozen version), else the
    provisional ones computed now."""
    if rows is None:
        rows = result_rows(period, all_results(period))
    if fmt == "json":
        json.dump(rows, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return
    header, table = tabulate(rows)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in table)


def tabulate(rows: list[dict]) -> tuple[list[str], list[list]]:
    """The CSV layout of interfaces.md: HEADER, then score_<metric> per scorecard line."""
    metrics = [
        c for c in AGENT_CODES if any(line["metric"] == c for r in rows for line in r["lines"])
    ]
    table = []
    for row in rows:
        scores = {line["metric"]: line["score"] for line in row["lines"]}
        table.append([*(row[key] for key in HEADER), *(scores.get(m) for m in metrics)])
    return [*HEADER, *(f"score_{m}" for m in metrics)], table


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def download(rows: list[dict], fmt: str) -> bytes:
    """The results as a file people open in a spreadsheet: text that could run as a formula is
    quoted; numbers stay numbers."""
    header, table = tabulate(rows)
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("results")
        sheet.append(header)
        for row in table:
            sheet.append([_xlsx_cell(v) for v in row])
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([safe_text(_cell(v)) for v in row] for row in table)
    return ("\ufeff" + text.getvalue()).encode("utf-8")  # with a BOM, so Excel reads UTF-8


def _xlsx_cell(value):
    if value is None:
        return None
    if value is True or value is False:
        return int(value)
    if isinstance(value, str):
        return safe_text(value)
    return value


def _cell(value) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, float):
        return format_number(value)
    return str(value)
