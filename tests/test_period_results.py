"""Closed periods on the score screens and through the API: the frozen results version the
viewer may see, never recomputed; open periods computed now and marked provisional (暂定)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.api.services import create_token
from portal.extensions import db
from portal.metrics.models import SuppliedValue
from portal.metrics.periods import parse_period
from portal.periods import services
from portal.periods.models import PeriodRow
from portal.scoring.services import save_plan
from tests.conftest import login
from tests.test_plans import SUPPLIED_PLAN

AFTER_CLOSE = datetime(2026, 12, 5, tzinfo=UTC)
NOV = "?period=2026-11"


def build_world(app, make_user, make_team):
    """Team 一组 (lead L): A scores 110 (kc 5, bs 85), B 80 (kc 3.5). Team 二组: C, no data."""
    with app.app_context():
        position_id = save_plan(None, SUPPLIED_PLAN).plan.position_id
        db.session.commit()
    lead = make_user({Role.TEAM_LEAD}, agent_no="L")
    one, two = make_team("一组", leads=[lead]), make_team("二组")
    people = {
        "A": make_user({Role.AGENT}, agent_no="A", name="甲", team=one, position=position_id),
        "B": make_user({Role.AGENT}, agent_no="B", name="乙", team=one, position=position_id),
        "C": make_user({Role.AGENT}, agent_no="C", name="丙", team=two, position=position_id),
        "L": lead,
        "admin": make_user({Role.ADMIN}, agent_no="admin", name="管理员"),
    }
    with app.app_context():
        for no, metric, value in [
            ("A", "knowledge_contrib", 5),
            ("A", "brand_sentiment", 85),
            ("B", "knowledge_contrib", 3.5),
        ]:
            supply(people[no].id, metric, value)
        db.session.commit()
    return people, one, two


def supply(agent_id: int, metric: str, value: float, key: str = "2026-11") -> None:
    """Set an agent's supplied metric value for a period (data arriving or corrected)."""
    found = db.session.scalar(
        select(SuppliedValue).where(
            SuppliedValue.agent_id == agent_id,
            SuppliedValue.period_key == key,
            SuppliedValue.metric == metric,
        )
    )
    if found is None:
        db.session.add(SuppliedValue(agent_id=agent_id, period_key=key, metric=metric, value=value))
    else:
        found.value = value


def close(app, key: str = "2026-11") -> int:
    """Close the period as the scheduler would; returns its id."""
    with app.app_context():
        row = services.ensure_period(parse_period(key))
        db.session.commit()
        outcome = services.close_period(row, AFTER_CLOSE)
        assert outcome.status == "closed", outcome.message
        return row.id


def publish(app, period_id: int) -> None:
    """Mark the period's latest results version published to agents."""
    with app.app_context():
        row = db.session.get(PeriodRow, period_id)
        row.published_at, row.published_version = AFTER_CLOSE, row.results_version
        db.session.commit()


def change_everything(app) -> None:
    """After the close: A's data drops (110 → 60) and the plan's targets move."""
    with app.app_context():
        agent = db.session.scalar(select(User).where(User.agent_no == "A"))
        supply(agent.id, "knowledge_contrib", 2)
        supply(agent.id, "brand_sentiment", 60)
        plan = {**SUPPLIED_PLAN, "base_bonus": 500}
        plan["lines"] = [
            {**line, "weight": 80 if i == 0 else 20} for i, line in enumerate(plan["lines"])
        ]
        save_plan(None, plan)
        db.session.commit()


@pytest.fixture
def world(app, make_user, make_team):
    return build_world(app, make_user, make_team)


def _client(app, agent_no):
    client = app.test_client()
    login(client, agent_no)
    return client


def _page(app, who: str, url: str) -> str:
    response = _client(app, who).get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def test_open_periods_are_computed_now_and_marked_provisional(app, world):
    people, one, _ = world
    html = _page(app, "A", f"/scores/agents/{people['A'].id}{NOV}")
    assert 'id="scoring-final">110.00<' in html
    assert "暂定" in html and 'id="scoring-next"' in html
    assert "暂定" in _page(app, "L", f"/scores/teams/{one.id}/heatmap{NOV}")
    change_everything(app)  # still open: the screens follow the data
    html = _page(app, "A", f"/scores/agents/{people['A'].id}{NOV}")
    assert 'id="scoring-final">110.00<' not in html


def test_closed_period_screens_show_the_frozen_results_whatever_changes_later(app, world):
    people, one, _ = world
    publish(app, close(app))
    change_everything(app)
    a = people["A"].id
    html = _page(app, "A", f"/scores/agents/{a}{NOV}")
    assert 'id="scoring-final">110.00<' in html
    assert 'id="scoring-tier">×2.0<' in html and "1600.00" in html  # base bonus 800 then
    assert "<mark>最终</mark>" in html and "暂定" not in html
    assert "第 1 名,共 2 人" in html
    assert 'id="scoring-next"' not in html  # nothing left to reach in a closed period
    explain = _page(app, "A", f"/scores/agents/{a}/explain{NOV}")
    assert 'id="scoring-explain-final">110.00<' in explain
    assert 'id="scoring-weighted">110.00<' in explain
    assert "方案第 1 版" in explain  # the plan version it was scored under, not the new one
    assert "达到挑战值:120" in explain  # the rule, from the frozen value and band
    b_explain = _page(app, "B", f"/scores/agents/{people['B'].id}/explain{NOV}")
    assert "本期无数据:不计入,其余权重按比例放大" in b_explain
    assert 'id="scoring-explain-final">80.00<' in b_explain
    heat = _page(app, "L", f"/scores/teams/{one.id}/heatmap{NOV}")
    assert "甲" in heat and "乙" in heat and "丙" not in heat
    assert "<strong>110.00</strong>" in heat and "最终" in heat
    download = _client(app, "admin").get("/scores/export?period=2026-11&format=csv")
    rows = list(csv.DictReader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert {r["agent_no"]: (r["final"], r["status"]) for r in rows} == {
        "A": ("110", "final"),
        "B": ("80", "final"),
        "C": ("", "final"),
    }
    # The open period next to it is still computed now, from the changed data.
    with app.app_context():
        for metric, value in [("knowledge_contrib", 5), ("brand_sentiment", 85)]:
            supply(a, metric, value, key="2026-12")
        db.session.commit()
    december = _page(app, "A", f"/scores/agents/{a}?period=2026-12")
    assert "暂定" in december and 'id="scoring-final">110.00<' not in december  # new plan


def test_an_agent_waits_for_the_publication_while_their_lead_sees_the_results(app, world):
    people, one, _ = world
    period_id = close(app)
    a = people["A"].id
    for page in ("", "/explain", "/simulate"):
        html = _page(app, "A", f"/scores/agents/{a}{page}{NOV}")
        assert 'id="scoring-awaiting"' in html and "等待发布" in html
        assert "110.00" not in html
    lead = _page(app, "L", f"/scores/agents/{a}{NOV}")
    assert 'id="scoring-final">110.00<' in lead and 'id="scoring-unpublished"' in lead
    admin_heat = _page(app, "admin", f"/scores/teams/{one.id}/heatmap{NOV}")
    assert "<strong>110.00</strong>" in admin_heat
    publish(app, period_id)
    html = _page(app, "A", f"/scores/agents/{a}{NOV}")
    assert 'id="scoring-final">110.00<' in html and 'id="scoring-awaiting"' not in html
    assert 'id="scoring-unpublished"' not in html


def test_agents_see_the_published_version_and_leads_the_newest(app, world):
    people, *_ = world
    period_id = close(app)
    publish(app, period_id)
    with app.app_context():
        supply(people["A"].id, "knowledge_contrib", 2)  # a correction after the close
        db.session.commit()
        row = db.session.get(PeriodRow, period_id)
        admin = db.session.scalar(select(User).where(User.agent_no == "admin"))
        assert services.revise_period(row, admin, "数据更正", AFTER_CLOSE) == 2
        db.session.commit()
    a = people["A"].id
    agent = _page(app, "A", f"/scores/agents/{a}{NOV}")
    assert 'id="scoring-final">110.00<' in agent  # version 1, the published one
    lead = _page(app, "L", f"/scores/agents/{a}{NOV}")
    assert 'id="scoring-final">110.00<' not in lead and "第 2 版" in lead
    assert 'id="scoring-unpublished"' in lead


def test_the_simulator_has_nothing_to_simulate_in_a_closed_period(app, world):
    people, *_ = world
    publish(app, close(app))
    html = _page(app, "A", f"/scores/agents/{people['A'].id}/simulate{NOV}&knowledge_contrib=2")
    assert 'id="scoring-simulate-closed"' in html and 'id="sim-final"' not in html


def test_an_agent_not_scored_at_the_close_is_told_so(app, world, make_user):
    people, *_ = world
    publish(app, close(app))
    with app.app_context():
        position_id = db.session.get(User, people["A"].id).position_id
    late = make_user({Role.AGENT}, agent_no="Z", name="后来者", position=position_id)
    html = _page(app, "Z", f"/scores/agents/{late.id}{NOV}")
    assert "冻结结果中没有" in html


def test_closed_score_screens_are_chinese_with_no_english_left(app, world):
    from tests.test_i18n import _english_phrases

    people, one, _ = world
    period_id = close(app)
    a = people["A"].id
    pages = [
        ("A", f"/scores/agents/{a}{NOV}"),  # awaiting publication
        ("L", f"/scores/agents/{a}{NOV}"),
        ("L", f"/scores/agents/{a}/explain{NOV}"),
        ("L", f"/scores/agents/{a}/simulate{NOV}"),
        ("L", f"/scores/teams/{one.id}/heatmap{NOV}"),
    ]
    for who, url in pages:
        assert _english_phrases(_page(app, who, url)) == [], url
    publish(app, period_id)
    assert _english_phrases(_page(app, "A", f"/scores/agents/{a}/explain{NOV}")) == []


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
def bearer(app, world):
    people, *_ = world
    with app.app_context():
        _token, plain = create_token(db.session.get(User, people["admin"].id), "BI 报表")
        db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def test_the_api_lists_periods_with_their_state_and_versions(app, client, bearer):
    with app.app_context():
        services.ensure_period(parse_period("2026-12"))
        db.session.commit()
    publish(app, close(app))
    response = client.get("/api/v1/periods", headers=bearer)
    assert response.status_code == 200
    found = {p["key"]: p for p in response.get_json()}
    assert set(found) == {"2026-11", "2026-12"}
    november = found["2026-11"]
    assert november["kind"] == "monthly" and november["state"] == "closed"
    assert (november["first_day"], november["last_day"]) == ("2026-11-01", "2026-11-30")
    assert november["closed_at"].startswith("2026-12-05T00:00:00")
    assert november["published_at"] is not None and november["close_at"] is not None
    assert (november["results_version"], november["published_version"]) == (1, 1)
    december = found["2026-12"]
    assert december["closed_at"] is None and december["published_at"] is None
    assert (december["results_version"], december["published_version"]) == (None, None)
    assert client.get("/api/v1/periods").status_code == 401


def test_the_api_gives_published_results_only(app, client, bearer):
    url = "/api/v1/periods/2026-11/results"
    unknown = client.get(url, headers=bearer)
    assert unknown.status_code == 404 and "error" in unknown.get_json()
    period_id = close(app)
    unpublished = client.get(url, headers=bearer)
    assert unpublished.status_code == 404 and "error" in unpublished.get_json()
    publish(app, period_id)
    change_everything(app)
    response = client.get(url, headers=bearer)
    assert response.status_code == 200
    rows = {r["agent_no"]: r for r in response.get_json()}
    assert set(rows) == {"A", "B", "C"}
    a = rows["A"]
    assert (a["final"], a["rank"], a["status"], a["team"]) == (110, 1, "final", "一组")
    assert (a["gate_open"], a["eligible"], a["tier_multiplier"]) == (True, True, 2.0)
    assert [line["metric"] for line in a["lines"]] == ["knowledge_contrib", "brand_sentiment"]
    assert set(a["lines"][0]) == {
        "metric",
        "category",
        "weight",
        "value",
        "score",
        "included",
        "note",
    }
    assert rows["C"]["rank"] is None and rows["C"]["final"] is None
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer pt_nope"}).status_code == 401
    assert client.get("/api/v1/periods/2026-99/results", headers=bearer).status_code == 404


def test_the_openapi_document_describes_the_period_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert set(paths["/periods"]) == {"get"}
    results = paths["/periods/{key}/results"]["get"]
    assert {"200", "401", "404"} <= set(results["responses"])
    row = results["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    assert {"agent_no", "final", "rank", "status", "lines"} <= set(row["properties"])
