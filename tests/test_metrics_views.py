"""The metric screens: own metrics, the lead's team table, the center's queues."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.accounts.models import User
from portal.extensions import db
from tests.conftest import login
from tests.test_metrics import scenario  # noqa: F401 - the shared data set

HX = {"HX-Request": "true"}


def _id(app, agent_no: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.agent_no == agent_no))


def test_agent_sees_own_metrics_with_samples_and_trends(app, scenario):  # noqa: F811
    client = app.test_client()
    login(client, "A")
    page = client.get("/metrics/me?period=2026-11", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    aht = re.search(r'id="metrics-aht">(.*?)</tr>', html, re.S).group(1)
    assert "178 秒" in aht and "<td>4</td>" in aht  # 177.5 s over 4 contacts
    csat = re.search(r'id="metrics-csat">(.*?)</tr>', html, re.S).group(1)
    assert "66.7%" in csat and "<td>3</td>" in csat
    peer = re.search(r'id="metrics-peer_score">(.*?)</tr>', html, re.S).group(1)
    assert "暂无数据" in peer  # no value, not 0
    assert "<svg" in html and "polyline" in html  # the daily trend, drawn on the server


def test_agent_cannot_open_another_agents_metrics(app, scenario):  # noqa: F811
    client = app.test_client()
    login(client, "A")
    assert client.get(f"/metrics/agents/{_id(app, 'B')}").status_code == 403
    assert client.get("/metrics/center").status_code == 403


def test_period_change_answers_the_metrics_fragment(app, scenario):  # noqa: F811
    client = app.test_client()
    login(client, "A")
    response = client.get(f"/metrics/agents/{_id(app, 'A')}?period=2026-10", headers=HX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="metrics-agent"' in html
    assert client.get(f"/metrics/agents/{_id(app, 'A')}?period=nonsense").status_code == 404


@pytest.mark.parametrize("key", ["9999-W52", "9999-12", "9999-Q4", "1999-12", "2100-01"])
def test_period_keys_outside_the_portals_years_are_refused_not_crashed(
    app,
    scenario,  # noqa: F811
    make_user,
    runner,
    key,
):
    from portal.accounts.models import Role, Team

    make_user({Role.ADMIN}, agent_no="boss")
    with app.app_context():
        team_id = db.session.scalar(select(Team.id).where(Team.name == "一组"))
    client = app.test_client()
    login(client, "boss")
    for url in ("/metrics/me", f"/metrics/teams/{team_id}", "/metrics/center"):
        response = client.get(f"{url}?period={key}", follow_redirects=True)
        assert response.status_code == 404, url  # as any other key that names no period
    result = runner.invoke(args=["metrics", "export", "--period", key])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # no traceback
    assert result.output.strip().splitlines() == [
        f"Error: '{key}' is not a period key of the years 2000 to 2099; "
        "use 2026-11 (month), 2026-W47 (ISO week) or 2026-Q4."
    ]


def _team_id(app, name: str = "一组") -> int:
    from portal.accounts.models import Team

    with app.app_context():
        return db.session.scalar(select(Team.id).where(Team.name == name))


def test_choosing_a_period_swaps_the_date_range_and_picker_with_the_figures(
    app,
    scenario,  # noqa: F811
    make_user,
):
    from portal.accounts.models import Role

    make_user({Role.ADMIN}, agent_no="boss")
    client = app.test_client()
    login(client, "boss")
    team = _team_id(app)
    october = "2026-10-01 至 2026-10-31"
    for url, target in [
        (f"/metrics/agents/{_id(app, 'A')}", "metrics-agent"),
        (f"/metrics/teams/{team}", "metrics-team"),
        ("/metrics/center", "metrics-center"),
    ]:
        # What htmx swaps into the page when the picker changes: the whole block with its id.
        fragment = client.get(f"{url}?period=2026-10", headers=HX).get_data(as_text=True)
        assert "<html" not in fragment and f'id="{target}"' in fragment, url
        assert october in fragment, url  # the range said there changes with the table
        assert '<option value="2026-10" selected>' in fragment, url
        # Without htmx the picker is a plain form that reloads the page.
        page = client.get(f"{url}?period=2026-10").get_data(as_text=True)
        assert f'<form method="get" class="portal-filters" action="{url}"' in page, url


def test_choosing_a_period_on_the_team_page_keeps_the_sort(app, scenario):  # noqa: F811
    client = app.test_client()
    login(client, "L1")
    team = _team_id(app)
    fragment = client.get(
        f"/metrics/teams/{team}?period=2026-11&sort=aht&dir=desc", headers=HX
    ).get_data(as_text=True)
    picker = re.search(r'<form method="get" class="portal-filters".*?</form>', fragment, re.S)
    assert '<input type="hidden" name="sort" value="aht">' in picker.group(0)
    assert '<input type="hidden" name="dir" value="desc">' in picker.group(0)
    # What the picker then asks for (its form fields) keeps B's 380 s before A's 177.5 s.
    chosen = client.get(f"/metrics/teams/{team}?sort=aht&dir=desc&period=2026-11", headers=HX)
    html = chosen.get_data(as_text=True)
    assert html.index("李娜") < html.index("王芳") and "平均处理时长 ▼" in html
    plain = client.get(f"/metrics/teams/{team}?period=2026-11", headers=HX).get_data(as_text=True)
    assert 'type="hidden"' not in plain  # the default order needs nothing kept


def _cells(html: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S).group(1)
    return [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", row, re.S)]


def test_lead_sees_every_agent_metric_with_its_sample_and_the_teams_figures(
    app,
    scenario,  # noqa: F811
):
    from portal.metrics.compute import AGENT_CODES

    client = app.test_client()
    login(client, "L1")
    team = _team_id(app)
    html = client.get(f"/metrics/teams/{team}?period=2026-11").get_data(as_text=True)
    for code in AGENT_CODES:  # all 15 of metrics.md §4, each sortable
        assert f"sort={code}&amp;" in html, code
    a = dict(zip(AGENT_CODES, _cells(html, f"metrics-member-{_id(app, 'A')}")[1:], strict=True))
    b = dict(zip(AGENT_CODES, _cells(html, f"metrics-member-{_id(app, 'B')}")[1:], strict=True))
    muted = '<br><small class="portal-muted">'
    assert a["aht"] == f"178 秒{muted}n=4</small>"  # 177.5 s over 4 contacts
    assert a["csat"] == f"66.7%{muted}n=3</small>"  # over 3 survey answers
    assert a["qa_score"] == f"85.0{muted}n=2</small>"
    assert a["knowledge_contrib"] == f"3{muted}n=1</small>"  # supplied (metrics.md §3)
    assert b["brand_sentiment"] == f"88.0{muted}n=1</small>"
    # No source yet, or no data: no value, never 0, and no sample size.
    assert a["training_completion"] == a["peer_score"] == a["brand_sentiment"] == "—"
    assert b["knowledge_contrib"] == b["soothing_rate"] == "—"
    pooled = dict(zip(AGENT_CODES, _cells(html, "metrics-team-pooled")[1:], strict=True))
    assert pooled["aht"] == f"245 秒{muted}n=6</small>"
    # The team's own §5 figures: i1-i6 and i10 (i7 and i8 were abandoned in the queue).
    summary = re.search(r'id="metrics-team-summary">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", summary) == [
        f"7{muted}n=7</small>",
        f"85.7%{muted}n=7</small>",
        f"14.3%{muted}n=7</small>",  # i6 rang at B unanswered
        f"57.1%{muted}n=7</small>",
        f"14 秒{muted}n=6</small>",
    ]
    # A new column sorts like the others, no value last either way.
    for direction in ("asc", "desc"):
        by_sentiment = client.get(
            f"/metrics/teams/{team}?period=2026-11&sort=brand_sentiment&dir={direction}"
        ).get_data(as_text=True)
        assert by_sentiment.index("李娜") < by_sentiment.index("王芳")


def test_empty_period_says_there_is_no_data(app, scenario):  # noqa: F811
    client = app.test_client()
    login(client, "C")
    html = client.get("/metrics/me?period=2026-11", follow_redirects=True).get_data(as_text=True)
    assert "该周期暂无数据" in html


def test_lead_sees_own_team_sortable_and_not_another(app, scenario, make_user, make_team):  # noqa: F811
    client = app.test_client()
    login(client, "L1")
    with app.app_context():
        from portal.accounts.models import Team

        one = db.session.scalar(select(Team.id).where(Team.name == "一组"))
        two = db.session.scalar(select(Team.id).where(Team.name == "二组"))
    html = client.get(f"/metrics/teams/{one}?period=2026-11&sort=aht&dir=desc").get_data(
        as_text=True
    )
    assert html.index("李娜") < html.index("王芳")  # B's AHT 380 s before A's 177.5 s
    ascending = client.get(f"/metrics/teams/{one}?period=2026-11&sort=aht").get_data(as_text=True)
    assert ascending.index("王芳") < ascending.index("李娜")
    assert "团队(合并计算)" in html and "245 秒" in html  # pooled, not a mean of means
    assert client.get(f"/metrics/teams/{two}").status_code == 403
    assert client.get(f"/metrics/agents/{_id(app, 'A')}?period=2026-11").status_code == 200
    assert client.get(f"/metrics/agents/{_id(app, 'C')}").status_code == 403


def test_admin_sees_queues_by_day_with_charts(app, scenario, make_user):  # noqa: F811
    from portal.accounts.models import Role

    make_user({Role.ADMIN}, agent_no="boss")
    client = app.test_client()
    login(client, "boss")
    html = client.get("/metrics/center?period=2026-11").get_data(as_text=True)
    assert "Q1" in html and "Q2" in html
    assert "80.0%" in html  # Q1 answer rate
    assert html.count("<svg") >= 5
    empty = client.get("/metrics/center?period=2025-01").get_data(as_text=True)
    assert "该周期暂无话单" in empty


def test_team_daily_sums_pool_the_members_days(app, scenario):  # noqa: F811
    from portal.accounts.models import Team
    from portal.metrics import compute
    from portal.metrics.periods import parse_period

    with app.app_context():
        team = db.session.scalar(select(Team).where(Team.name == "一组"))
        daily = compute.team_daily(parse_period("2026-11"), team)
        assert {str(d): m.values["offered"] for d, m in daily.items()} == {
            "2026-11-01": 1,  # i10
            "2026-11-03": 2,  # i1 i2
            "2026-11-04": 1,  # i4, offered before midnight
            "2026-11-05": 1,  # i6, rang at B unanswered
            "2026-11-06": 1,  # i3
            "2026-11-08": 1,  # i5
        }
        assert daily[parse_period("2026-11").first_day].values["asa"] == 2
    client = app.test_client()
    login(client, "L1")
    html = client.get(f"/metrics/teams/{team.id}?period=2026-11").get_data(as_text=True)
    assert "每日趋势" in html and "polyline" in html


def test_deactivated_members_stay_in_the_team_table_that_pools_them(app, scenario):  # noqa: F811
    from portal.accounts.models import Team

    with app.app_context():
        user = db.session.scalar(select(User).where(User.agent_no == "B"))
        user.active = False
        db.session.commit()
        team_id = db.session.scalar(select(Team.id).where(Team.name == "一组"))
    client = app.test_client()
    login(client, "L1")
    html = client.get(f"/metrics/teams/{team_id}?period=2026-11").get_data(as_text=True)
    assert "李娜" in html and "已停用" in html
    assert "245 秒" in html  # the pooled row still includes B's contacts, as the rows do
