"""`flask metrics export` (interfaces.md): CSV or JSON, one row per agent, team or queue."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from sqlalchemy import select

from portal.accounts.models import Role, Team, User, UserRole
from portal.extensions import db
from portal.metrics import compute
from portal.metrics.periods import Period


def format_number(value: float | None) -> str:
    """Up to 4 decimals, no trailing zeros; no value is an empty cell."""
    if value is None:
        return ""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def rows_for(period: Period, level: str) -> tuple[tuple[str, ...], list[compute.MetricSet]]:
    if level == "agent":
        agents = db.session.scalars(
            select(User)
            .where(User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.AGENT.value)))
            .order_by(User.agent_no)
        ).all()
        return compute.AGENT_CODES, compute.agent_metrics(period, agents)
    if level == "team":
        teams = db.session.scalars(select(Team).order_by(Team.name)).all()
        return compute.POOLED_CODES, compute.team_metrics(period, teams)
    return compute.POOLED_CODES, compute.queue_metrics(period)


def write_export(out: TextIO, period: Period, level: str, fmt: str) -> None:
    codes, results = rows_for(period, level)
    if fmt == "json":
        json.dump(
            [
                {
                    "period": period.key,
                    "level": level,
                    "key": r.key,
                    "name": r.name,
                    "metrics": {c: _json_number(r.values.get(c)) for c in codes},
                    "samples": {c: r.samples.get(c, 0) for c in codes},
                }
                for r in results
            ],
            out,
            ensure_ascii=False,
            indent=1,
        )
        out.write("\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "level", "key", "name", *codes])
    for r in results:
        writer.writerow(
            [period.key, level, r.key, r.name, *(format_number(r.values.get(c)) for c in codes)]
        )


def _json_number(value: float | None) -> float | int | None:
    if value is None:
        return None
    rounded = round(value, 4)
    return int(rounded) if float(rounded).is_integer() else rounded
