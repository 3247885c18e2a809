"""Journeys people take, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from tests.browser.conftest import settled
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _log_in(page, base: str, agent_no: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#login", agent_no)
    page.fill("#password", PASSWORD)
    page.click("#accounts-login button[type=submit]")
    expect(page.locator("#logout")).to_be_visible()


def test_agent_sees_chinese_home_switches_to_english_and_logs_out(
    live_server, page, make_user, make_team
):
    team = make_team("一组")
    make_user({Role.AGENT}, agent_no="10001", name="吴军", team=team)

    page.goto(f"{live_server}/login")
    page.fill("#login", "10001")
    page.fill("#password", "wrong-password")
    page.click("#accounts-login button[type=submit]")
    expect(page.locator("#accounts-login [role=alert]")).to_contain_text("工号或密码不正确")
    expect(page.locator("#login")).to_have_value("10001")

    _log_in(page, live_server, "10001")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("你好,吴军")
    expect(page.get_by_text("一组")).to_be_visible()

    page.click("#lang-switch")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Hello, 吴军")
    page.reload()
    expect(page.locator("h1")).to_have_text("Hello, 吴军")

    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(f"{live_server}/")
    expect(page).to_have_url(re.compile(r"/login\?next=/"))

    # The language belongs to the account: it comes back at the next login.
    page.context.clear_cookies()
    _log_in(page, live_server, "10001")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_admin_creates_a_user_after_fixing_an_error_in_place(
    live_server, page, make_user, make_team
):
    make_team("二组")
    make_user({Role.ADMIN}, agent_no="admin", name="杨强")
    make_user({Role.AGENT}, agent_no="10001", name="吴军")

    _log_in(page, live_server, "admin")
    page.goto(f"{live_server}/users/new")
    page.fill("#agent_no", "10001")  # taken
    page.fill("#name", "林晓燕")
    page.select_option("#team_id", label="二组")
    page.check("input[name=roles][value=agent]")
    page.click("#accounts-user-form button[type=submit]")

    error = page.locator("#agent_no-error")
    expect(error).to_contain_text("该工号已被其他账号使用")
    expect(page).to_have_url(re.compile(r"/users/new$"))
    expect(page.locator("#name")).to_have_value("林晓燕")  # nothing typed is lost
    expect(page.locator("#team_id option:checked")).to_have_text("二组")

    page.fill("#agent_no", "10077")
    page.click("#accounts-user-form button[type=submit]")
    expect(page.locator("#accounts-temporary-password")).to_have_text(re.compile(r"\S{12}"))

    page.click("#accounts-back-to-list")
    row = page.locator("tr", has_text="10077")
    expect(row).to_contain_text("林晓燕")
    expect(row).to_contain_text("二组")

    # The live search narrows the table without reloading the page.
    page.evaluate("window.__same_page = true")
    page.fill("input[name=q]", "晓燕")
    expect(page.locator("#accounts-results tbody tr")).to_have_count(1)
    assert page.evaluate("window.__same_page") is True
    expect(page).to_have_url(re.compile(r"q=%E6%99%93%E7%87%95|q=晓燕"))


def test_htmx_action_after_the_session_ended_goes_to_the_login_page(
    live_server, browser, make_user
):
    make_user({Role.ADMIN}, agent_no="admin")
    first = browser.new_context(locale="zh-CN")
    second = browser.new_context(locale="zh-CN")
    try:
        page = first.new_page()
        _log_in(page, live_server, "admin")
        page.goto(f"{live_server}/users")

        # The same admin changes the password elsewhere: every other login ends.
        other = second.new_page()
        _log_in(other, live_server, "admin")
        other.goto(f"{live_server}/account/password")
        other.fill("#current", PASSWORD)
        other.fill("#new", "brandnew99")
        other.fill("#confirm", "brandnew99")
        other.click("#accounts-password button[type=submit]")
        expect(other.locator("#accounts-password h2")).to_have_text("密码已修改")

        page.fill("input[name=q]", "adm")
        expect(page).to_have_url(re.compile(r"/login"))
        expect(page.locator("#accounts-results")).to_have_count(0)
    finally:
        first.close()
        second.close()


def test_choosing_a_period_updates_its_dates_and_keeps_the_team_sort(
    live_server, page, make_user, make_team
):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from portal.metrics.periods import period_of

    lead = make_user({Role.TEAM_LEAD}, agent_no="20001", name="周强")
    team = make_team("一组", leads=[lead])
    make_user({Role.AGENT}, agent_no="10001", name="吴军", team=team)
    make_user({Role.AGENT}, agent_no="10002", name="李娜", team=team)
    this_month = period_of(datetime.now(ZoneInfo("Asia/Shanghai")).date(), "monthly")
    before = period_of(this_month.first_day - timedelta(days=1), "monthly")
    dates = f"统计区间 {before.first_day} 至 {before.last_day}"

    _log_in(page, live_server, "20001")
    page.goto(f"{live_server}/metrics/me")
    expect(page.get_by_text(f"统计区间 {this_month.first_day}")).to_be_visible()
    page.select_option("select[name=period]", before.key)
    expect(page.get_by_text(dates)).to_be_visible()
    expect(page).to_have_url(re.compile(rf"period={before.key}"))

    page.goto(f"{live_server}/metrics/teams/{team.id}")
    page.click("#metrics-team th a:text('平均处理时长')")
    expect(page.locator("#metrics-team th a:text('平均处理时长')")).to_contain_text("▲")
    page.click("#metrics-team th a:text('平均处理时长')")
    expect(page.locator("#metrics-team th a:text('平均处理时长')")).to_contain_text("▼")
    settled(page)  # the picker came with the sorted table: it works once htmx has settled it
    page.focus("#metrics-team-period")
    page.select_option("#metrics-team-period", before.key)
    expect(page.get_by_text(dates)).to_be_visible()
    expect(page.locator("#metrics-team th a:text('平均处理时长')")).to_contain_text("▼")
    expect(page).to_have_url(re.compile(rf"sort=aht&dir=desc&period={before.key}"))
    expect(page.locator("#metrics-team-period")).to_be_focused()  # still there for the keyboard
