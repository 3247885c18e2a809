"""One page of a list already in memory, with what the pager macro reads (the same as
Flask-SQLAlchemy's pagination offers for a query)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def paginate(items: list, page: int, per_page: int) -> Page:
    """Page `page` of `items` (a page out of range gives the nearest one)."""
    pages = max(1, math.ceil(len(items) / per_page))
    page = min(max(page, 1), pages)
    start = (page - 1) * per_page
    return Page(items[start : start + per_page], page, per_page, len(items))
