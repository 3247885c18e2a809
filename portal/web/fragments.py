"""Template fragments a process renders once and keeps: the header's menu, a board's filters
and rows. The caller's key names everything the fragment shows (the language, the values,
whose row it is), so a kept fragment is never stale and nothing has to clear it."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from jinja2 import StrictUndefined
from markupsafe import Markup

from portal.cache import Memo

_kept = Memo(16_384)  # menus, bells, filters and rows: about a kilobyte each


# A kept fragment is shown to everyone its key fits, so it must not read the request: these
# names, globals of every template, fail loudly in one.
_PER_REQUEST = {
    name: StrictUndefined(hint=f"a kept fragment cannot use {name}: put it in the key instead")
    for name in ("request", "session", "g", "current_user")
}


def kept(template: str, key: tuple, context: Callable[[], dict]) -> Markup:
    """`template` rendered with `context()` (called only when it is not kept yet), kept under
    `key`."""

    def render() -> Markup:
        page = current_app.jinja_env.get_template(template)
        return Markup(page.render(**_PER_REQUEST, **context()))

    return _kept.get((template, *key), render)
