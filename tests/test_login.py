"""Logging in: by employee number or e-mail, throttled in the database, safe redirects."""

from __future__ import annotations

import statistics
import time

from sqlalchemy import func, select

from portal import create_app
from portal.accounts import security
from portal.accounts.models import LoginFailure, Role, User
from portal.extensions import db
from tests.conftest import PASSWORD, csrf_token, login


def test_login_by_employee_number_or_email_in_any_case(app, make_user):
    make_user({Role.AGENT}, agent_no="A10001")
    assert login(app.test_client(), "a10001").status_code == 302
    assert login(app.test_client(), "A10001@EXAMPLE.COM").status_code == 302


def test_wrong_password_is_refused_with_a_message_that_reveals_nothing(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    wrong = login(client, "10001", "not-it-1")
    unknown = login(client, "nobody", "not-it-1")
    assert wrong.status_code == unknown.status_code == 401
    assert "工号或密码不正确" in wrong.get_data(as_text=True)
    # Same message whether or not the account exists.
    assert "工号或密码不正确" in unknown.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_deactivated_user_cannot_log_in(app, make_user):
    make_user({Role.AGENT}, agent_no="10001", active=False)
    assert login(app.test_client(), "10001").status_code == 401


def test_account_is_throttled_after_five_failures_even_with_the_right_password(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    for _ in range(5):
        assert login(client, "10001", "guess-123").status_code == 401
    blocked = login(client, "10001", PASSWORD)
    assert blocked.status_code == 429
    assert "分钟后重试" in blocked.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in


def test_address_is_throttled_across_account_names(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    app.config["LOGIN_MAX_FAILURES_ADDRESS"] = 4
    try:
        client = app.test_client()
        for i in range(4):
            login(client, f"someone{i}", "guess-123")
        assert login(client, "10001", PASSWORD).status_code == 429
        other_address = app.test_client()
        other_address.environ_base["REMOTE_ADDR"] = "10.9.8.7"
        assert login(other_address, "10001", PASSWORD).status_code == 302
    finally:
        app.config["LOGIN_MAX_FAILURES_ADDRESS"] = 30


def test_throttle_is_shared_by_separate_processes_on_one_database(app, make_user):
    """State is in the database: failures counted by one app instance block another."""
    make_user({Role.AGENT}, agent_no="10001")
    other = create_app(dict(app.config))
    for i in range(5):
        served_by = app if i % 2 else other
        login(served_by.test_client(), "10001", "guess-123")
    assert login(app.test_client(), "10001", PASSWORD).status_code == 429
    assert login(other.test_client(), "10001", PASSWORD).status_code == 429


def test_a_success_clears_the_account_failures(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    for _ in range(4):
        login(client, "10001", "guess-123")
    assert login(client, "10001").status_code == 302
    with app.app_context():
        left = db.session.scalar(
            select(func.count()).where(LoginFailure.scope == "account", LoginFailure.key == "10001")
        )
        assert left == 0


def test_next_only_follows_paths_on_this_site(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    for target, expected in [
        ("/users/1", "/users/1"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
    ]:
        client = app.test_client()
        response = client.post(
            "/login",
            query_string={"next": target},
            data={"login": "10001", "password": PASSWORD, "csrf_token": csrf_token(client)},
        )
        assert response.headers["Location"] == expected, target


def test_passwords_are_argon2id_at_owasp_parameters_and_verify_fast(ctx, make_user):
    user = make_user({Role.AGENT})
    stored = db.session.get(User, user.id).password_hash
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    samples = []
    for _ in range(7):
        start = time.perf_counter()
        assert security.verify_password(db.session.get(User, user.id), PASSWORD)
        samples.append(time.perf_counter() - start)
    assert statistics.median(samples) < 0.05


def test_users_who_must_change_their_password_see_nothing_else(app, make_user):
    make_user({Role.ADMIN}, agent_no="10001", must_change=True)
    client = app.test_client()
    login(client, "10001")
    for url in ("/", "/users", "/admin/audit", "/users/1"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/account/password"), url
    assert client.get("/account/password").status_code == 200


def test_a_one_time_password_stops_working_once_the_user_chose_one(app, make_user):
    admin = make_user({Role.ADMIN}, agent_no="admin")
    agent = make_user({Role.AGENT}, agent_no="10001")
    with app.app_context():
        from portal.accounts.services import reset_password
        from portal.db import utcnow

        temporary = reset_password(
            db.session.get(User, admin.id), db.session.get(User, agent.id), utcnow()
        )
        db.session.commit()
    client = app.test_client()
    assert login(client, "10001", PASSWORD).status_code == 401  # the old password is gone
    assert login(client, "10001", temporary).status_code == 302
    client.post(
        "/account/password",
        data={
            "current": temporary,
            "new": "chosen2026",
            "confirm": "chosen2026",
            "csrf_token": csrf_token(client),
        },
    )
    assert login(app.test_client(), "10001", temporary).status_code == 401
    assert login(app.test_client(), "10001", "chosen2026").status_code == 302


def test_weak_or_same_passwords_are_refused_at_the_field(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    login(client, "10001")
    for new, message in [
        ("short1", "请至少使用 8 个字符"),
        ("onlyletters", "请同时使用字母和数字"),
        ("12345678", "请同时使用字母和数字"),
        (PASSWORD, "新密码不能与当前密码相同"),
    ]:
        response = client.post(
            "/account/password",
            data={
                "current": PASSWORD,
                "new": new,
                "confirm": new,
                "csrf_token": csrf_token(client),
            },
        )
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    wrong = client.post(
        "/account/password",
        data={
            "current": "nope-1234",
            "new": "valid2026",
            "confirm": "valid2026",
            "csrf_token": csrf_token(client),
        },
    )
    assert "当前密码不正确" in wrong.get_data(as_text=True)


def test_behind_a_reverse_proxy_each_client_address_is_throttled_apart(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    proxied = create_app({**app.config, "PROXY_FIX_HOPS": 1, "LOGIN_MAX_FAILURES_ADDRESS": 3})
    attacker = proxied.test_client()
    attacker.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
    for i in range(3):
        login(attacker, f"guess{i}", "guess-123")
    assert login(attacker, "10001").status_code == 429
    colleague = proxied.test_client()  # same proxy, another desk
    colleague.environ_base["HTTP_X_FORWARDED_FOR"] = "10.1.2.3"
    assert login(colleague, "10001").status_code == 302
