"""An admin downloads a closed period's report PDF: the page says it is being prepared, the
scheduler renders it, the page offers the download."""

from __future__ import annotations

import io
import re
import shutil

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.test_journeys import _log_in
from tests.test_period_results import build_world, close

pytestmark = pytest.mark.browser


def test_admin_asks_for_the_report_pdf_and_downloads_it_when_rendered(
    app, live_server, page, make_user, make_team, scheduler
):
    shutil.rmtree(app.config["REPORTS_DIR"], ignore_errors=True)
    build_world(app, make_user, make_team)
    close(app)

    _log_in(page, live_server, "admin")
    page.goto(f"{live_server}/admin/periods/2026-11/report")
    page.click("#period-report-pdf")
    # Not rendered yet: a page that polls every 2 seconds until the scheduler has rendered it.
    expect(page).to_have_url(re.compile(r"/report\.pdf\?version=1$"))
    expect(page.locator("h1")).to_contain_text("2026-11")
    download_button = page.locator("#period-report-pdf-download")
    expect(download_button).to_be_visible(timeout=20_000)
    with page.expect_download() as download:
        download_button.click()
    assert download.value.suggested_filename == "report-2026-11-v1.pdf"
    with open(download.value.path(), "rb") as pdf:
        pages = PdfReader(io.BytesIO(pdf.read())).pages
    text = "".join(p.extract_text() for p in pages)
    assert "2026-11" in text and "甲" in text and "考核报告" in text
    shutil.rmtree(app.config["REPORTS_DIR"], ignore_errors=True)
