"""The menu of the page header. It is the same for everyone with the same roles (and led
teams) in the same language, so a process renders it once for each and keeps it: some forty
links and translations that every page would otherwise render again."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup

from portal.accounts.models import Role
from portal.web import auth
from portal.web.fragments import kept


def navigation() -> Markup:
    """The header's menu links for the logged-in user (nothing for a visitor)."""
    if not current_user.is_authenticated:
        return Markup("")
    roles = current_user.roles
    led = tuple((t.id, t.name) for t in current_user.led_teams) if Role.TEAM_LEAD in roles else ()
    return kept(
        "_navigation.html",
        (get_locale(), request.script_root, roles, led),
        lambda: {
            "roles": roles,
            "led_teams": [{"id": team_id, "name": name} for team_id, name in led],
            "allowed": lambda permission: auth.roles_allow(roles, permission),
        },
    )


def init_app(app: Flask) -> None:
    app.jinja_env.globals["navigation"] = navigation
