"""Admin screens for users, teams and positions; every change in the audit log."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select

from portal.accounts.models import Position, Role, Team, User
from portal.audit.models import AuditEntry
from portal.extensions import db
from tests.conftest import login, post

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(app, make_user):
    user = make_user({Role.ADMIN}, agent_no="admin", name="杨强")
    client = app.test_client()
    login(client, "admin")
    client.user = user
    return client


def _audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        for e in entries:
            db.session.expunge(e)
        return entries


def test_list_searches_filters_and_paginates(admin, make_user, make_team):
    team = make_team("一组")
    make_user({Role.AGENT}, agent_no="10001", name="王芳", team=team)
    make_user({Role.QA}, agent_no="30001", name="李娜")
    make_user({Role.AGENT}, agent_no="10002", name="张伟", active=False)
    html = admin.get("/users?q=王").get_data(as_text=True)
    assert "10001" in html and "30001" not in html
    assert "10001" in admin.get("/users?q=10001@EXAMPLE").get_data(as_text=True)
    by_team = admin.get(f"/users?team={team.id}").get_data(as_text=True)
    assert "10001" in by_team and "30001" not in by_team
    by_role = admin.get("/users?role=qa").get_data(as_text=True)
    assert "30001" in by_role and "10001" not in by_role
    assert "10002" not in admin.get("/users").get_data(as_text=True)  # active by default
    assert "10002" in admin.get("/users?status=inactive").get_data(as_text=True)
    empty = admin.get("/users?q=nobody").get_data(as_text=True)
    assert "没有符合条件的用户" in empty


def test_list_paginates_and_keeps_the_filters(admin, make_user):
    for i in range(30):
        make_user({Role.AGENT}, agent_no=f"1{i:04d}", password=None)
    first = admin.get("/users?role=agent").get_data(as_text=True)
    second = admin.get("/users?role=agent&page=2").get_data(as_text=True)
    assert "10000" in first and "10029" not in first
    assert "10029" in second and "10000" not in second
    assert "第 2 / 2 页(共 30 条)" in second
    assert "role=agent" in re.search(r'href="([^"]*page=1[^"]*)"', second).group(1)


def test_list_runs_a_fixed_number_of_queries_whatever_its_length(app, admin, make_user, make_team):
    team = make_team("一组")

    def queries_for_list() -> int:
        count = []
        with app.app_context():
            listener = lambda *a, **k: count.append(1)  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                assert admin.get("/users").status_code == 200
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
        return len(count)

    for i in range(3):
        make_user({Role.AGENT}, agent_no=f"2{i:04d}", team=team, password=None)
    few = queries_for_list()
    for i in range(3, 25):
        make_user({Role.AGENT, Role.QA}, agent_no=f"2{i:04d}", team=team, password=None)
    assert queries_for_list() == few


def test_create_user_refuses_bad_input_at_the_field(admin, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    cases = [
        (
            {"agent_no": "10001", "name": "王芳", "roles": "agent"},
            "该工号已被其他账号使用",
            "agent_no",
        ),
        ({"agent_no": "10002", "name": "王芳"}, "请至少选择一个角色", "roles"),
        (
            {"agent_no": "10002", "name": "王芳", "roles": "agent", "email": "x@"},
            "有效的电子邮箱",
            "email",
        ),
        (
            {"agent_no": "10002", "name": "王芳", "roles": "agent", "hire_date": "2025-02-30"},
            "YYYY-MM-DD",
            "hire_date",
        ),
        ({"agent_no": "10002", "name": "王芳", "roles": "boss"}, "roles", "roles"),
        (
            {"agent_no": "10002", "name": "王芳", "roles": "agent", "email": "10001@example.com"},
            "该电子邮箱已被其他账号使用",
            "email",
        ),
    ]
    for data, message, field in cases:
        response = post(
            admin, "/users/new", {"team_id": "0", "position_id": "0", **data}, headers=HX
        )
        html = response.get_data(as_text=True)
        assert response.status_code == 422, data
        assert message in html, data
        assert f'id="{field}' in html
    with admin.application.app_context():
        assert db.session.scalar(select(User).where(User.agent_no == "10002")) is None


def test_created_user_gets_a_one_time_password_and_must_change_it(app, admin, make_team):
    team = make_team("二组")
    response = post(
        admin,
        "/users/new",
        {
            "agent_no": "10077",
            "name": "林晓燕",
            "team_id": team.id,
            "position_id": "0",
            "roles": ["agent", "qa"],
            "hire_date": "2026-10-08",
            "email": "lin@example.com",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    temporary = re.search(r'id="accounts-temporary-password">([^<]+)<', html).group(1)
    client = app.test_client()
    assert login(client, "10077", temporary).status_code == 302
    assert client.get("/").headers["Location"].endswith("/account/password")
    [entry] = _audit(app, "user.create")
    assert entry.after["roles"] == ["agent", "qa"] and entry.after["team"] == "二组"
    assert entry.actor_id == admin.user.id
    assert temporary not in str(entry.after)  # no password in the audit log


def test_edit_user_records_before_and_after(app, admin, make_user, make_team):
    make_team("一组")
    two = make_team("二组")
    agent = make_user({Role.AGENT}, agent_no="10001", name="王芳")
    page = admin.get(f"/users/{agent.id}/edit").get_data(as_text=True)
    assert 'value="10001"' in page
    assert re.search(r'<input checked[^>]*value="agent"', page)
    assert not re.search(r'<input checked[^>]*value="qa"', page)
    response = post(
        admin,
        f"/users/{agent.id}/edit",
        {
            "agent_no": "10001",
            "name": "王芳芳",
            "team_id": two.id,
            "position_id": "0",
            "roles": ["agent", "team_lead"],
            "email": "10001@example.com",
            "hire_date": "2025-01-01",
        },
    )
    assert response.status_code == 302
    [entry] = _audit(app, "user.update")
    assert entry.before["name"] == "王芳" and entry.after["name"] == "王芳芳"
    assert entry.before["team"] is None and entry.after["team"] == "二组"
    assert entry.after["roles"] == ["agent", "team_lead"]


def test_admin_cannot_remove_own_admin_role_or_deactivate_self(admin):
    me = admin.user.id
    response = post(
        admin,
        f"/users/{me}/edit",
        {"agent_no": "admin", "name": "杨强", "team_id": "0", "position_id": "0", "roles": "agent"},
    )
    assert response.status_code == 422
    assert "不能取消自己的管理员角色" in response.get_data(as_text=True)
    refused = post(admin, f"/users/{me}/active", {"active": "0"})
    assert refused.status_code == 409
    assert "不能停用自己的账号" in refused.get_data(as_text=True)
    assert admin.get("/").status_code == 200


def test_deactivate_and_reactivate_are_audited(app, admin, make_user):
    agent = make_user({Role.AGENT}, agent_no="10001")
    post(admin, f"/users/{agent.id}/active", {"active": "0"})
    assert "该账号已停用" in admin.get(f"/users/{agent.id}").get_data(as_text=True)
    post(admin, f"/users/{agent.id}/active", {"active": "1"})
    assert login(app.test_client(), "10001").status_code == 302
    assert [e.after for e in _audit(app, "user.deactivate")] == [{"active": False}]
    assert [e.after for e in _audit(app, "user.activate")] == [{"active": True}]


def test_unknown_user_id_is_404(admin):
    assert admin.get("/users/99999").status_code == 404
    assert admin.get("/users/99999/edit").status_code == 404
    assert post(admin, "/users/99999/active", {"active": "0"}).status_code == 404


def test_teams_with_leads_who_hold_the_lead_role(app, admin, make_user):
    lead = make_user({Role.TEAM_LEAD}, agent_no="20001", name="高刚")
    plain = make_user({Role.AGENT}, agent_no="10001")
    page = admin.get("/teams/new").get_data(as_text=True)
    assert "20001 高刚" in page and "10001" not in page  # only leads are offered
    assert post(admin, "/teams/new", {"name": "一组", "leads": lead.id}).status_code == 302
    duplicate = post(admin, "/teams/new", {"name": "一组"})
    assert duplicate.status_code == 422 and "已有同名团队" in duplicate.get_data(as_text=True)
    not_a_lead = post(admin, "/teams/new", {"name": "二组", "leads": plain.id})
    assert not_a_lead.status_code == 422
    with app.app_context():
        team = db.session.scalar(select(Team).where(Team.name == "一组"))
        assert [u.agent_no for u in team.leads] == ["20001"]
        team_id = team.id
    assert "高刚" in admin.get("/teams").get_data(as_text=True)
    assert post(admin, f"/teams/{team_id}/edit", {"name": "一组(新)"}).status_code == 302
    [entry] = _audit(app, "team.update")
    assert entry.before == {"name": "一组", "leads": ["20001"]}
    assert entry.after == {"name": "一组(新)", "leads": []}


def test_positions_create_edit_and_refuse_duplicates(app, admin):
    assert (
        post(admin, "/positions/new", {"name": "电话客服", "description": "呼入"}).status_code
        == 302
    )
    duplicate = post(admin, "/positions/new", {"name": "电话客服", "description": ""})
    assert duplicate.status_code == 422 and "已有同名岗位" in duplicate.get_data(as_text=True)
    with app.app_context():
        position_id = db.session.scalar(select(Position.id))
    post(admin, f"/positions/{position_id}/edit", {"name": "电话客服", "description": "呼入热线"})
    assert "呼入热线" in admin.get("/positions").get_data(as_text=True)
    assert [e.after["description"] for e in _audit(app, "position.update")] == ["呼入热线"]
    assert admin.get("/positions/99999/edit").status_code == 404


def test_audit_page_shows_filters_and_paginates(app, admin, make_user):
    for i in range(3):
        post(admin, "/positions/new", {"name": f"岗位{i}", "description": ""})
    html = admin.get("/admin/audit").get_data(as_text=True)
    assert "position.create" in html and "杨强" in html
    only = admin.get("/admin/audit?action=position.create&who=岗位1").get_data(as_text=True)
    assert "岗位1" in only and "岗位2" not in only
    with app.app_context():
        from portal.audit.services import record

        for i in range(60):
            record(None, "test.bulk", summary=f"bulk {i}")
        db.session.commit()
    second = admin.get("/admin/audit?page=2").get_data(as_text=True)
    assert "第 2 / 2 页" in second


@pytest.mark.parametrize("url", ["/users/{other}", "/teams/{other_team}"])
def test_lead_sees_own_team_only(app, make_user, make_team, url):
    lead = make_user({Role.TEAM_LEAD}, agent_no="20001")
    mine = make_team("一组", leads=[lead])
    theirs = make_team("二组")
    member = make_user({Role.AGENT}, agent_no="10001", team=mine)
    other = make_user({Role.AGENT}, agent_no="10002", team=theirs)
    client = app.test_client()
    login(client, "20001")
    assert client.get(f"/users/{member.id}").status_code == 200
    assert client.get(f"/teams/{mine.id}").status_code == 200
    forbidden = url.format(other=other.id, other_team=theirs.id)
    assert client.get(forbidden).status_code == 403


def test_agent_cannot_open_another_agents_profile(app, make_user):
    me = make_user({Role.AGENT}, agent_no="10001")
    other = make_user({Role.AGENT}, agent_no="10002")
    client = app.test_client()
    login(client, "10001")
    assert client.get(f"/users/{me.id}").status_code == 200
    assert client.get(f"/users/{other.id}").status_code == 403


def test_team_list_paginates(admin, make_team):
    for i in range(30):
        make_team(f"团队{i:02d}")
    first = admin.get("/teams").get_data(as_text=True)
    second = admin.get("/teams?page=2").get_data(as_text=True)
    assert "团队00" in first and "团队29" not in first
    assert "团队29" in second and "第 2 / 2 页" in second
