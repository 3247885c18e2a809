"""An agent opens the dashboard, the explanation, and moves a value in the simulator."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from portal.extensions import db
from portal.metrics.models import SuppliedValue
from portal.scoring.services import save_plan
from tests.browser.test_journeys import _log_in
from tests.test_plans import SUPPLIED_PLAN

pytestmark = pytest.mark.browser


def test_agent_reads_the_score_its_reasons_and_tries_a_change(app, live_server, page, make_user):
    with app.app_context():
        position_id = save_plan(None, SUPPLIED_PLAN).plan.position_id
        db.session.commit()
    agent = make_user({Role.AGENT}, agent_no="10001", name="吴军", position=position_id)
    with app.app_context():
        for metric, value in (("knowledge_contrib", 5), ("brand_sentiment", 85)):
            db.session.add(
                SuppliedValue(agent_id=agent.id, period_key="2026-11", metric=metric, value=value)
            )
        db.session.commit()

    _log_in(page, live_server, "10001")
    page.click("text=我的得分")
    expect(page.locator("h1")).to_contain_text("我的得分")
    page.goto(f"{live_server}/scores/agents/{agent.id}?period=2026-11")
    expect(page.locator("#scoring-final")).to_have_text("110.00")
    expect(page.locator("#scoring-tier")).to_have_text("×2.0")

    # Another period: its dates, its (empty) score and the links to the other screens follow.
    page.focus("#scoring-score-period")
    page.select_option("#scoring-score-period", "2026-10")
    expect(page.get_by_text("统计区间 2026-10-01 至 2026-10-31")).to_be_visible()
    expect(page.locator("#scoring-no-data")).to_be_visible()
    expect(page).to_have_url(re.compile(r"period=2026-10"))
    expect(page.locator("#scoring-score-period")).to_be_focused()  # still there for the keyboard
    page.click("#scoring-explain-link")
    expect(page).to_have_url(re.compile(r"/explain\?period=2026-10"))
    expect(page.get_by_text("统计区间 2026-10-01 至 2026-10-31")).to_be_visible()
    page.wait_for_load_state()  # htmx wires the page's picker once the page has loaded

    page.select_option("#scoring-explain-period", "2026-11")
    expect(page.get_by_text("统计区间 2026-11-01 至 2026-11-30")).to_be_visible()
    expect(page.locator("#scoring-weighted")).to_have_text("110.00")
    expect(page.locator("#scoring-gate-open")).to_be_visible()
    expect(page.locator("#scoring-simulate-link")).to_have_attribute("href", re.compile("2026-11"))

    page.click("#scoring-simulate-link")
    page.wait_for_url("**/simulate**")
    page.wait_for_load_state("load")  # htmx is set up once the page has loaded
    field = page.locator("#sim-knowledge_contrib")
    field.fill("2")
    expect(page.locator("#sim-final")).to_have_text("90.00")
    expect(page.locator("#sim-tier")).to_have_text("×1.0")
    expect(page.locator("#sim-knowledge_contrib")).to_be_focused()  # typing goes on in place
    page.locator("#sim-knowledge_contrib").press_sequentially("0")  # now 20: beyond stretch
    expect(page.locator("#sim-tier")).to_have_text("×2.0")
