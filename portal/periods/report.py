"""The period report for admins: a closed period's frozen results summed up (agents, eligible,
mean and median final, tiers, bonus total), drawn (a histogram of finals, team means) and
listed, with the period's approved and published awards."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from portal.accounts.models import User
from portal.awards.models import Award, AwardType
from portal.extensions import db
from portal.periods.models import PeriodRow, ResultsVersion
from portal.periods.results import Frozen, version_rows
from portal.scoring.engine import rounded

REPORTED_AWARDS = ("approved", "published")
BIN = 10  # points per histogram bar
TOP_BIN = 110  # the last bar takes every final from here up (stretch scores reach 120, +5 bonus)


@dataclass(frozen=True)
class Summary:
    agents: int  # scored agents in the version
    eligible: int  # of them, handled enough to be ranked
    mean: float | None  # over the eligible agents' finals
    median: float | None
    tiers: list[tuple[float, int]]  # tier multiplier → agents with a final, highest first
    bonus_total: Decimal


@dataclass(frozen=True)
class Bar:
    """One bar with where it and its two texts (category label, value) are drawn."""

    label: str
    text: str
    x: float
    y: float
    width: float
    height: float
    label_x: float
    label_y: float
    text_x: float
    text_y: float


@dataclass(frozen=True)
class Chart:
    """A bar chart laid out for SVG (templates/periods/_bar_chart.html draws it), the same in
    a page and in a PDF."""

    label: str
    width: int
    height: int
    horizontal: bool
    bars: tuple[Bar, ...]
    axis: tuple[float, float, float, float]  # the baseline: x1, y1, x2, y2


@dataclass(frozen=True)
class Report:
    row: PeriodRow
    version: ResultsVersion
    rows: list[Frozen]
    summary: Summary
    histogram: Chart | None
    team_means: Chart | None
    awards: list[Award]


def period_report(row: PeriodRow, number: int, labels: dict[str, str]) -> Report | None:
    """The report of results version `number` of a closed period; None when there is no such
    version. `labels` names the two charts (in the reader's language)."""
    version = db.session.scalar(
        select(ResultsVersion).where(
            ResultsVersion.period_id == row.id, ResultsVersion.number == number
        )
    )
    if row.closed_at is None or version is None:
        return None
    rows = version_rows(row, number)
    return Report(
        row=row,
        version=version,
        rows=rows,
        summary=summarize(rows),
        histogram=histogram(rows, labels["histogram"]),
        team_means=team_means(rows, labels["teams"]),
        awards=period_awards(row),
    )


def _eligible_finals(rows: list[Frozen]) -> list[float]:
    return [
        rounded(f.result.final) for f in rows if f.result.eligible and f.result.final is not None
    ]


def summarize(rows: list[Frozen]) -> Summary:
    finals = _eligible_finals(rows)
    tiers = Counter(f.result.tier_multiplier for f in rows if f.result.tier_multiplier is not None)
    return Summary(
        agents=len(rows),
        eligible=sum(1 for f in rows if f.result.eligible),
        mean=rounded(statistics.fmean(finals)) if finals else None,
        median=rounded(statistics.median(finals)) if finals else None,
        tiers=sorted(tiers.items(), reverse=True),
        bonus_total=sum(
            (f.result.bonus_amount for f in rows if f.result.bonus_amount is not None),
            Decimal("0.00"),
        ),
    )


def histogram(rows: list[Frozen], label: str, width: int = 640, height: int = 220) -> Chart | None:
    """Eligible agents per 10 points of final (the last bar: 110 and above)."""
    finals = _eligible_finals(rows)
    if not finals:
        return None
    edges = list(range(0, TOP_BIN + 1, BIN))
    counts = Counter(min(int(final // BIN) * BIN, TOP_BIN) for final in finals)
    left, right, top, bottom = 10, 10, 18, 24
    slot = (width - left - right) / len(edges)
    plot = height - top - bottom
    most = max(counts.values())
    bars = []
    for index, lower in enumerate(edges):
        count = counts.get(lower, 0)
        bar_height = plot * count / most
        x = left + index * slot + slot * 0.1
        y = top + plot - bar_height
        bars.append(
            Bar(
                label=f"{lower}+" if lower == TOP_BIN else f"{lower}–{lower + BIN}",
                text=str(count) if count else "",
                x=round(x, 1),
                y=round(y, 1),
                width=round(slot * 0.8, 1),
                height=round(bar_height, 1),
                label_x=round(x + slot * 0.4, 1),
                label_y=height - 8,
                text_x=round(x + slot * 0.4, 1),
                text_y=round(y - 4, 1),
            )
        )
    base = top + plot
    return Chart(label, width, height, False, tuple(bars), (left, base, width - right, base))


def team_means(rows: list[Frozen], label: str, width: int = 640) -> Chart | None:
    """The mean final of each team's eligible members (the team when the period closed),
    best first."""
    by_team: dict[str, list[float]] = {}
    for found in rows:
        if found.team is None or not found.result.eligible or found.result.final is None:
            continue
        by_team.setdefault(found.team.name, []).append(rounded(found.result.final))
    if not by_team:
        return None
    means = sorted(
        ((rounded(statistics.fmean(finals)), name) for name, finals in by_team.items()),
        key=lambda pair: (-pair[0], pair[1]),
    )
    left, right, row_height, pad = 140, 60, 24, 6
    height = pad * 2 + row_height * len(means)
    scale = max(120.0, means[0][0])
    span = width - left - right
    bars = []
    for index, (mean, name) in enumerate(means):
        y = pad + index * row_height + 4
        bar_width = span * mean / scale
        bars.append(
            Bar(
                label=name,
                text=f"{mean:.2f}",
                x=left,
                y=y,
                width=round(bar_width, 1),
                height=row_height - 8,
                label_x=left - 6,
                label_y=y + (row_height - 8) / 2 + 4,  # the bar's middle, for 11px text
                text_x=round(left + bar_width + 4, 1),
                text_y=y + (row_height - 8) / 2 + 4,
            )
        )
    return Chart(label, width, height, True, tuple(bars), (left, pad, left, height - pad))


def period_awards(row: PeriodRow) -> list[Award]:
    """The period's approved and published awards: built-in awards first, by rank."""
    return list(
        db.session.scalars(
            select(Award)
            .join(AwardType, AwardType.id == Award.award_type_id)
            .join(User, User.id == Award.agent_id)
            .where(Award.period_id == row.id, Award.status.in_(REPORTED_AWARDS))
            .order_by(
                AwardType.builtin.desc(),
                AwardType.code,
                Award.cohort,
                Award.rank.is_(None),
                Award.rank,
                User.agent_no,
            )
        ).unique()
    )
