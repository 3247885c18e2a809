"""Error answers: a page for browsers, a fragment for htmx, JSON for the API; nothing half-saved."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from portal import create_app
from portal.accounts.models import Position, Role
from portal.extensions import db
from portal.web.auth import public
from tests.conftest import login

HX = {"HX-Request": "true"}


def test_unknown_page_is_a_chinese_404_page(client):
    response = client.get("/no-such-page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<html" in html and "页面不存在" in html and "返回首页" in html


def test_htmx_gets_a_fragment_not_a_whole_page(client):
    response = client.get("/no-such-page", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<html" not in html and 'role="alert"' in html


def test_forbidden_page_says_what_to_do(app, make_user):
    make_user({Role.AGENT}, agent_no="agent")
    client = app.test_client()
    login(client, "agent")
    response = client.get("/admin/audit")
    assert response.status_code == 403
    assert "请联系管理员" in response.get_data(as_text=True)
    fragment = client.get("/admin/audit", headers=HX)
    assert fragment.status_code == 403 and "<html" not in fragment.get_data(as_text=True)


def test_a_crash_answers_500_and_rolls_back_what_the_request_wrote(app):
    bp = Blueprint("crash", __name__)

    @bp.get("/crash")
    @public
    def crash():
        db.session.add(Position(name="半途而废"))
        db.session.flush()
        raise RuntimeError("boom")

    fresh = create_app({**app.config, "TESTING": False, "PROPAGATE_EXCEPTIONS": False})
    fresh.register_blueprint(bp)
    response = fresh.test_client().get("/crash")
    assert response.status_code == 500
    assert "未保存任何内容" in response.get_data(as_text=True)
    with fresh.app_context():
        assert db.session.scalar(select(Position).where(Position.name == "半途而废")) is None
