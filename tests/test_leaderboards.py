"""Leaderboards and the awards wall: ranks among the people shown, cohorts, provisional
boards for open periods and frozen ones for closed periods, what agents may see before the
publication, humane mode, points and team boards, most improved, pages and query counts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.awards.models import Award
from portal.awards.services import award_type
from portal.extensions import db
from portal.leaderboards import services
from portal.leaderboards.services import Entry, Standing
from portal.ledger.models import PointsEntry
from portal.metrics.models import SuppliedValue
from portal.metrics.periods import parse_period
from portal.periods import services as periods
from portal.periods.models import PeriodRow
from portal.scoring.services import save_plan
from portal.system.settings import set_setting
from tests.conftest import count_queries, login, post
from tests.test_i18n import _english_phrases
from tests.test_plans import SUPPLIED_PLAN

NOV = "2026-11"
OCT = "2026-10"
OCT_CLOSED = datetime(2026, 11, 3, 16, tzinfo=UTC)  # October's close time (72 h grace)
NOV_CLOSED = datetime(2026, 12, 3, 16, tzinfo=UTC)


# --- pure boards --------------------------------------------------------------------------------


def _standing(agent_id, final, *, cohort="电话客服/regular", team=1, eligible=True, **values):
    return Standing(
        agent_id=agent_id,
        team_id=team,
        position=cohort.split("/")[0],
        cohort=cohort,
        final=final,
        eligible=eligible,
        values=values,
    )


TEAMS = {1: "一组", 2: "二组"}


def test_ranks_are_standard_competition_ranks_on_the_shown_value():
    board = services.final_board(
        [_standing(1, 90.0), _standing(2, 95.5), _standing(3, 90.0), _standing(4, 80.0)]
    )
    assert [(e.key, e.rank) for e in board] == [(2, 1), (1, 2), (3, 2), (4, 4)]


def test_unranked_agents_are_not_on_the_final_board():
    board = services.final_board([_standing(1, 99.0, eligible=False), _standing(2, 70.0)])
    assert [e.key for e in board] == [2]


def test_a_metric_board_puts_the_best_value_first_whichever_way_is_better():
    people = [
        _standing(1, 80, aht=300.0, csat=0.9),
        _standing(2, 80, aht=280.0, csat=0.95),
        _standing(3, 80, csat=0.85),  # no aht line that counts: not on the aht board
        _standing(4, 80, eligible=False, aht=100.0),  # too few contacts: not ranked
    ]
    assert [e.key for e in services.metric_board(people, "aht")] == [2, 1]  # lower is better
    assert [e.key for e in services.metric_board(people, "csat")] == [2, 1, 3]
    assert services.metrics_of(people) == ["aht", "csat"]


def test_groups_are_cohorts_positions_and_teams():
    people = [
        _standing(1, 90, cohort="电话客服/regular", team=1),
        _standing(2, 80, cohort="电话客服/new", team=2),
        _standing(3, 70, cohort="技术支持/regular", team=2),
    ]
    keys = [
        g.key
        for g in services.groups(
            services.Results(parse_period(NOV), "provisional", standings=people), TEAMS
        )
    ]
    assert keys == [
        "cohort:技术支持/regular",
        "cohort:电话客服/new",
        "cohort:电话客服/regular",
        "position:技术支持",
        "position:电话客服",
        "team:1",
        "team:2",
    ]
    phone = [s.agent_id for s in services.in_group(people, "position:电话客服")]
    new = [s.agent_id for s in services.in_group(people, "cohort:电话客服/new")]
    team = [s.agent_id for s in services.in_group(people, "team:2")]
    assert (phone, new, team) == ([1, 2], [2], [2, 3])


def test_team_board_ranks_teams_by_the_mean_final_of_ranked_members():
    board = services.team_board(
        [
            _standing(1, 90.0, team=1),
            _standing(2, 80.0, team=1),
            _standing(3, 100.0, team=1, eligible=False),  # not ranked: not counted
            _standing(4, 86.0, team=2),
            _standing(5, 70.0, team=None),  # no team
        ]
    )
    assert [(e.key, e.value, e.members, e.rank) for e in board] == [
        (2, 86.0, 1, 1),
        (1, 85.0, 2, 2),
    ]


def test_most_improved_ranks_the_rise_of_people_ranked_in_both_periods():
    before = [_standing(1, 70.0), _standing(2, 85.0), _standing(3, 60.0, eligible=False)]
    now = [
        _standing(1, 82.5),  # +12.5
        _standing(2, 88.0),  # +3
        _standing(3, 90.0),  # not ranked before
        _standing(4, 95.0),  # new this period
    ]
    board = services.improved_board(now, before)
    assert [(e.key, e.value, e.rank, e.previous) for e in board] == [
        (1, 12.5, 1, 70.0),
        (2, 3.0, 2, 85.0),
    ]
    assert services.improved_board([_standing(1, 65.0)], before) == []  # fell: not listed


def test_humane_mode_shows_the_top_and_the_viewers_neighbourhood_never_the_bottom():
    entries = services.rank(Entry(key=n, name=str(n), value=100 - n) for n in range(1, 21))
    rows = services.humane(entries, 10, top_n=3)
    assert [e.key if e else None for e in rows] == [1, 2, 3, None, 8, 9, 10, 11, 12]
    assert 20 not in [e.key for e in rows if e]
    near_top = services.humane(entries, 4, top_n=3)
    assert [e.key for e in near_top] == [1, 2, 3, 4, 5, 6]  # no gap: one block
    anonymous = services.humane(entries, None, top_n=5)
    assert [e.key for e in anonymous] == [1, 2, 3, 4, 5]


def test_full_mode_pages_through_the_whole_list():
    entries = services.rank(Entry(key=n, name=str(n), value=100 - n) for n in range(1, 8))
    found = services.shown(entries, 7, humane_mode=False, top_n=3, page=3, per_page=3)
    assert [e.key for e in found.rows] == [7]
    assert (found.page.pages, found.page.has_prev, found.page.has_next) == (3, True, False)
    assert found.mine.rank == 7 and found.total == 7


# --- boards over HTTP ---------------------------------------------------------------------------


def _supply(agent_id: int, period: str, kc: float) -> SuppliedValue:
    return SuppliedValue(agent_id=agent_id, period_key=period, metric="knowledge_contrib", value=kc)


@pytest.fixture
def world(app, make_user, make_team):
    """The supplied-values plan (knowledge contributions only: kc 2 → 60, 5 → 100, 10 → 120).
    Team 一组 (lead L): A01–A08; team 二组 (lead M): A09–A12. A(n) has kc 2 + 0.5·n in November
    and 2 + 0.25·n in October; N01 is a new agent (its own cohort); X is inactive and Z an admin
    with a position but no agent role (both with the best value)."""
    with app.app_context():
        position_id = save_plan(None, SUPPLIED_PLAN).plan.position_id
        db.session.commit()
    lead, other = (
        make_user({Role.TEAM_LEAD}, agent_no="L"),
        make_user({Role.TEAM_LEAD}, agent_no="M"),
    )
    one, two = make_team("一组", leads=[lead]), make_team("二组", leads=[other])
    people = {}
    for n in range(1, 13):
        no = f"A{n:02d}"
        people[no] = make_user(
            {Role.AGENT},
            agent_no=no,
            name=f"坐席{n}",
            team=one if n <= 8 else two,
            position=position_id,
        )
    people["N01"] = make_user(
        {Role.AGENT}, agent_no="N01", team=one, position=position_id, hire_date=date(2026, 11, 1)
    )
    people["X"] = make_user(
        {Role.AGENT}, agent_no="X", team=one, position=position_id, active=False
    )
    people["Z"] = make_user({Role.ADMIN}, agent_no="Z", team=one, position=position_id)
    people["admin"] = make_user({Role.ADMIN}, agent_no="admin")
    people["qa"] = make_user({Role.QA}, agent_no="qa")
    people["L"], people["M"] = lead, other
    with app.app_context():
        for n in range(1, 13):
            agent_id = people[f"A{n:02d}"].id
            db.session.add(_supply(agent_id, NOV, 2 + 0.5 * n))
            db.session.add(_supply(agent_id, OCT, 2 + 0.25 * n))
        for no in ("N01", "X", "Z"):
            db.session.add(_supply(people[no].id, NOV, 10))
            db.session.add(_supply(people[no].id, OCT, 10))
        db.session.commit()
    return people, one, two


def _client(app, agent_no):
    client = app.test_client()
    login(client, agent_no)
    return client


def _rows(html: str) -> list[str]:
    """The ids of the board's rows, top to bottom."""
    return re.findall(r'id="leaderboards-row-(\d+)"', html)


def _ids(people, *nos) -> list[str]:
    return [str(people[no].id) for no in nos]


def _close(app, key: str, now: datetime) -> None:
    with app.app_context():
        row = periods.ensure_period(parse_period(key))
        db.session.commit()
        assert periods.close_period(row, now).status == "closed"


def _publish(app, key: str) -> None:
    with app.app_context():
        row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
        periods.publish_period(row, None, NOV_CLOSED)
        db.session.commit()


def set_humane(app, on: bool, top_n: int = 10) -> None:
    with app.app_context():
        set_setting("leaderboard_humane", on, None)
        set_setting("leaderboard_top_n", top_n, None)
        db.session.commit()


def test_the_open_periods_board_is_provisional_ranked_by_final_in_the_viewers_cohort(app, world):
    people, *_ = world
    set_humane(app, False)
    html = _client(app, "A03").get(f"/leaderboards?period={NOV}").get_data(True)
    assert 'id="leaderboards-provisional"' in html and "暂定" in html
    # A12 kc 8 → 112; … A01 kc 2.5 → 66.67; inactive X, admin-only Z and the new N01 are not here
    assert _rows(html) == _ids(people, *[f"A{n:02d}" for n in range(12, 0, -1)])
    assert "112.00" in html and "66.67" in html
    assert "你在 12 人中排第 10 名" in html
    new = _client(app, "N01").get(f"/leaderboards?period={NOV}").get_data(True)
    assert _rows(new) == _ids(people, "N01")  # the new agents' cohort is ranked apart


def test_a_provisional_board_is_kept_for_a_while_and_says_when_it_was_scored(
    app, world, monkeypatch
):
    people, *_ = world
    set_humane(app, False)
    monkeypatch.setitem(app.config, "LEADERBOARD_LIVE_SECONDS", 3600)
    client = _client(app, "A03")
    html = client.get(f"/leaderboards?period={NOV}").get_data(True)
    assert "刷新一次" in html and "112.00" in html
    with app.app_context():  # new data: A01 now has the best value
        supplied = db.session.scalar(
            select(SuppliedValue).where(
                SuppliedValue.agent_id == people["A01"].id, SuppliedValue.period_key == NOV
            )
        )
        supplied.value = 10
        db.session.commit()
    kept = client.get(f"/leaderboards?period={NOV}").get_data(True)
    assert _rows(kept)[0] == str(people["A12"].id)  # the kept scoring, as its time says
    monkeypatch.setitem(app.config, "LEADERBOARD_LIVE_SECONDS", 0)
    fresh = client.get(f"/leaderboards?period={NOV}").get_data(True)
    assert _rows(fresh)[0] == str(people["A01"].id)


def test_an_unranked_agent_is_told_so_and_not_listed(app, world, make_user):
    people, one, _two = world
    with app.app_context():
        position_id = db.session.get(User, people["A01"].id).position_id
    make_user({Role.AGENT}, agent_no="A99", team=one, position=position_id)  # no data yet
    html = _client(app, "A99").get(f"/leaderboards?period={NOV}").get_data(True)
    assert "你本期暂未参与排名" in html and len(_rows(html)) == 10  # the top 10 of 12


def test_humane_mode_shows_top_n_the_viewers_neighbourhood_and_rank_not_the_bottom(app, world):
    people, *_ = world
    set_humane(app, True, top_n=3)
    html = _client(app, "A06").get(f"/leaderboards?period={NOV}").get_data(True)
    # A06 ranks 7 of 12: the top 3, a gap, then ranks 5–9; ranks 10–12 (A03–A01) stay hidden
    assert _rows(html) == _ids(people, "A12", "A11", "A10", "A08", "A07", "A06", "A05", "A04")
    assert 'class="portal-gap"' in html
    assert "你在 12 人中排第 7 名" in html and 'aria-current="true"' in html
    assert str(people["A01"].id) not in _rows(html)
    lead = _client(app, "L").get(f"/leaderboards?period={NOV}").get_data(True)
    assert _rows(lead) == _ids(people, "A12", "A11", "A10")  # no row of their own: the top only


def test_full_mode_pages_through_every_ranked_agent(app, world, monkeypatch):
    people, *_ = world
    set_humane(app, False)
    monkeypatch.setattr(services, "PER_PAGE", 5)
    client = _client(app, "A06")
    first = client.get(f"/leaderboards?period={NOV}").get_data(True)
    assert _rows(first) == _ids(people, "A12", "A11", "A10", "A09", "A08")
    assert "第 1 / 3 页" in first
    last = client.get(f"/leaderboards?period={NOV}&page=3").get_data(True)
    assert _rows(last) == _ids(people, "A02", "A01")
    assert "你在 12 人中排第 7 名" in last  # one's own rank on every page
    partial = client.get(f"/leaderboards?period={NOV}&page=2", headers={"HX-Request": "true"})
    assert "<html" not in partial.get_data(True)
    assert _rows(partial.get_data(True)) == _ids(people, "A07", "A06", "A05", "A04", "A03")


def test_cohorts_positions_and_teams_can_be_compared(app, world):
    people, one, two = world
    set_humane(app, False)
    client = _client(app, "admin")
    team = client.get(f"/leaderboards?period={NOV}&group=team:{two.id}").get_data(True)
    assert _rows(team) == _ids(people, "A12", "A11", "A10", "A09")
    whole = client.get(f"/leaderboards?period={NOV}&group=position:知识专员").get_data(True)
    assert _rows(whole)[0] == str(people["N01"].id) and len(_rows(whole)) == 13
    new = client.get(f"/leaderboards?period={NOV}&group=cohort:知识专员/new").get_data(True)
    assert _rows(new) == _ids(people, "N01")
    unknown = client.get(f"/leaderboards?period={NOV}&group=team:99999").get_data(True)
    assert len(_rows(unknown)) == 12  # an unknown group falls back to the largest cohort


def test_a_metric_board_ranks_by_the_lines_value(app, world):
    people, *_ = world
    set_humane(app, False)
    url = f"/leaderboards?period={NOV}&board=metric&metric=knowledge_contrib"
    html = _client(app, "A03").get(url).get_data(True)
    assert _rows(html)[:2] == _ids(people, "A12", "A11")
    assert "知识库贡献" in html and ">8<" in html  # the value, as the metric is shown


def test_a_closed_period_is_read_from_its_snapshot_and_later_data_changes_nothing(app, world):
    people, *_ = world
    set_humane(app, False)
    _close(app, NOV, NOV_CLOSED)
    with app.app_context():
        supplied = db.session.scalar(
            select(SuppliedValue).where(
                SuppliedValue.agent_id == people["A01"].id, SuppliedValue.period_key == NOV
            )
        )
        supplied.value = 10  # data arriving after the close
        db.session.commit()
    html = _client(app, "admin").get(f"/leaderboards?period={NOV}").get_data(True)
    assert 'id="leaderboards-final"' in html and "暂定" not in html
    assert _rows(html)[-1] == str(people["A01"].id) and "66.67" in html
    with app.app_context():  # people who left, or are no longer agents, leave the boards
        db.session.get(User, people["A12"].id).active = False
        db.session.get(User, people["A11"].id).set_roles({Role.ADMIN})
        db.session.commit()
    html = _client(app, "admin").get(f"/leaderboards?period={NOV}").get_data(True)
    assert _rows(html)[:2] == _ids(people, "A10", "A09") and len(_rows(html)) == 10


def test_agents_see_nothing_of_a_closed_period_until_it_is_published(app, world):
    people, *_ = world
    _close(app, NOV, NOV_CLOSED)
    for viewer in ("A03", "qa"):
        html = _client(app, viewer).get(f"/leaderboards?period={NOV}").get_data(True)
        assert 'id="leaderboards-awaiting"' in html and _rows(html) == [], viewer
        teams = _client(app, viewer).get(f"/leaderboards?period={NOV}&board=teams")
        assert _rows(teams.get_data(True)) == []
    lead = _client(app, "L").get(f"/leaderboards?period={NOV}").get_data(True)
    assert 'id="leaderboards-final"' in lead and len(_rows(lead)) == 10
    _publish(app, NOV)
    html = _client(app, "A03").get(f"/leaderboards?period={NOV}").get_data(True)
    assert 'id="leaderboards-final"' in html and "你在 12 人中排第 10 名" in html


def test_a_revised_period_shows_admins_the_new_version_and_agents_the_published_one(app, world):
    people, *_ = world
    set_humane(app, False)
    _close(app, NOV, NOV_CLOSED)
    _publish(app, NOV)
    agent, admin = _client(app, "A03"), _client(app, "admin")
    assert _rows(agent.get(f"/leaderboards?period={NOV}").get_data(True))[-1] == str(
        people["A01"].id
    )
    with app.app_context():
        supplied = db.session.scalar(
            select(SuppliedValue).where(
                SuppliedValue.agent_id == people["A01"].id, SuppliedValue.period_key == NOV
            )
        )
        supplied.value = 9.5  # an appeal's outcome, say: A01 now scores 118
        row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == NOV))
        admin_user = db.session.scalar(select(User).where(User.agent_no == "admin"))
        periods.revise_period(row, admin_user, "申诉改判", NOV_CLOSED + timedelta(days=2))
        db.session.commit()
    revised = admin.get(f"/leaderboards?period={NOV}").get_data(True)
    assert "第 2 版" in revised and _rows(revised)[0] == str(people["A01"].id)
    published = agent.get(f"/leaderboards?period={NOV}").get_data(True)
    assert "第 1 版" in published and _rows(published)[-1] == str(people["A01"].id)


def test_the_team_board_ranks_teams_by_the_mean_final_of_ranked_members(app, world):
    people, one, two = world
    html = _client(app, "A03").get(f"/leaderboards?period={NOV}&board=teams").get_data(True)
    # 二组: 106, 108, 110, 112 → 109; 一组: A01–A08 and the new N01 (120) → 826 / 9
    assert _rows(html) == [str(two.id), str(one.id)]
    assert "109.00" in html and "91.78" in html
    assert "你的团队在 2 个团队中排第 2 名" in html


def test_most_improved_compares_with_the_previous_closed_period_visible_to_the_viewer(app, world):
    people, *_ = world
    set_humane(app, False)
    url = f"/leaderboards?period={NOV}&board=improved"
    assert 'id="leaderboards-no-previous"' in _client(app, "A03").get(url).get_data(True)
    _close(app, OCT, OCT_CLOSED)
    waiting = _client(app, "A03").get(url).get_data(True)
    assert 'id="leaderboards-previous-awaiting"' in waiting and _rows(waiting) == []
    admin = _client(app, "admin").get(url).get_data(True)
    # kc 2 + 0.25·n in October, 2 + 0.5·n in November: A06 rises most (80 → 100)
    assert _rows(admin)[0] == str(people["A06"].id) and "+20.00" in admin
    assert len(_rows(admin)) == 12
    _publish(app, OCT)
    html = _client(app, "A03").get(url).get_data(True)
    assert _rows(html) == _rows(admin)


def _grant(user_id, points, key, at):
    return PointsEntry(
        user_id=user_id, points=points, source="award", source_key=key, reason="", created_at=at
    )


def test_points_boards_sum_the_ledger_within_the_period_and_over_all_time(app, world):
    people, one, two = world
    set_humane(app, False)
    in_nov, in_oct = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 10, 10, tzinfo=UTC)
    with app.app_context():
        db.session.add_all(
            [
                _grant(people["A01"].id, 100, "a", in_nov),
                _grant(people["A01"].id, 50, "b", in_oct),
                _grant(people["A01"].id, -20, "c", in_nov),  # a compensating entry
                _grant(people["A09"].id, 120, "d", in_nov),
                _grant(people["X"].id, 1000, "e", in_nov),  # inactive
                _grant(people["Z"].id, 1000, "f", in_nov),  # admin only
                # 1 December 00:30 in Shanghai is 30 November 16:30 UTC: December's
                _grant(people["A02"].id, 500, "g", datetime(2026, 11, 30, 16, 30, tzinfo=UTC)),
            ]
        )
        db.session.commit()
    client = _client(app, "A01")
    month = client.get(f"/leaderboards?period={NOV}&board=points").get_data(True)
    assert _rows(month) == _ids(people, "A09", "A01") and ">80<" in month
    total = client.get(f"/leaderboards?period={NOV}&board=points_all").get_data(True)
    assert _rows(total) == _ids(people, "A02", "A01", "A09") and ">130<" in total
    team = client.get(f"/leaderboards?period={NOV}&board=points_all&group=team:{one.id}")
    assert _rows(team.get_data(True)) == _ids(people, "A02", "A01")


@pytest.mark.parametrize("board", ["final", "metric", "teams", "improved", "points", "points_all"])
def test_a_board_runs_the_same_queries_whatever_its_length(app, world, make_user, board):
    people, one, two = world
    set_humane(app, False)
    client = _client(app, "A03")
    url = f"/leaderboards?period={NOV}&board={board}"
    _close(app, OCT, OCT_CLOSED)

    def more(n, first):
        with app.app_context():
            position_id = db.session.get(User, people["A01"].id).position_id
        for i in range(n):
            agent = make_user(
                {Role.AGENT}, agent_no=f"B{first + i}", team=two, position=position_id
            )
            with app.app_context():
                db.session.add(_supply(agent.id, NOV, 3 + i * 0.1))
                db.session.add(_grant(agent.id, 10 + i, f"more{first + i}", datetime.now(UTC)))
                db.session.commit()

    more(2, 0)
    client.get(url)  # a closed period's snapshot is read once per process: count what follows
    few = count_queries(app, client, url)
    more(20, 100)
    assert count_queries(app, client, url) == few
    # and a closed period's board, read from the snapshot
    _close(app, NOV, NOV_CLOSED)
    _publish(app, NOV)
    client.get(url)
    closed = count_queries(app, client, url)
    more(20, 200)
    assert count_queries(app, client, url) == closed


def test_bad_period_or_board_is_not_found(app, world):
    client = _client(app, "A03")
    assert client.get("/leaderboards?period=2026-13").status_code == 404
    assert client.get("/leaderboards?board=worst").status_code == 404
    assert client.get("/leaderboards").status_code == 200  # the current period by default


def test_an_empty_board_says_so(app, make_user):
    make_user({Role.AGENT}, agent_no="lonely")
    html = _client(app, "lonely").get(f"/leaderboards?period={NOV}").get_data(True)
    assert 'id="leaderboards-empty"' in html
    assert _english_phrases(html) == []


def test_the_boards_have_no_english_left(app, world):
    people, *_ = world
    _close(app, OCT, OCT_CLOSED)
    client = _client(app, "A03")
    for query in [
        f"period={NOV}",
        f"period={NOV}&board=metric",
        f"period={NOV}&board=improved",
        f"period={NOV}&board=teams",
        f"period={NOV}&board=points",
        f"period={NOV}&board=points_all",
        f"period={OCT}",
    ]:
        html = client.get(f"/leaderboards?{query}").get_data(True)
        assert _english_phrases(html) == [], query
    assert "排行榜" in client.get("/").get_data(True) and "荣誉墙" in client.get("/").get_data(True)


@pytest.fixture
def kept(app, monkeypatch):
    """Names, teams, who may appear and settings kept for an hour, as a process would (none
    kept from another test's database)."""
    from portal.system import settings

    for cache in (services._reread, settings._recent):
        cache.clear()
    monkeypatch.setitem(app.config, "LEADERBOARD_REREAD_SECONDS", 3600)
    yield
    for cache in (services._reread, settings._recent):
        cache.clear()


def test_names_and_who_may_appear_are_read_again_after_a_while_settings_changed_here_at_once(
    app, world, kept, monkeypatch
):
    people, *_ = world
    set_humane(app, False)
    _close(app, NOV, NOV_CLOSED)
    client = _client(app, "admin")
    url = f"/leaderboards?period={NOV}"
    html = client.get(url).get_data(True)
    assert "坐席12" in html and _rows(html)[:2] == _ids(people, "A12", "A11")
    with app.app_context():
        db.session.get(User, people["A12"].id).name = "王小明"
        db.session.get(User, people["A11"].id).active = False
        db.session.commit()
    html = client.get(url).get_data(True)
    assert "坐席12" in html and _rows(html)[:2] == _ids(people, "A12", "A11")  # as kept
    set_humane(app, True, top_n=3)  # changed by this process: at once
    assert _rows(client.get(url).get_data(True)) == _ids(people, "A12", "A11", "A10")
    monkeypatch.setitem(app.config, "LEADERBOARD_REREAD_SECONDS", 0)  # the time has passed
    html = client.get(url).get_data(True)
    assert "王小明" in html and _rows(html) == _ids(people, "A12", "A10", "A09")


def test_a_board_kept_for_leads_is_not_shown_to_agents_before_the_publication(app, world, kept):
    people, *_ = world
    _close(app, NOV, NOV_CLOSED)
    url = f"/leaderboards?period={NOV}"
    lead = _client(app, "L").get(url).get_data(True)
    assert 'id="leaderboards-final"' in lead and len(_rows(lead)) == 10
    agent = _client(app, "A03")
    html = agent.get(url).get_data(True)
    assert 'id="leaderboards-awaiting"' in html and _rows(html) == []
    assert _rows(agent.get(url + "&board=teams").get_data(True)) == []
    _publish(app, NOV)
    html = agent.get(url).get_data(True)  # the publication shows at once
    assert 'id="leaderboards-final"' in html and "你在 12 人中排第 10 名" in html


def test_kept_filters_and_rows_follow_the_language_and_the_viewer(app, world):
    people, *_ = world
    set_humane(app, False)
    client = _client(app, "A03")
    url = f"/leaderboards?period={NOV}&board=metric&metric=knowledge_contrib"
    chinese = client.get(url).get_data(True)
    assert "比较范围" in chinese and "本期积分" in chinese and "知识库贡献" in chinese
    post(client, "/account/language", {"locale": "en"})
    english = client.get(url).get_data(True)
    assert "Compare" in english and "Points this period" in english and "比较范围" not in english
    assert "Knowledge contributions" in english and _rows(english) == _rows(chinese)
    partial = client.get(url, headers={"HX-Request": "true"}).get_data(True)
    assert "Compare" in partial and "<html" not in partial
    own = 'id="leaderboards-row-{}" aria-current="true"'
    assert own.format(people["A03"].id) in english
    other = _client(app, "A04").get(url).get_data(True)  # the same rows, another viewer
    assert own.format(people["A04"].id) in other and own.format(people["A03"].id) not in other


# --- the awards wall ----------------------------------------------------------------------------


def _award(period_id, agent_id, number, status="published", code="service_star", citation=""):
    kind = award_type(code)
    return Award(
        period_id=period_id,
        award_type_id=kind.id,
        agent_id=agent_id,
        status=status,
        source="rule",
        cohort="知识专员/regular",
        rank=1,
        final=112.0,
        rise=12.0,
        citation=citation,
        certificate_no=number,
        published_at=NOV_CLOSED if status == "published" else None,
    )


@pytest.fixture
def wall(app, world):
    people, one, two = world
    with app.app_context():
        october = periods.ensure_period(parse_period(OCT))
        september = periods.ensure_period(parse_period("2026-09"))
        db.session.flush()
        db.session.add_all(
            [
                _award(october.id, people["A03"].id, "202610-AAAA", citation="带教新人,耐心细致"),
                _award(october.id, people["A09"].id, "202610-BBBB", code="most_improved"),
                _award(october.id, people["A04"].id, "202610-CCCC", status="nominated"),
                _award(october.id, people["A05"].id, "202610-DDDD", status="revoked"),
                _award(september.id, people["A10"].id, "202609-EEEE"),
            ]
        )
        db.session.commit()
    return people


def test_the_wall_shows_published_awards_by_period_newest_first(app, wall):
    html = _client(app, "A04").get("/awards/wall").get_data(True)
    assert html.index("wall-period-2026-10") < html.index("wall-period-2026-09")
    assert "服务之星" in html and "进步标兵" in html
    assert "带教新人,耐心细致" in html  # the citation
    assert "坐席3" in html and "一组" in html and "二组" in html
    assert "202610-CCCC" not in html and "202610-DDDD" not in html  # nominated, revoked
    assert "/verify/202610-AAAA" in html and "/verify/202609-EEEE" in html
    assert _english_phrases(html) == []


def test_holders_see_their_own_awards_revoked_ones_included(app, wall):
    html = _client(app, "A05").get("/awards/wall").get_data(True)
    assert 'id="wall-mine"' in html and "202610-DDDD" in html and "已撤销" in html
    assert "/certificates/202610-DDDD.pdf" in html
    assert 'id="wall-mine"' not in _client(app, "A04").get("/awards/wall").get_data(True)


@pytest.mark.parametrize(
    ("viewer", "sees_pdf"),
    [("A03", True), ("L", True), ("admin", True), ("A04", False), ("M", False)],
)
def test_the_certificate_pdf_is_linked_for_the_holder_their_lead_and_admins(
    app, wall, viewer, sees_pdf
):
    html = _client(app, viewer).get("/awards/wall").get_data(True)
    assert ("/certificates/202610-AAAA.pdf" in html) is sees_pdf


def test_the_wall_pages_with_a_fixed_number_of_queries(app, wall, monkeypatch):
    client = _client(app, "L")
    few = count_queries(app, client, "/awards/wall")
    people = wall
    with app.app_context():
        october = db.session.scalar(select(PeriodRow).where(PeriodRow.key == OCT))
        for n in range(6, 13):
            db.session.add(_award(october.id, people[f"A{n:02d}"].id, f"202610-X{n:03d}"))
        db.session.commit()
    assert count_queries(app, client, "/awards/wall") == few
    original = services.published_awards
    monkeypatch.setattr(services, "published_awards", lambda page: original(page, per_page=3))
    second = client.get("/awards/wall?page=2").get_data(True)
    assert "第 2 / 4 页(共 10 条)" in second and second.count('class="portal-award"') == 3


def test_an_empty_wall_says_so(app, make_user):
    make_user({Role.AGENT}, agent_no="a")
    html = _client(app, "a").get("/awards/wall").get_data(True)
    assert 'id="wall-empty"' in html and _english_phrases(html) == []
