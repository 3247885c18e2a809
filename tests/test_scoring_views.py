"""The score screens: each agent sees their own score, explanation and simulator; a lead their
team's; the numbers are the engine's."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.extensions import db
from portal.metrics.models import SuppliedValue
from portal.scoring.services import save_plan
from tests.conftest import login
from tests.test_plans import SUPPLIED_PLAN

PERIOD = "?period=2026-11"
HX = {"HX-Request": "true"}


@pytest.fixture
def world(app, make_user, make_team):
    """Team 一组 (lead L): A scores 110 (kc 5, bs 85), B 80 (kc 3.5 only). Team 二组: C, lead M."""
    with app.app_context():
        position_id = save_plan(None, SUPPLIED_PLAN).plan.position_id
        db.session.commit()
    lead, other_lead = (
        make_user({Role.TEAM_LEAD}, agent_no="L"),
        make_user({Role.TEAM_LEAD}, agent_no="M"),
    )
    one, two = make_team("一组", leads=[lead]), make_team("二组", leads=[other_lead])
    people = {
        "A": make_user({Role.AGENT}, agent_no="A", name="甲", team=one, position=position_id),
        "B": make_user({Role.AGENT}, agent_no="B", name="乙", team=one, position=position_id),
        "C": make_user({Role.AGENT}, agent_no="C", name="丙", team=two, position=position_id),
        "N": make_user({Role.AGENT}, agent_no="N", name="无岗位", team=two),
        "admin": make_user({Role.ADMIN}, agent_no="admin"),
    }
    with app.app_context():
        for no, metric, value in [
            ("A", "knowledge_contrib", 5),
            ("A", "brand_sentiment", 85),
            ("B", "knowledge_contrib", 3.5),
        ]:
            db.session.add(
                SuppliedValue(
                    agent_id=people[no].id, period_key="2026-11", metric=metric, value=value
                )
            )
        db.session.commit()
    return people, one, two


def _client(app, agent_no):
    client = app.test_client()
    login(client, agent_no)
    return client


def test_an_agent_sees_their_score_rank_lines_and_tier(app, world):
    people, *_ = world
    html = _client(app, "A").get(f"/scores/agents/{people['A'].id}{PERIOD}").get_data(True)
    assert 'id="scoring-final">110.00<' in html
    assert 'id="scoring-tier">×2.0<' in html and "1600.00" in html  # 800 × 2.0
    assert "第 1 名,共 2 人" in html
    assert "核心指标" in html and "辅助指标" in html
    assert 'id="scoring-line-knowledge_contrib"' in html
    assert "最高档" in html  # nothing higher to reach


def test_what_it_takes_names_the_change_that_reaches_the_next_tier(app, world):
    people, *_ = world
    html = _client(app, "B").get(f"/scores/agents/{people['B'].id}{PERIOD}").get_data(True)
    assert 'id="scoring-final">80.00<' in html and "×1.0" in html
    assert 'id="scoring-next"' in html and "知识库贡献" in html


@pytest.mark.parametrize("page", ["", "/explain", "/simulate"])
def test_nobody_sees_another_agents_score_by_changing_the_id(app, world, page):
    people, *_ = world
    target = f"/scores/agents/{people['A'].id}{page}{PERIOD}"
    assert _client(app, "B").get(target).status_code == 403
    assert _client(app, "M").get(target).status_code == 403  # lead of another team
    assert _client(app, "L").get(target).status_code == 200  # A's own lead
    assert _client(app, "admin").get(target).status_code == 200
    assert _client(app, "A").get(f"/scores/agents/99999{page}").status_code == 404


def test_the_explanation_shows_every_step_with_its_numbers(app, world):
    people, *_ = world
    html = _client(app, "B").get(f"/scores/agents/{people['B'].id}/explain{PERIOD}").get_data(True)
    assert "本期无数据:不计入,其余权重按比例放大" in html  # brand_sentiment left out
    assert "介于门槛值与目标值之间" in html  # the rule that gave knowledge_contrib 80
    assert 'id="scoring-weighted">80.00<' in html
    assert 'id="scoring-explain-final">80.00<' in html
    assert 'id="scoring-gate-open"' in html


def test_the_simulator_moves_the_score_tier_and_rank_and_saves_nothing(app, world):
    people, *_ = world
    client = _client(app, "A")
    url = f"/scores/agents/{people['A'].id}/simulate{PERIOD}&knowledge_contrib="
    html = client.get(url + "2", headers={"HX-Request": "true"}).get_data(True)
    assert "<html" not in html  # the fragment htmx swaps in
    assert 'id="sim-final">90.00<' in html and 'id="sim-tier">×1.0<' in html
    assert 'id="sim-rank">1<' in html  # still above B's 80
    worse = client.get(url + "0").get_data(True)
    assert 'id="sim-final">60.00<' in worse and 'id="sim-rank">2<' in worse
    bad = client.get(url + "abc").get_data(True)
    assert "请输入不小于 0 的数字" in bad and 'id="sim-final">110.00<' in bad
    again = client.get(f"/scores/agents/{people['A'].id}{PERIOD}").get_data(True)
    assert 'id="scoring-final">110.00<' in again


def test_an_agent_without_position_or_data_gets_a_clear_empty_state(app, world):
    people, *_ = world
    html = _client(app, "N").get(f"/scores/agents/{people['N'].id}{PERIOD}").get_data(True)
    assert "未设置岗位" in html
    html = _client(app, "C").get(f"/scores/agents/{people['C'].id}{PERIOD}").get_data(True)
    assert 'id="scoring-no-data"' in html
    assert _client(app, "C").get("/scores/me?period=2026-13").status_code in (302, 404)


def test_the_heatmap_shows_the_leads_team_and_its_weakest_line(app, world):
    people, one, two = world
    html = _client(app, "L").get(f"/scores/teams/{one.id}/heatmap{PERIOD}").get_data(True)
    assert "甲" in html and "乙" in html and "丙" not in html
    assert 'class="band-beyond"' in html and 'id="scoring-weakest"' in html
    assert _client(app, "L").get(f"/scores/teams/{two.id}/heatmap").status_code == 403
    assert _client(app, "A").get(f"/scores/teams/{one.id}/heatmap").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(User.id).where(User.agent_no == "A"))


def test_choosing_a_period_swaps_its_dates_and_links_with_the_scores(app, world):
    people, one, _ = world
    agent = f"/scores/agents/{people['A'].id}"
    october = "?period=2026-10"
    links = [f"{agent}{october}", f"{agent}/explain{october}", f"{agent}/simulate{october}"]
    links.append(f"/metrics/agents/{people['A'].id}{october}")
    downloads = [f"/scores/export{october}&amp;format={fmt}" for fmt in ("xlsx", "csv")]
    screens = [  # what htmx swaps when the picker changes: the block with every period link
        ("A", agent, "scoring-score", links),
        ("A", f"{agent}/explain", "scoring-explain", links),
        ("L", f"/scores/teams/{one.id}/heatmap", "scoring-heatmap", downloads),
    ]
    for who, url, target, hrefs in screens:
        client = _client(app, who)
        fragment = client.get(url + october, headers=HX).get_data(True)
        assert "<html" not in fragment and f'<div id="{target}">' in fragment, url
        assert "2026-10-01 至 2026-10-31" in fragment, url  # the dates change with the figures
        assert '<option value="2026-10" selected>' in fragment, url
        for href in hrefs:
            assert f'href="{href}"' in fragment, (url, href)
        # Without htmx the picker is a plain form that reloads the page.
        page = client.get(url + october).get_data(True)
        assert f'<form method="get" class="portal-filters" action="{url}"' in page, url


def test_score_screens_are_chinese_with_no_english_left(app, world):
    from tests.test_i18n import _english_phrases

    people, one, _ = world
    pages = [
        ("A", f"/scores/agents/{people['A'].id}{PERIOD}"),
        ("B", f"/scores/agents/{people['B'].id}{PERIOD}"),
        ("B", f"/scores/agents/{people['B'].id}/explain{PERIOD}"),
        ("A", f"/scores/agents/{people['A'].id}/simulate{PERIOD}&knowledge_contrib=1"),
        ("C", f"/scores/agents/{people['C'].id}{PERIOD}"),
        ("N", f"/scores/agents/{people['N'].id}"),
        ("L", f"/scores/teams/{one.id}/heatmap{PERIOD}"),
    ]
    for who, url in pages:
        assert _english_phrases(_client(app, who).get(url).get_data(True)) == [], url


def test_results_download_admins_all_leads_their_team_safe_from_formulas(app, world):
    import csv
    import io

    from openpyxl import load_workbook

    people, *_ = world
    with app.app_context():
        db.session.get(User, people["A"].id).name = "=HYPERLINK(1)"
        db.session.commit()
    url = "/scores/export?period=2026-11&format="
    admin_csv = _client(app, "admin").get(url + "csv")
    assert admin_csv.headers["Content-Disposition"].endswith('results-2026-11.csv"')
    rows = list(csv.DictReader(io.StringIO(admin_csv.get_data().decode("utf-8-sig"))))
    assert sorted(r["agent_no"] for r in rows) == ["A", "B", "C"]
    assert {r["agent_no"]: r["name"] for r in rows}["A"] == "'=HYPERLINK(1)"
    lead = _client(app, "L").get(url + "xlsx")
    sheet = load_workbook(io.BytesIO(lead.get_data())).active
    table = list(sheet.values)
    assert [r[1] for r in table[1:]] == ["A", "B"]  # L's team only
    header = table[0]
    a_row = table[1]
    assert a_row[header.index("name")] == "'=HYPERLINK(1)"
    assert a_row[header.index("final")] == 110  # a number, not text
    assert _client(app, "A").get(url + "csv").status_code == 403
    assert _client(app, "admin").get("/scores/export?period=bad&format=csv").status_code == 404
    assert _client(app, "admin").get("/scores/export?period=2026-11&format=pdf").status_code == 404
