"""The parts of every page's layout that are the same for many people: the head's assets and
the header's menu. A process renders each once per language, set of roles (and led teams) and
script root and keeps it: some fifty links and translations every page would render again."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup

from portal.accounts.models import Role
from portal.web import auth
from portal.web.fragments import kept


def assets() -> Markup:
    """The stylesheets and scripts every page loads."""
    return kept("_assets.html", (request.script_root,), dict)


def navigation() -> Markup:
    """The header's menu: the portal's name, then the links of the user's roles."""
    logged_in = current_user.is_authenticated
    if not logged_in:
        roles, led = frozenset(), ()
    else:
        roles = current_user.roles
        led = (
            tuple((t.id, t.name) for t in current_user.led_teams) if Role.TEAM_LEAD in roles else ()
        )
    return kept(
        "_navigation.html",
        (get_locale(), request.script_root, logged_in, roles, led),
        lambda: {
            "logged_in": logged_in,
            "roles": roles,
            "led_teams": [{"id": team_id, "name": name} for team_id, name in led],
            "allowed": lambda permission: auth.roles_allow(roles, permission),
        },
    )


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(assets=assets, navigation=navigation)
