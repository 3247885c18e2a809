"""The one place that decides which role may do what.

Every view declares its access with `@public` or `@require("permission")`. A view that declares
nothing is refused (see `enforce_declared_access`), so forgetting a check fails closed. Object-level
rules (a lead sees only their own team) live in each domain as `can_<verb>_<noun>` functions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import abort, current_app, request
from flask_login import current_user

from portal.accounts.models import Role

A, TL, QA, QL, AD = Role.AGENT, Role.TEAM_LEAD, Role.QA, Role.QA_LEAD, Role.ADMIN
EVERYONE = frozenset(Role)

# permission -> roles that hold it
POLICY: dict[str, frozenset[Role]] = {
    "portal.use": EVERYONE,  # home, own profile, own password and language
    "team.view": frozenset({TL, AD}),  # team rosters (leads: their own teams only)
    "users.view": frozenset({TL, AD}),  # a user's profile (leads: their own team's members)
    "users.manage": frozenset({AD}),
    "org.manage": frozenset({AD}),  # teams and positions
    "audit.read": frozenset({AD}),
    "jobs.read": frozenset({AD}),
    "center.view": frozenset({AD}),  # queues and the whole center's metrics
    "tokens.manage": frozenset({AD}),  # API tokens
    "imports.manage": frozenset({AD}),  # data uploads and the import history
    "plans.manage": frozenset({AD}),  # assessment plans, scenarios, tiers
    "alerts.manage": frozenset({AD}),  # alert rules
    "qa.evaluate": frozenset({QA, QL}),  # score interactions against a rubric
    "qa.lead": frozenset({QL, AD}),  # rubrics, the appeals dashboard
    "periods.manage": frozenset({AD}),  # periods, their close and results
    "awards.manage": frozenset({AD}),  # award types, decisions on nominations, revoking
    "awards.nominate": frozenset({TL, AD}),  # custom awards for team members, with a citation
    "settings.manage": frozenset({AD}),  # portal settings (leaderboard mode…)
}

PUBLIC = "public"


def roles_allow(roles: frozenset[Role], permission: str) -> bool:
    """Whether any of `roles` holds `permission`."""
    if permission not in POLICY:
        raise KeyError(f"unknown permission {permission!r}")
    return bool(roles & POLICY[permission])


def allowed(user, permission: str) -> bool:
    """Whether `user` holds `permission` through any of their roles."""
    if not getattr(user, "is_authenticated", False):
        return roles_allow(frozenset(), permission)  # False, once the permission is known
    return roles_allow(user.roles, permission)


def public(view: Callable) -> Callable:
    """Mark a view as open to anyone, logged in or not."""
    view.access = PUBLIC
    return view


def require(permission: str) -> Callable:
    """Require a login and `permission`; 401/redirect when logged out, 403 when not allowed."""
    if permission not in POLICY:
        raise KeyError(f"unknown permission {permission!r}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not allowed(current_user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapper.access = permission
        return wrapper

    return decorator


def endpoint_access(endpoint: str) -> str | None:
    view = current_app.view_functions.get(endpoint)
    if endpoint == "static" or endpoint.endswith(".static"):
        return PUBLIC
    return getattr(view, "access", None)


def enforce_declared_access() -> None:
    """before_request: refuse any view that did not declare who may use it."""
    if request.endpoint is None:
        return  # 404/405: handled by the router
    if endpoint_access(request.endpoint) is None:
        current_app.logger.error("view %s declares no access rule; refused", request.endpoint)
        abort(403)
