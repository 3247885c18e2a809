"""Template fragments a process renders once and keeps: the header's menu, a board's filters
and rows. The caller's key names everything the fragment shows (the language, the values,
whose row it is), so a kept fragment is never stale and nothing has to clear it."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from markupsafe import Markup

from portal.cache import Memo

_kept = Memo(4096)


def kept(template: str, key: tuple, context: Callable[[], dict]) -> Markup:
    """`template` rendered with `context()` (called only when it is not kept yet), kept under
    `key`."""
    return _kept.get(
        (template, *key),
        lambda: Markup(current_app.jinja_env.get_template(template).render(**context())),
    )
