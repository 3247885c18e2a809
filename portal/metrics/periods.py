"""Period keys (metrics.md §6): monthly `2026-11`, weekly ISO `2026-W47`, quarterly `2026-Q4`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

MONTHLY, WEEKLY, QUARTERLY = "monthly", "weekly", "quarterly"
KINDS = (MONTHLY, WEEKLY, QUARTERLY)
# The years the portal counts in: period keys and imported times outside them are typing
# mistakes (and some could not even be converted).
FIRST_YEAR, LAST_YEAR = 2000, 2099

_PATTERNS = {
    MONTHLY: re.compile(r"^(\d{4})-(\d{2})$"),
    WEEKLY: re.compile(r"^(\d{4})-W(\d{2})$"),
    QUARTERLY: re.compile(r"^(\d{4})-Q([1-4])$"),
}


class PeriodKeyError(ValueError):
    """Not a period key."""


@dataclass(frozen=True)
class Period:
    key: str
    kind: str
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def __contains__(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


def parse_period(key: str) -> Period:
    """The period a key names, or PeriodKeyError saying what a key looks like."""
    key = (key or "").strip()
    for kind, pattern in _PATTERNS.items():
        match = pattern.match(key)
        if not match:
            continue
        year, number = int(match.group(1)), int(match.group(2))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            break
        try:
            if kind == MONTHLY:
                first = date(year, number, 1)
                last = date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)
            elif kind == WEEKLY:
                first = date.fromisocalendar(year, number, 1)
                last = first + timedelta(days=6)
            else:
                first = date(year, 3 * number - 2, 1)
                last = date(year + number // 4, (3 * number) % 12 + 1, 1) - timedelta(days=1)
        except ValueError:
            break
        return Period(key, kind, first, last)
    raise PeriodKeyError(
        f"{key!r} is not a period key of the years {FIRST_YEAR} to {LAST_YEAR}; "
        "use 2026-11 (month), 2026-W47 (ISO week) or 2026-Q4"
    )


def period_of(day: date, kind: str) -> Period:
    """The period of `kind` that contains `day`."""
    if kind == MONTHLY:
        return parse_period(f"{day.year:04d}-{day.month:02d}")
    if kind == WEEKLY:
        year, week, _ = day.isocalendar()
        return parse_period(f"{year:04d}-W{week:02d}")
    if kind == QUARTERLY:
        return parse_period(f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}")
    raise ValueError(f"unknown period kind {kind!r}")


def recent_periods(
    today: date, kinds: tuple[str, ...] = (MONTHLY, QUARTERLY, WEEKLY)
) -> list[Period]:
    """Periods to pick from, newest first: 12 months, 4 quarters, 8 weeks (of `kinds`)."""
    counts = {MONTHLY: 12, QUARTERLY: 4, WEEKLY: 8}
    choices = []
    for kind in kinds:
        day = today
        for _ in range(counts[kind]):
            period = period_of(day, kind)
            choices.append(period)
            day = period.first_day - timedelta(days=1)
    return choices
