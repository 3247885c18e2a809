"""`flask demo seed`: a realistic organisation that works on first start."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.accounts.models import Position, Role, Team, User, UserRole
from portal.demo.seed import DEMO_LOGINS, DEMO_PASSWORD
from portal.extensions import db
from portal.metrics.models import Interaction
from tests.conftest import login


def _counts():
    return (
        db.session.scalar(select(func.count(Team.id))),
        db.session.scalar(select(func.count(Position.id))),
        db.session.scalar(select(func.count(User.id))),
    )


def test_seed_creates_teams_positions_and_every_role(app, runner):
    result = runner.invoke(args=["demo", "seed", "--activity-days", "0"])
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
    runner.invoke(args=["demo", "seed", "--activity-days", "0"])
    with app.app_context():
        before = _counts()
    assert runner.invoke(args=["demo", "seed", "--activity-days", "0"]).exit_code == 0
    result = runner.invoke(args=["demo", "seed", "--if-empty"])
    assert result.exit_code == 0
    assert "demo1234" in result.output  # the logins are printed on every start
    with app.app_context():
        assert _counts() == before


def test_demo_logins_work_without_a_forced_password_change(app, runner):
    runner.invoke(args=["demo", "seed", "--activity-days", "0"])
    for _role, agent_no in DEMO_LOGINS:
        client = app.test_client()
        assert login(client, agent_no, DEMO_PASSWORD).status_code == 302
        assert client.get("/").status_code == 200


def test_seed_generates_activity_that_differs_by_person(app, runner):
    from portal.metrics import compute
    from portal.metrics.periods import period_of

    result = runner.invoke(args=["demo", "seed", "--activity-days", "6"])
    assert result.exit_code == 0, result.output
    assert "interactions" in result.output
    with app.app_context():
        agents = db.session.scalars(
            select(User).where(User.agent_no.in_(["10001", "10002", "10003", "10021"]))
        ).all()
        first_day = db.session.scalar(select(func.min(Interaction.offered_day)))
        results = compute.agent_metrics(period_of(first_day, "quarterly"), agents)
        assert all(r.values["handled"] for r in results)
        assert len({round(r.values["aht"]) for r in results}) == len(results)
        queues = {r.key for r in compute.queue_metrics(period_of(first_day, "quarterly"))}
        assert {"售前热线", "售后热线", "技术支持", "微博微信"} <= queues


def test_seed_shows_qa_work_in_progress(app, runner):
    from portal.qa.models import Appeal

    result = runner.invoke(args=["demo", "seed", "--activity-days", "6"])
    assert "6 portal QA evaluations, 2 appeals" in result.output
    with app.app_context():
        appeals = db.session.scalars(select(Appeal).order_by(Appeal.id)).all()
        assert [(a.agent.agent_no, a.status) for a in appeals] == [
            ("10001", "submitted"),
            ("10011", "upheld"),
        ]


def test_seeded_activity_never_lies_after_the_seeding_time(app, runner):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from portal.db import utcnow
    from portal.metrics.models import DayStats, QaEvaluation, Survey
    from portal.qa.models import Appeal

    result = runner.invoke(args=["demo", "seed", "--activity-days", "6"])
    assert result.exit_code == 0, result.output
    now = utcnow()
    today = datetime.now(ZoneInfo(app.config["PORTAL_TIMEZONE"])).date()
    with app.app_context():
        # Customers' calls back, survey answers and evaluations included: none comes from later.
        assert db.session.scalar(select(func.max(Interaction.ended_s))) <= now.timestamp()
        assert db.session.scalar(select(func.max(DayStats.day))) < today  # up to yesterday
        assert db.session.scalar(select(func.max(Survey.submitted_at))) <= now
        evaluations = db.session.scalars(select(QaEvaluation)).all()
        assert len(evaluations) > 6  # imported ones besides the portal's own
        for evaluation in evaluations:
            assert evaluation.evaluated_at <= now and evaluation.released_at <= now
            # ...and still after the contact they judge.
            assert evaluation.evaluated_at.timestamp() >= evaluation.interaction.ended_s
        for appeal in db.session.scalars(select(Appeal)):
            assert appeal.submitted_at <= now and (appeal.decided_at or now) <= now
        answers = db.session.execute(
            select(Survey.submitted_at, Interaction.ended_s).join(
                Interaction, Interaction.id == Survey.interaction_id
            )
        ).all()
        assert answers and all(at.timestamp() >= ended for at, ended in answers)
