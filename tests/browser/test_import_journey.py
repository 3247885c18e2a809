"""An admin uploads a GBK file, checks the preview, imports the valid rows, sees the change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from tests.browser.test_journeys import _log_in

pytestmark = pytest.mark.browser

CSV = (
    "interaction_id,queue,agent_no,offered_at,answered_at,ended_at,wrap_seconds\n"
    "b1,售后热线,10001,2026-11-03T09:00:00+08:00,2026-11-03T09:00:10+08:00,2026-11-03T09:05:10+08:00,30\n"
    "b2,售后热线,99999,2026-11-03T09:10:00+08:00,,2026-11-03T09:11:00+08:00,\n"
    "b3,售后热线,10001,2026-11-04T10:00:00+08:00,2026-11-04T10:00:05+08:00,2026-11-04T10:02:05+08:00,0\n"
)


def test_admin_imports_the_valid_rows_of_a_gbk_file(
    live_server, scheduler, page, make_user, tmp_path
):
    agent = make_user({Role.AGENT}, agent_no="10001", name="吴军")
    make_user({Role.ADMIN}, agent_no="admin")
    path = tmp_path / "话单.csv"
    path.write_bytes(CSV.encode("gbk"))

    _log_in(page, live_server, "admin")
    page.goto(f"{live_server}/metrics/agents/{agent.id}?period=2026-11")
    expect(page.locator("#metrics-agent")).to_contain_text("该周期暂无数据")

    page.goto(f"{live_server}/imports")
    page.select_option("#imports-kind", "interactions")
    page.set_input_files("#imports-file", str(path))
    page.click("#imports-upload button[type=submit]")

    expect(page.locator("#imports-encoding")).to_have_text("gb18030")
    expect(page.locator("#imports-rejected")).to_have_text("1")
    expect(page.locator("#imports-rejections")).to_contain_text("99999")
    expect(page.locator("#imports-new")).to_have_text("2")
    page.click("#imports-commit-valid")

    expect(page.locator("#imports-outcome")).to_have_text("已导入。")
    page.goto(f"{live_server}/metrics/agents/{agent.id}?period=2026-11")
    handled = page.locator("#metrics-handled")
    expect(handled).to_contain_text("2")
    expect(page.locator("#metrics-aht")).to_contain_text(re.compile(r"\d+ 秒"))
