"""`flask demo seed`: a realistic organisation that works on first start."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.accounts.models import Position, Role, Team, User, UserRole
from portal.demo.seed import DEMO_LOGINS, DEMO_PASSWORD
from portal.extensions import db
from tests.conftest import login


def _counts():
    return (
        db.session.scalar(select(func.count(Team.id))),
        db.session.scalar(select(func.count(Position.id))),
        db.session.scalar(select(func.count(User.id))),
    )


def test_seed_creates_teams_positions_and_every_role(app, runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert {t.name for t in db.session.scalars(select(Team))} == {
            "一组",
            "二组",
            "技术组",
            "社媒组",
        }
        assert {p.name for p in db.session.scalars(select(Position))} == {
            "电话客服",
            "技术支持",
            "社交媒体客服",
        }
        roles = set(db.session.scalars(select(UserRole.role).distinct()))
        assert roles == {r.value for r in Role}
        names = list(db.session.scalars(select(User.name)))
        assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", n) for n in names)
        assert len(set(names)) == len(names)
        for team in db.session.scalars(select(Team)):
            assert team.leads, f"{team.name} has no lead"
    for _role, agent_no in DEMO_LOGINS:
        assert agent_no in result.output


def test_seed_twice_changes_nothing_and_if_empty_leaves_existing_data(app, runner):
    runner.invoke(args=["demo", "seed"])
    with app.app_context():
        before = _counts()
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    result = runner.invoke(args=["demo", "seed", "--if-empty"])
    assert result.exit_code == 0
    assert "demo1234" in result.output  # the logins are printed on every start
    with app.app_context():
        assert _counts() == before


def test_demo_logins_work_without_a_forced_password_change(app, runner):
    runner.invoke(args=["demo", "seed"])
    for _role, agent_no in DEMO_LOGINS:
        client = app.test_client()
        assert login(client, agent_no, DEMO_PASSWORD).status_code == 302
        assert client.get("/").status_code == 200
