"""Logins are revocable: logout, password changes, resets and deactivation end them at once."""

from __future__ import annotations

from portal.accounts.models import Role, UserSession
from portal.extensions import db
from tests.conftest import PASSWORD, csrf_token, login, post

HX = {"HX-Request": "true"}


def _clone(app, client):
    """A second browser holding a copy of this one's cookies (a stolen or kept cookie)."""
    other = app.test_client()
    for cookie in client._cookies.values():
        other.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return other


def test_logout_ends_the_session_for_every_copy_of_the_cookie(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    login(client, "10001")
    kept = _clone(app, client)
    assert kept.get("/").status_code == 200
    post(client, "/logout")
    assert client.get("/").status_code == 302
    assert kept.get("/").status_code == 302  # the old cookie no longer opens anything


def test_changing_the_password_ends_other_sessions_but_keeps_this_one(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    here, elsewhere = app.test_client(), app.test_client()
    login(here, "10001")
    login(elsewhere, "10001")
    response = post(
        here, "/account/password", {"current": PASSWORD, "new": "fresh2026", "confirm": "fresh2026"}
    )
    assert response.status_code == 200
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302


def test_deactivation_ends_every_session_at_once(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    agent = make_user({Role.AGENT}, agent_no="10001")
    admin, victim = app.test_client(), app.test_client()
    login(admin, "admin")
    login(victim, "10001", remember=True)
    assert victim.get("/").status_code == 200
    response = post(admin, f"/users/{agent.id}/active", {"active": "0"})
    assert response.status_code == 302
    assert victim.get("/").status_code == 302
    assert login(app.test_client(), "10001").status_code == 401


def test_admin_password_reset_ends_the_users_sessions(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    agent = make_user({Role.AGENT}, agent_no="10001")
    admin, user = app.test_client(), app.test_client()
    login(admin, "admin")
    login(user, "10001")
    reset = post(admin, f"/users/{agent.id}/reset-password")
    assert reset.status_code == 200
    assert "accounts-temporary-password" in reset.get_data(as_text=True)
    assert user.get("/").status_code == 302


def _remember_only(app, client):
    """A browser restarted: the session cookie is gone, only the remember-me cookie is left."""
    fresh = app.test_client()
    remember = client.get_cookie("portal_remember")
    assert remember is not None
    fresh.set_cookie("portal_remember", remember.value)
    return fresh


def test_remember_me_restores_a_login_and_is_revoked_by_logout(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    login(client, "10001", remember=True)
    restarted = _remember_only(app, client)
    kept = _remember_only(app, client)  # a copy of the cookie kept after logout
    assert restarted.get("/").status_code == 200
    post(client, "/logout")
    assert kept.get("/").status_code == 302


def test_remember_me_is_revoked_by_deactivation(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    agent = make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    login(client, "10001", remember=True)
    kept = _remember_only(app, client)
    admin = app.test_client()
    login(admin, "admin")
    post(admin, f"/users/{agent.id}/active", {"active": "0"})
    assert kept.get("/").status_code == 302


def test_an_ended_session_answers_htmx_with_a_redirect_to_login(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    kept = _clone(app, client)
    post(client, "/logout")
    response = kept.get("/users?q=x", headers=HX)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login"
    assert "<table" not in response.get_data(as_text=True)


def test_session_rows_are_created_and_revoked(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    login(client, "10001")
    with app.app_context():
        row = db.session.query(UserSession).one()
        assert row.revoked_at is None and len(row.token_hash) == 64
    post(client, "/logout")
    with app.app_context():
        assert db.session.query(UserSession).one().revoked_at is not None


def test_cookies_are_http_only_and_same_site(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    response = login(client, "10001", remember=True)
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)


def test_secure_cookies_when_served_over_https(app):
    from portal.config import load_config

    config = load_config(app.instance_path, {"PORTAL_BASE_URL": "https://portal.example"})
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]


def test_post_without_or_with_a_forged_csrf_token_is_refused(app, make_user):
    agent = make_user({Role.AGENT}, agent_no="10001")
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    url = f"/users/{agent.id}/active"
    assert client.post(url, data={"active": "0"}).status_code == 400
    forged = client.post(url, data={"active": "0", "csrf_token": "forged"})
    assert forged.status_code == 400 and "页面已过期" in forged.get_data(as_text=True)
    htmx_forged = client.post(url, data={"active": "0"}, headers={**HX, "X-CSRFToken": "x"})
    assert htmx_forged.status_code == 400
    assert login(app.test_client(), "10001").status_code == 302  # still active


def test_the_token_in_the_page_header_works_for_htmx_posts(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    login(client, "10001")
    token = csrf_token(client)
    response = client.post(
        "/account/language",
        data={"locale": "en"},
        headers={**HX, "X-CSRFToken": token},
    )
    assert response.headers.get("HX-Redirect") == "/"
    assert "Log out" in client.get("/").get_data(as_text=True)


def test_a_logged_in_request_reads_session_user_roles_and_bell_in_one_query(app, make_user):
    from sqlalchemy import event

    make_user({Role.AGENT, Role.TEAM_LEAD}, agent_no="10001")
    client = app.test_client()
    login(client, "10001")
    selects = []
    with app.app_context():
        engine = db.engine

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        bell = client.get("/notifications/bell", headers=HX)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert bell.status_code == 200
    assert len(selects) == 1


def test_a_role_taken_away_counts_at_the_next_request(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    other = make_user({Role.AGENT, Role.ADMIN}, agent_no="10001")
    admin, user = app.test_client(), app.test_client()
    login(admin, "admin")
    login(user, "10001")
    assert user.get("/users").status_code == 200
    with app.app_context():
        from portal.accounts.models import User

        db.session.get(User, other.id).set_roles({Role.AGENT})
        db.session.commit()
    assert user.get("/users").status_code == 403
    assert 'href="/users"' not in user.get("/").get_data(as_text=True)


def test_a_pages_csrf_token_works_only_with_its_own_session(app, make_user, monkeypatch):
    from portal.web import session as web_session

    make_user({Role.AGENT}, agent_no="10001")
    mine, other = app.test_client(), app.test_client()
    login(mine, "10001")
    login(other, "10001")
    token = csrf_token(mine)
    signed = []
    real = web_session.generate_csrf
    monkeypatch.setattr(web_session, "generate_csrf", lambda: signed.append(1) or real())
    assert csrf_token(mine) == csrf_token(mine) == token  # the session's pages share one
    assert signed == []  # signed once for the session, not at every page
    headers = {**HX, "X-CSRFToken": token}
    refused = other.post("/account/language", data={"locale": "en"}, headers=headers)
    assert refused.status_code == 400
    answer = mine.post("/account/language", data={"locale": "en"}, headers=headers)
    assert answer.headers.get("HX-Redirect") == "/"


def test_a_login_in_the_same_browser_gets_new_csrf_tokens(app, make_user):
    """On a shared PC, a token read during one login must not serve the next one."""
    make_user({Role.AGENT}, agent_no="10001")
    make_user({Role.AGENT}, agent_no="10002")
    browser = app.test_client()
    login(browser, "10001")
    token = csrf_token(browser)
    post(browser, "/logout")
    login(browser, "10002")
    assert csrf_token(browser) != token
    headers = {**HX, "X-CSRFToken": token}
    refused = browser.post("/account/language", data={"locale": "en"}, headers=headers)
    assert refused.status_code == 400
