"""The header's menu is kept per process for each set of roles, led teams and language: it must
still follow each of them at once."""

from __future__ import annotations

import pytest

from portal.accounts.models import Role, Team
from portal.extensions import db
from tests.conftest import login, post


def _menu(client) -> str:
    page = client.get("/").get_data(as_text=True)
    return page.split("<nav>")[1].split("</nav>")[0]


def test_the_menu_follows_the_language_switch(app, make_user):
    make_user({Role.AGENT}, agent_no="10001")
    client = app.test_client()
    login(client, "10001")
    assert "排行榜" in _menu(client)
    post(client, "/account/language", {"locale": "en"})
    english = _menu(client)
    assert "Leaderboards" in english and "排行榜" not in english
    post(client, "/account/language", {"locale": "zh_CN"})
    assert "排行榜" in _menu(client)


def test_the_menu_differs_by_roles_and_shows_a_renamed_team_at_once(app, make_user, make_team):
    lead = make_user({Role.TEAM_LEAD}, agent_no="20001")
    make_user({Role.AGENT}, agent_no="10001")
    team = make_team("一组", leads=[lead])
    leader, agent = app.test_client(), app.test_client()
    login(leader, "20001")
    login(agent, "10001")
    assert "一组" in _menu(leader) and f"/teams/{team.id}" in _menu(leader)
    assert "一组" not in _menu(agent) and "/metrics/me" in _menu(agent)
    assert "/metrics/me" not in _menu(leader)
    with app.app_context():
        db.session.get(Team, team.id).name = "先锋组"
        db.session.commit()
    assert "先锋组" in _menu(leader) and "一组" not in _menu(leader)


def test_a_kept_fragment_cannot_read_the_request(app):
    """Kept fragments serve everyone their key fits: one that read the request would show
    one viewer's data to the next."""
    from jinja2 import ChoiceLoader, DictLoader, UndefinedError

    from portal.web.fragments import kept

    loader = app.jinja_env.loader
    app.jinja_env.loader = ChoiceLoader([DictLoader({"t_peek.html": "{{ request.path }}"}), loader])
    try:
        with app.test_request_context("/leaderboards"), pytest.raises(UndefinedError):
            kept("t_peek.html", ("peek",), dict)
    finally:
        app.jinja_env.loader = loader
