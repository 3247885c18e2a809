"""An admin edits a weight so the sum is 99, sees the refusal, then saves 100."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from tests.browser.test_journeys import _log_in

pytestmark = pytest.mark.browser


def test_admin_sees_99_refused_as_typed_and_on_save_then_saves_100(
    live_server, page, make_user, make_position
):
    position = make_position("电话客服")
    make_user({Role.ADMIN}, agent_no="admin")
    _log_in(page, live_server, "admin")

    page.click("text=考核方案")
    page.click("text=从默认方案创建")
    page.wait_for_url("**/edit")
    page.wait_for_load_state("load")  # htmx is set up once the page has loaded
    weight = page.locator("#plans-lines-0-weight")
    expect(weight).to_have_value("40")

    weight.fill("39")
    expect(page.locator("#err-weights")).to_have_text("权重合计为 99,必须等于 100。")
    expect(page.locator("#plans-weight-sum")).to_have_text("99")
    expect(weight).to_be_focused()

    page.click("#plans-save")
    expect(page.locator("#plans-refused")).to_be_visible()
    page.wait_for_load_state("load")
    expect(page.locator("#err-weights")).to_have_text("权重合计为 99,必须等于 100。")

    page.locator("#plans-lines-1-weight").fill("31")  # csat takes the point aht gave up
    expect(page.locator("#err-weights")).to_have_text("")
    expect(page.locator("#plans-weight-sum")).to_have_text("100")
    page.click("#plans-save")
    expect(page.locator("#plans-saved")).to_contain_text("第 2 版")
    assert position.name in page.locator("h1").inner_text()
