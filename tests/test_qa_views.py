"""QA screens: scoring through the form, the agent's evaluation and appeal, the decision, the
dashboard and rubrics, each for the people allowed and nobody else."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.extensions import db
from portal.metrics.models import QaEvaluation
from portal.qa.models import Appeal, RubricVersion
from tests.conftest import answered_call, login, post
from tests.test_qa_appeals import world  # noqa: F401 - the shared fixture

SCORES = {"greeting": "10", "needs": "20", "solution": "20", "empathy": "10", "process": "10"}


def _client(app, agent_no):
    client = app.test_client()
    login(client, agent_no)
    return client


def _score(app, qa_no="Q", action="release"):
    client = _client(app, qa_no)
    found = client.get("/qa/score?interaction=c1")
    assert found.status_code == 302
    form = {f"points-{k}": v for k, v in SCORES.items()} | {"action": action}
    saved = post(client, found.headers["Location"], form)
    assert saved.status_code == 302, saved.get_data(True)[:2000]
    return int(saved.headers["Location"].rsplit("/", 1)[1])


def _appeal(app, evaluation_id, agent_no="A"):
    client = _client(app, agent_no)
    return post(
        client,
        f"/qa/evaluations/{evaluation_id}/appeal",
        {"item": "solution", "proposed-solution": "40", "reason-solution": "客户问题已解决"},
    )


def test_qa_scores_through_the_form_and_the_agent_sees_every_item(app, world):  # noqa: F811
    missing = _client(app, "Q").get("/qa/score?interaction=nope").get_data(True)
    assert "没有该话单" in missing
    draft = _score(app, action="save")
    assert _client(app, "A").get(f"/qa/evaluations/{draft}").status_code == 403  # a draft
    released = _score(app)
    assert draft == released
    html = _client(app, "A").get(f"/qa/evaluations/{released}").get_data(True)
    assert 'id="qa-score">70<' in html and "方案基本正确但有遗漏" in html
    assert 'id="qa-appeal-submit"' in html
    assert _client(app, "B").get(f"/qa/evaluations/{released}").status_code == 403
    assert _client(app, "L").get(f"/qa/evaluations/{released}").status_code == 200
    assert "<td>c1</td>" in _client(app, "A").get("/qa/evaluations").get_data(True)
    assert "<td>c1</td>" not in _client(app, "B").get("/qa/evaluations").get_data(True)


def test_an_incomplete_score_is_refused_with_the_item_named(app, world):  # noqa: F811
    client = _client(app, "Q")
    location = client.get("/qa/score?interaction=c1").headers["Location"]
    refused = post(client, location, {"points-greeting": "10", "action": "release"})
    assert refused.status_code == 422 and "需求识别" in refused.get_data(True)


def test_the_agent_appeals_a_lead_decides_and_the_trail_shows(app, world):  # noqa: F811
    evaluation = _score(app, qa_no="QL1")
    first, second = _appeal(app, evaluation), _appeal(app, evaluation)
    assert first.headers["Location"] == second.headers["Location"]  # a double click: one appeal
    with app.app_context():
        assert db.session.scalar(select(func.count(Appeal.id))) == 1
        appeal = db.session.scalar(select(Appeal))
        item_id, appeal_id = appeal.items[0].id, appeal.id
    url = f"/qa/appeals/{appeal_id}"
    assert _client(app, "B").get(url).status_code == 403
    decision = {f"decision-{item_id}": "upheld", f"reason-{item_id}": "录音证实方案正确"}
    assert post(_client(app, "Q"), url + "/decide", decision).status_code == 403  # a QA
    own = post(_client(app, "QL1"), url + "/decide", decision)
    assert own.status_code == 422 and "该评分由您作出" in own.get_data(True)
    assert post(_client(app, "QL2"), url + "/decide", decision).status_code == 302
    html = _client(app, "A").get(url).get_data(True)
    assert "成立" in html and re.search(r'id="qa-appeal-score">70 → <strong>90<', html)
    assert html.count("<li>") >= 2 and "申诉已提交" in html and "已处理" in html
    with app.app_context():
        assert db.session.scalar(select(QaEvaluation.score)) == 90
    board = _client(app, "QL2").get("/qa/appeals").get_data(True)
    assert 'id="qa-evaluators"' in board and "100%" in board  # QL1's one appeal: upheld


def test_the_agent_withdraws_and_nobody_else_can(app, world):  # noqa: F811
    evaluation = _score(app)
    appeal_url = _appeal(app, evaluation).headers["Location"]
    assert post(_client(app, "B"), appeal_url + "/withdraw", {}).status_code == 403
    assert post(_client(app, "A"), appeal_url + "/withdraw", {}).status_code == 302
    assert "已撤回" in _client(app, "A").get(appeal_url).get_data(True)


def _rubric_form(doc: dict) -> dict:
    form = {}
    for i, item in enumerate(doc["items"]):
        form |= {
            f"item-{i}-title": item["title"],
            f"item-{i}-max": str(item["max_points"]),
            f"item-{i}-code": item["code"],
            f"item-{i}-levels": "\n".join(
                f"{lv['points']} {lv['anchor']}" for lv in item["levels"]
            ),
        }
    for i, red in enumerate(doc["red_lines"]):
        form |= {
            f"red-{i}-title": red["title"],
            f"red-{i}-points": str(red["points"]),
            f"red-{i}-anchor": red["anchor"],
            f"red-{i}-code": red["code"],
        }
    return form | {"item-9-title": "", "item-9-levels": ""}  # a blank row is left out


def test_rubrics_change_as_new_versions_and_mistakes_are_refused(app, world):  # noqa: F811
    from portal.qa.services import DEFAULT_RUBRIC

    with app.app_context():
        position_id = db.session.scalar(select(RubricVersion)).rubric.position_id
    client = _client(app, "QL2")
    assert "电话客服" in client.get("/qa/rubrics").get_data(True)
    page = client.get(f"/qa/rubrics/{position_id}").get_data(True)
    assert 'name="item-0-title" value="开场与礼貌用语"' in page
    form = _rubric_form(DEFAULT_RUBRIC)
    assert post(client, f"/qa/rubrics/{position_id}", form).status_code == 302  # unchanged
    with app.app_context():
        assert db.session.scalar(select(func.max(RubricVersion.number))) == 1
    off = post(client, f"/qa/rubrics/{position_id}", form | {"item-0-max": "5"})
    assert off.status_code == 422 and "评分档应从 0 分到该项满分" in off.get_data(True)
    short = post(client, f"/qa/rubrics/{position_id}", form | {"item-4-title": ""})  # 90 left
    assert short.status_code == 422 and "必须等于 100" in short.get_data(True)
    bad = post(client, f"/qa/rubrics/{position_id}", form | {"item-0-levels": "十分 全对"})
    assert bad.status_code == 422 and "每行以分值开头" in bad.get_data(True)
    changed = post(client, f"/qa/rubrics/{position_id}", form | {"item-0-title": "开场白"})
    assert changed.status_code == 302
    assert 'id="qa-rubric-saved"' in client.get(changed.headers["Location"]).get_data(True)
    with app.app_context():
        latest = db.session.scalar(select(RubricVersion).order_by(RubricVersion.number.desc()))
        assert latest.number == 2 and latest.document["items"][0]["title"] == "开场白"
        assert latest.document["items"][0]["levels"][1] == {
            "points": 5,
            "anchor": "开场或结束语不完整,礼貌用语偶有遗漏",
        }
    assert post(_client(app, "Q"), f"/qa/rubrics/{position_id}", form).status_code == 403


def test_qa_screens_are_chinese_with_no_english_left(app, world):  # noqa: F811
    from tests.test_i18n import _english_phrases

    evaluation = _score(app)
    appeal_url = _appeal(app, evaluation).headers["Location"]
    pages = [
        ("A", f"/qa/evaluations/{evaluation}"),
        ("A", "/qa/evaluations"),
        ("A", appeal_url),
        ("QL2", appeal_url),
        ("QL2", "/qa/appeals"),
        ("QL2", "/qa/rubrics"),
        ("Q", "/qa/score"),
        ("Q", "/qa/score?interaction=c1"),
    ]
    for who, url in pages:
        response = _client(app, who).get(url, follow_redirects=True)
        assert _english_phrases(response.get_data(True)) == [], (who, url)


def test_qa_finds_interactions_by_agent_and_day(app, world):  # noqa: F811
    client = _client(app, "Q")
    html = client.get("/qa/score?agent=A&day=2026-11-03").get_data(True)
    assert 'id="qa-found"' in html and ">c1</a>" in html
    assert "没有该坐席" not in html
    assert "没有该工号的坐席" in client.get("/qa/score?agent=ZZ&day=2026-11-03").get_data(True)
    assert "2026-11-03" in client.get("/qa/score?agent=A&day=03/11").get_data(True)
    assert "当天没有" in client.get("/qa/score?agent=A&day=2026-11-04").get_data(True)


def test_the_evaluation_list_runs_a_fixed_number_of_queries(app, world, make_user):  # noqa: F811
    from datetime import UTC, datetime

    from portal.accounts.models import Role
    from tests.conftest import count_queries

    client = _client(app, "QL2")
    at = datetime(2026, 11, 3, 1, tzinfo=UTC)

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            agent = make_user({Role.AGENT}, agent_no=f"X{i}")
            with app.app_context():
                call = answered_call(f"x{i}", agent.id, at, seconds=60)
                db.session.add(call)
                db.session.flush()
                db.session.add(
                    QaEvaluation(
                        source_id=f"q{i}",
                        interaction_id=call.id,
                        score=80,
                        original_score=80,
                        evaluated_at=at,
                        released_at=at,
                    )
                )
                db.session.commit()

    add(2, 0)
    few = count_queries(app, client, "/qa/evaluations")
    add(10, 2)
    assert count_queries(app, client, "/qa/evaluations") == few
