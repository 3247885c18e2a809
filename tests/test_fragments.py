"""Page or fragment: htmx partial requests get the named block, everything else the page."""

from __future__ import annotations

import pytest

from portal.accounts.models import Role
from tests.conftest import csrf_token, login

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    return client


@pytest.mark.parametrize(
    ("url", "marker"),
    [("/users", "<table"), ("/admin/audit", "portal-empty"), ("/admin/jobs", "portal-empty")],
)
def test_lists_answer_htmx_with_their_results_block(admin, url, marker):
    page = admin.get(url)
    fragment = admin.get(url, headers=HX)
    assert "<html" in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in body and "<nav" not in body.split("portal-pager")[0]
    assert marker in body
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in page.headers["Vary"]


def test_boosted_and_history_restore_requests_get_the_whole_page(admin):
    for headers in ({**HX, "HX-Boosted": "true"}, {**HX, "HX-History-Restore-Request": "true"}):
        assert "<html" in admin.get("/users", headers=headers).get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "data", "message"),
    [
        ("/users/new", {"agent_no": "x y", "name": "", "roles": "agent"}, "此项为必填项"),
        ("/teams/new", {"name": ""}, "此项为必填项"),
        ("/positions/new", {"name": "", "description": ""}, "此项为必填项"),
        (
            "/account/password",
            {"current": "x", "new": "a", "confirm": "b"},
            "两次输入的新密码不一致",
        ),
    ],
)
def test_invalid_forms_answer_422_with_the_form_fragment(admin, url, data, message):
    response = admin.post(url, data={**data, "csrf_token": csrf_token(admin)}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" not in body and "<form" in body
    assert message in body


def test_failed_login_answers_the_form_fragment(client, make_user):
    make_user({Role.AGENT}, agent_no="agent")
    response = client.post(
        "/login",
        data={"login": "agent", "password": "wrong", "csrf_token": csrf_token(client)},
        headers=HX,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "<html" not in body and "工号或密码不正确" in body


def test_successful_htmx_login_redirects_the_whole_page(client, make_user):
    make_user({Role.AGENT}, agent_no="agent")
    response = client.post(
        "/login?next=/users/1",
        data={"login": "agent", "password": "secret123", "csrf_token": csrf_token(client)},
        headers=HX,
    )
    assert response.headers["HX-Redirect"] == "/users/1"
