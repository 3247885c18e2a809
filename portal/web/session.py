"""Per-request wiring: who is logged in, which language, which checks run before every view."""

from __future__ import annotations

import functools
import os

from babel import Locale
from flask import Flask, current_app, has_request_context, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from htmx_flask import make_response as htmx_response

from portal.accounts import security
from portal.cache import Memo
from portal.db import configure_sqlite, utcnow
from portal.extensions import db, login_manager
from portal.notifications.services import unread_column
from portal.web import auth
from portal.web.htmx import add_vary, is_partial, redirect_to

LANG_COOKIE = "portal_lang"

# Endpoints a user who must first choose a new password may still reach.
PASSWORD_CHANGE_EXEMPT = frozenset(
    {"accounts.password", "accounts.logout", "accounts.language", "static", "system.healthz"}
)


def select_locale() -> Locale:
    """The user's own choice, else the language cookie, else Chinese."""
    languages = current_app.config["LANGUAGES"]
    if has_request_context():
        if current_user.is_authenticated and current_user.locale in languages:
            return _locale(current_user.locale)
        chosen = request.cookies.get(LANG_COOKIE)
        if chosen in languages:
            return _locale(chosen)
    return _locale(current_app.config["BABEL_DEFAULT_LOCALE"])


@functools.cache
def _locale(code: str) -> Locale:
    """Parsed once per process: Babel looks the code up in its locale list every time."""
    return Locale.parse(code)


_csrf_tokens = Memo(20_000)  # one per live session: more than a large center's agents


def csrf_token() -> str:
    """The CSRF token for this session's forms and htmx headers (Flask-WTF's), signed once per
    process for each session: a token never expires while its session lives
    (WTF_CSRF_TIME_LIMIT), so any signature of the session's secret is as good as a fresh one."""
    raw = session.get("csrf_token")
    if raw is None or current_app.config["WTF_CSRF_TIME_LIMIT"] is not None:
        return generate_csrf()
    return _csrf_tokens.get((current_app.secret_key, raw), generate_csrf)


def current_path() -> str:
    """This request's path with its query string, for `next=` links."""
    return request.full_path if request.query_string else request.path


@functools.cache
def _session_query():
    """Session, user, roles and the bell's unread count: one query per request."""
    return security.session_user_query(unread_notifications=unread_column())


def _load_user(token: str):
    return security.load_session_user(token, utcnow(), _session_query())


def _unauthorized():
    """Logged out: a page redirects to the login form; htmx gets HX-Redirect, not a swapped 302."""
    target = url_for("accounts.login", next=current_path() if request.method == "GET" else None)
    if is_partial():
        return htmx_response("", 401, redirect=url_for("accounts.login"))
    if request.path.startswith("/api/"):
        return {"error": "authentication required"}, 401
    return redirect_to(target)


def _require_new_password():
    # Check the endpoint first: the health check must not need the database for a login.
    if request.endpoint in PASSWORD_CHANGE_EXEMPT or request.endpoint is None:
        return None
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    return redirect_to(url_for("accounts.password"))


# Requests a page makes on its own (the bell's polling): they must not count as activity, or
# a tab left open would never reach the idle timeout.
PASSIVE_ENDPOINTS = frozenset({"notifications.bell"})


def _mark_session_permanent():
    # A permanent cookie session is what makes Flask enforce the idle lifetime server-side.
    if request.endpoint not in PASSIVE_ENDPOINTS:
        session.permanent = True


class PortalSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that passive requests never refresh the cookie."""

    def should_set_cookie(self, app: Flask, session) -> bool:
        if request.endpoint in PASSIVE_ENDPOINTS and not session.modified:
            return False
        return super().should_set_cookie(app, session)


def init_app(app: Flask) -> None:
    os.makedirs(app.instance_path, exist_ok=True)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)

    app.session_interface = PortalSessions()
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)
    login_manager.session_protection = "basic"

    app.before_request(_mark_session_permanent)
    app.before_request(auth.enforce_declared_access)
    app.before_request(_require_new_password)
    app.after_request(add_vary)

    @app.context_processor
    def _navigation():
        return {
            "allowed": lambda perm: auth.allowed(current_user, perm),
            "get_locale": get_locale,
            "current_path": current_path,
            "csrf_token": csrf_token,  # in place of Flask-WTF's
        }
