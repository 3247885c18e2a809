"""An agent appeals one item; a QA lead upholds it; the agent sees the new score, the timeline
and the QA line of the dashboard move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts.models import Position, Role, User
from portal.extensions import db
from portal.qa import services as qa
from portal.scoring.plans import default_document
from portal.scoring.services import save_plan
from tests.browser.test_journeys import _log_in
from tests.conftest import answered_call

pytestmark = pytest.mark.browser


def test_agent_appeals_lead_upholds_and_the_score_moves(app, live_server, page, make_user):
    with app.app_context():
        position_id = save_plan(None, default_document("电话客服")).plan.position_id
        db.session.commit()
    agent = make_user({Role.AGENT}, agent_no="10001", name="吴军", position=position_id)
    make_user({Role.QA}, agent_no="30001", name="张秀英")
    make_user({Role.QA_LEAD}, agent_no="30010", name="刘洋")
    with app.app_context():
        position = db.session.get(Position, position_id)
        version = qa.save_rubric(None, position, qa.DEFAULT_RUBRIC)
        at = datetime(2026, 11, 3, 9, tzinfo=timezone(timedelta(hours=8)))
        call = answered_call("HD-0001", agent.id, at, queue="售后热线")
        db.session.add(call)
        db.session.flush()
        evaluator = db.session.scalar(select(User).where(User.agent_no == "30001"))
        scores = [
            qa.ItemScore(c, points=p)
            for c, p in {
                "greeting": 10,
                "needs": 20,
                "solution": 20,
                "empathy": 10,
                "process": 10,
            }.items()
        ]
        evaluation = qa.save_evaluation(evaluator, call, version, scores, "", datetime.now(UTC))
        qa.release_evaluation(evaluator, evaluation, datetime.now(UTC))
        db.session.commit()
    dashboard = f"{live_server}/scores/agents/{agent.id}?period=2026-11"

    _log_in(page, live_server, "10001")
    page.goto(dashboard)
    expect(page.locator("#scoring-line-qa_score")).to_contain_text("60.00")  # QA score 70
    page.click("text=我的质检")
    page.click("text=HD-0001 >> xpath=ancestor::tr//a")
    expect(page.locator("#qa-score")).to_have_text("70")
    page.check("#qa-appeal-solution")
    page.select_option("select[name=proposed-solution]", "40")
    page.fill("textarea[name=reason-solution]", "客户问题一次解决,未再来电")
    page.click("#qa-appeal-submit")
    expect(page.locator("#qa-appeal-status")).to_have_text("已提交")
    appeal_url = page.url
    page.click("#logout")

    _log_in(page, live_server, "30010")
    page.goto(appeal_url)
    page.select_option("select[id^=qa-decision-]", "upheld")
    page.fill("textarea[id^=qa-reason-]", "录音证实方案正确,一次解决")
    page.click("#qa-decide")
    expect(page.locator("#qa-appeal-status")).to_have_text("成立")
    page.click("#logout")

    _log_in(page, live_server, "10001")
    page.goto(appeal_url)
    expect(page.locator("#qa-appeal-score")).to_contain_text("70 → 90")
    expect(page.locator("#qa-timeline")).to_contain_text("申诉已提交")
    expect(page.locator("#qa-timeline")).to_contain_text("已处理")
    page.goto(dashboard)
    expect(page.locator("#scoring-line-qa_score")).to_contain_text("110.00")  # QA score 90
