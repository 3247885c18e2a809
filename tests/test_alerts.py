"""Alert rules on daily metrics: a run of days raises one alert, notifies the agent and the
lead, and opens an improvement plan that the lead follows up and closes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role
from portal.alerts.models import Alert, AlertRule, ImprovementPlan
from portal.alerts.services import DEFAULT_RULE, evaluate_rules, latest_run, save_rule
from portal.extensions import db
from portal.metrics.models import DayStats
from portal.notifications.models import Notification
from tests.conftest import login, post

TODAY = date(2026, 11, 20)


@pytest.fixture
def team(app, make_user, make_team):
    lead = make_user({Role.TEAM_LEAD}, agent_no="L", name="组长")
    one = make_team("一组", leads=[lead])
    agent = make_user({Role.AGENT}, agent_no="A", name="甲", team=one)
    other = make_user({Role.AGENT}, agent_no="B", name="乙", team=one)
    return {"lead": lead, "agent": agent, "other": other, "team": one}


def csat_days(app, agent, values: dict[date, float | None]) -> None:
    """Daily sums giving `agent` these CSAT shares (None: a day off, no row)."""
    with app.app_context():
        for day, share in values.items():
            if share is None:
                continue
            db.session.add(
                DayStats(
                    day=day,
                    agent_id=agent.id,
                    queue="Q",
                    n_all=20,
                    n_answered=20,
                    n_csat=20,
                    n_csat_pos=round(20 * share),
                )
            )
        db.session.commit()


def _evaluate(app, today=TODAY) -> str:
    with app.app_context():
        outcome = evaluate_rules(today)
        db.session.commit()
        return outcome


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


@pytest.fixture(autouse=True)
def default_rule(app):
    """The rule the migration seeds (each test starts from empty tables; the seeding itself is
    checked in test_migrations)."""
    with app.app_context():
        rule_id = save_rule(None, None, DEFAULT_RULE).id
        db.session.commit()
    return rule_id


def test_days_off_neither_count_nor_break_a_run():
    rule = AlertRule(metric="csat", comparison="below", threshold=0.85, days=3)
    d = date(2026, 11, 1)
    values = {
        d: 0.9,
        d + timedelta(1): 0.8,
        d + timedelta(2): None,
        d + timedelta(3): 0.7,
        d + timedelta(4): 0.8,
    }
    assert [day.day for day, _ in latest_run(rule, values)] == [2, 4, 5]
    assert latest_run(rule, {**values, d + timedelta(5): 0.9}) == []  # ended by a good day


def test_three_days_below_raise_one_alert_notify_agent_and_lead_and_open_a_plan(app, team):
    csat_days(app, team["agent"], {TODAY - timedelta(days=n): 0.75 for n in (1, 2, 3)})
    csat_days(app, team["other"], {TODAY - timedelta(days=n): 0.95 for n in (1, 2, 3)})
    assert _evaluate(app).startswith("raised 1 alert")
    with app.app_context():
        alert = db.session.scalar(select(Alert))
        assert (alert.user_id, alert.first_day, alert.last_day) == (
            team["agent"].id,
            TODAY - timedelta(days=3),
            TODAY - timedelta(days=1),
        )
        plan = db.session.scalar(select(ImprovementPlan))
        assert plan.alert_id == alert.id and plan.status == "open"
        told = {n.user_id: n.kind for n in db.session.scalars(select(Notification))}
        assert told == {team["agent"].id: "alert", team["lead"].id: "alert_for_lead"}
    assert _evaluate(app).startswith("raised 0 alert")  # the same run: nothing twice
    csat_days(app, team["agent"], {TODAY: 0.7})
    assert _evaluate(app, TODAY + timedelta(days=1)) == "raised 0 alert(s), 1 run(s) extended"
    assert _count(app, ImprovementPlan) == 1 and _count(app, Notification) == 2


def test_two_days_are_not_enough_and_a_new_run_raises_a_new_alert(app, team):
    start = TODAY - timedelta(days=10)
    csat_days(app, team["agent"], {start + timedelta(days=n): 0.75 for n in range(2)})
    csat_days(app, team["agent"], {start + timedelta(days=2): 0.9})
    assert _evaluate(app, start + timedelta(days=3)).startswith("raised 0")
    csat_days(app, team["agent"], {start + timedelta(days=n): 0.8 for n in range(3, 6)})
    assert _evaluate(app, start + timedelta(days=6)).startswith("raised 1")
    csat_days(app, team["agent"], {start + timedelta(days=6): 0.9})
    csat_days(app, team["agent"], {start + timedelta(days=n): 0.8 for n in range(7, 10)})
    assert _evaluate(app, TODAY).startswith("raised 1")
    assert _count(app, Alert) == 2


def test_a_team_rule_only_watches_its_team(app, team, make_user, make_team, default_rule):
    outsider = make_user({Role.AGENT}, agent_no="X", team=make_team("二组"))
    with app.app_context():
        db.session.get(AlertRule, default_rule).team_id = team["team"].id
        db.session.commit()
    csat_days(app, outsider, {TODAY - timedelta(days=n): 0.5 for n in (1, 2, 3)})
    assert _evaluate(app).startswith("raised 0")


def _plan_for(app, team) -> int:
    csat_days(app, team["agent"], {TODAY - timedelta(days=n): 0.75 for n in (1, 2, 3)})
    _evaluate(app)
    with app.app_context():
        return db.session.scalar(select(ImprovementPlan.id))


def _client(app, agent_no):
    client = app.test_client()
    login(client, agent_no)
    return client


def test_the_lead_follows_up_and_closes_the_plan_and_the_agent_is_told(app, team):
    plan_id = _plan_for(app, team)
    agent, lead = _client(app, "A"), _client(app, "L")
    page = agent.get(f"/improvement-plans/{plan_id}").get_data(True)
    assert "75.0%" in page and "您的组长会与您一起跟进" in page
    assert _client(app, "B").get(f"/improvement-plans/{plan_id}").status_code == 403
    assert post(agent, f"/improvement-plans/{plan_id}/close", {"note": "x"}).status_code == 403
    assert post(lead, f"/improvement-plans/{plan_id}/notes", {"text": " "}).status_code == 422
    assert (
        post(lead, f"/improvement-plans/{plan_id}/notes", {"text": "辅导话术"}).status_code == 302
    )
    refused = post(lead, f"/improvement-plans/{plan_id}/close", {"note": ""})
    assert refused.status_code == 422 and "请填写结案说明" in refused.get_data(True)
    assert (
        post(lead, f"/improvement-plans/{plan_id}/close", {"note": "已连续一周达标"}).status_code
        == 302
    )
    page = agent.get(f"/improvement-plans/{plan_id}").get_data(True)
    assert "辅导话术" in page and "已连续一周达标" in page
    with app.app_context():
        kinds = db.session.scalars(
            select(Notification.kind).where(Notification.user_id == team["agent"].id)
        ).all()
        assert kinds == ["alert", "plan_closed"]
    assert "改进计划" in lead.get("/improvement-plans?status=closed").get_data(True)
    assert "甲" not in _client(app, "B").get("/improvement-plans?status=all").get_data(True)


def test_admins_add_rules_in_the_units_people_read(app, make_user, default_rule):
    make_user({Role.ADMIN}, agent_no="admin")
    admin = _client(app, "admin")
    form = {
        "name": "AHT 连续偏高",
        "metric": "aht",
        "comparison": "above",
        "threshold": "480",
        "days": "5",
        "scope": "",
    }
    assert post(admin, "/alerts/rules", form).status_code == 302
    assert (
        post(admin, "/alerts/rules", {**form, "metric": "fcr", "threshold": "70"}).status_code
        == 302
    )
    bad = post(admin, "/alerts/rules", {**form, "days": "0"})
    assert bad.status_code == 422 and "1 到 31 天" in bad.get_data(True)
    with app.app_context():
        thresholds = db.session.scalars(select(AlertRule.threshold).order_by(AlertRule.id)).all()
        assert thresholds == [0.85, 480, 0.70]
    page = admin.get("/alerts/rules").get_data(True)
    assert "首次解决率 高于 70.0%,连续 5 天" in page
    assert "平均处理时长 高于 480 秒" in page
    rule_id = default_rule
    assert post(admin, f"/alerts/rules/{rule_id}/active", {"active": "0"}).status_code == 302
    with app.app_context():
        assert db.session.get(AlertRule, rule_id).active is False
