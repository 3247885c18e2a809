"""The admin's period report: a closed period's frozen results summed up, drawn and listed as a
page and a PDF, its awards, and its results as CSV and XLSX."""

from __future__ import annotations

import csv
import io
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pypdf
import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, select

from portal.accounts.models import Role, User
from portal.awards import services as award_services
from portal.awards.models import Award, AwardType
from portal.db import utcnow
from portal.extensions import db
from portal.metrics.models import SuppliedValue
from portal.metrics.periods import parse_period
from portal.periods import report_files, services
from portal.periods.models import PeriodRow, ReportRequest
from tests.conftest import post
from tests.test_period_results import AFTER_CLOSE, build_world, change_everything, close, supply
from tests.test_period_results import _client as logged_in

REPORT = "/admin/periods/2026-11/report"
PROGRESS = "/admin/periods/2026-11/report-pdf/progress"
RETRY = "/admin/periods/2026-11/report-pdf/retry"
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _no_report_files(app):
    """Report files outlive a test's database rows: each test starts without any."""
    yield
    shutil.rmtree(app.config["REPORTS_DIR"], ignore_errors=True)


@pytest.fixture
def world(app, make_user, make_team):
    return build_world(app, make_user, make_team)


@pytest.fixture
def closed(app, world):
    """November closed, then A's data and the plan changed; B holds an approved custom award
    (with a citation), C a rejected one."""
    people, *_ = world
    period_id = close(app)
    change_everything(app)
    with app.app_context():
        kind = AwardType(code="team_spirit", name="团队协作奖", criteria="乐于助人", points=100)
        db.session.add(kind)
        db.session.flush()
        for no, status in (("B", "approved"), ("C", "rejected")):
            db.session.add(
                Award(
                    period_id=period_id,
                    award_type_id=kind.id,
                    agent_id=people[no].id,
                    status=status,
                    source="admin",
                    citation="主动分享知识库文章" if no == "B" else "",
                    certificate_no=f"2026-11-TEST000{no}",
                )
            )
        db.session.commit()
    return people, period_id


def test_the_report_page_sums_up_the_frozen_results(app, closed):
    html = logged_in(app, "admin").get(REPORT).get_data(as_text=True)
    facts = {
        "agents": "3",
        "eligible": "2",  # C has no data, so no final
        "mean": "95.00",  # (110 + 80) / 2, frozen before A's data dropped
        "median": "95.00",
        "bonus": "2,400.00",  # 800 × 2.0 + 800 × 1.0
    }
    for name, value in facts.items():
        assert f'id="period-report-{name}">{value}<' in html, name
    assert "×2.0: 1 人" in html and "×1.0: 1 人" in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="period-chart"') == 2
    assert "一组" in html and "95.00" in html  # the team means chart
    assert "团队协作奖" in html and "乙" in html and "主动分享知识库文章" in html
    assert "已批准" in html
    assert "丙" not in html  # a rejected award is not reported
    assert "report.pdf?version=1" in html and "results.xlsx?version=1" in html
    with app.app_context():  # published, its certificate rendered: linked
        award = db.session.scalar(select(Award).where(Award.status == "approved"))
        award.status, award.pdf_path = "published", "2026-11/2026-11-TEST000B.pdf"
        db.session.commit()
    html = logged_in(app, "admin").get(REPORT).get_data(as_text=True)
    assert "已发布" in html and 'href="/certificates/2026-11-TEST000B.pdf"' in html


def render_requested(app, now=None) -> int:
    """What the scheduler's 2-second poll does: render the requested report PDFs."""
    with app.app_context():
        return report_files.run_report_requests(now or utcnow())


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_the_report_pdf_is_rendered_by_the_scheduler_then_downloaded(app, closed):
    admin = logged_in(app, "admin")
    waiting = admin.get(REPORT + ".pdf")
    assert waiting.status_code == 202 and waiting.mimetype == "text/html"
    html = waiting.get_data(as_text=True)
    assert "正在准备 PDF" in html and 'hx-trigger="load delay:2s"' in html
    assert f'hx-get="{PROGRESS}?version=1"' in html and 'hx-swap="outerHTML"' in html
    assert "flask scheduler run" in html  # no scheduler has beaten: say how to start one
    fragment = admin.get(PROGRESS + "?version=1", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and "正在准备 PDF" in fragment and "hx-get" in fragment

    assert render_requested(app) == 1
    fragment = admin.get(PROGRESS + "?version=1", headers=HX).get_data(as_text=True)
    assert "PDF 已生成" in fragment and "hx-get" not in fragment  # polling stops
    assert f'href="{REPORT}.pdf?version=1"' in fragment

    response = admin.get(REPORT + ".pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "report-2026-11-v1.pdf" in disposition
    text = pdf_text(response.get_data())
    assert "2026-11" in text and "考核报告" in text
    for expected in ("甲", "乙", "丙", "110.00", "团队协作奖", "已批准", "概要", "一组"):
        assert expected in text, expected
    assert render_requested(app) == 0  # sent from the file: nothing rendered again
    assert admin.get(REPORT + ".pdf?version=2").status_code == 404  # no such version
    files = list(Path(app.config["REPORTS_DIR"]).glob("2026-11/*"))
    assert [f.name.split("-")[:4] for f in files] == [["report", "2026", "11", "v1"]]


def test_a_double_click_queues_one_render(app, closed, make_user):
    make_user({Role.ADMIN}, agent_no="admin2")
    first, second = logged_in(app, "admin"), logged_in(app, "admin2")
    assert first.get(REPORT + ".pdf").status_code == 202
    assert first.get(REPORT + ".pdf").status_code == 202
    assert second.get(REPORT + ".pdf").status_code == 202
    assert first.get(PROGRESS).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportRequest)) == 1
    assert render_requested(app) == 1
    assert render_requested(app) == 0


def test_simultaneous_requests_queue_one_render_without_an_error(app, closed):
    """Clicks that arrive together (on SQLite too: the read-only GET ends its transaction
    before the insert, which then waits for the write lock instead of failing)."""
    clients = [logged_in(app, "admin") for _ in range(4)]
    for _round in range(3):
        barrier, codes = threading.Barrier(len(clients)), []

        def click(client, barrier=barrier, codes=codes):
            barrier.wait()
            codes.append(client.get(REPORT + ".pdf").status_code)

        threads = [threading.Thread(target=click, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert codes == [202] * len(clients)
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(ReportRequest)) == 1
            db.session.execute(delete(ReportRequest))
            db.session.commit()


def test_a_decision_on_an_award_makes_the_rendered_pdf_stale(app, closed):
    admin = logged_in(app, "admin")
    admin.get(REPORT + ".pdf")
    render_requested(app)
    assert "团队协作奖" in pdf_text(admin.get(REPORT + ".pdf").get_data())
    with app.app_context():
        award = db.session.scalar(select(Award).where(Award.status == "approved"))
        actor = db.session.scalar(select(User).where(User.agent_no == "admin"))
        award_services.decide(actor, award, False, "重复提名", AFTER_CLOSE, published=False)
        db.session.commit()
    assert admin.get(REPORT + ".pdf").status_code == 202  # the old file no longer shows it
    assert render_requested(app) == 1
    response = admin.get(REPORT + ".pdf")
    assert response.status_code == 200
    text = pdf_text(response.get_data())
    assert "团队协作奖" not in text and "本期尚无已批准或已发布的奖项" in text
    assert len(list(Path(app.config["REPORTS_DIR"]).glob("2026-11/*"))) == 1  # the old is gone


def test_an_award_decided_while_the_pdf_waits_is_in_the_file_rendered(app, closed):
    admin = logged_in(app, "admin")
    admin.get(REPORT + ".pdf")
    with app.app_context():
        award = db.session.scalar(select(Award).where(Award.status == "approved"))
        award.status = "rejected"
        db.session.commit()
    assert render_requested(app) == 1
    fragment = admin.get(PROGRESS, headers=HX).get_data(as_text=True)
    assert "PDF 已生成" in fragment
    assert "团队协作奖" not in pdf_text(admin.get(REPORT + ".pdf").get_data())


def test_a_failed_render_is_shown_with_its_error_and_can_be_tried_again(app, closed, monkeypatch):
    def broken(html):
        raise OSError("no space left on device")

    monkeypatch.setattr(report_files, "render_pdf", broken)
    admin = logged_in(app, "admin")
    admin.get(REPORT + ".pdf")
    assert render_requested(app) == 0
    page = admin.get(REPORT + ".pdf")
    html = page.get_data(as_text=True)
    assert "PDF 生成失败" in html and "no space left on device" in html
    assert "hx-get" not in html.split('id="period-report-pdf-')[1]  # nothing left to poll
    assert f'action="{RETRY}?version=1"' in html
    assert render_requested(app) == 0  # a failure is not retried by itself
    monkeypatch.undo()
    assert post(admin, RETRY + "?version=1").status_code == 302
    assert post(admin, RETRY + "?version=1").status_code == 302  # a double click: one retry
    assert "正在准备 PDF" in admin.get(REPORT + ".pdf").get_data(as_text=True)
    assert render_requested(app) == 1
    assert admin.get(REPORT + ".pdf").mimetype == "application/pdf"


def test_a_render_that_crashed_is_taken_over_once_stale(app, closed):
    admin = logged_in(app, "admin")
    admin.get(REPORT + ".pdf")
    now = utcnow()
    with app.app_context():  # a scheduler claimed it a minute ago and is still at it
        asked = db.session.scalar(select(ReportRequest))
        asked.started_at, asked.attempts = now - timedelta(minutes=1), 1
        db.session.commit()
    assert render_requested(app, now) == 0
    assert "正在生成 PDF" in admin.get(REPORT + ".pdf").get_data(as_text=True)
    later = now + report_files.STALE_RENDER  # its process died: taken over
    assert render_requested(app, later) == 1
    with app.app_context():
        asked = db.session.scalar(select(ReportRequest))
        assert asked.attempts == 2 and asked.finished_at is not None


def test_a_render_that_keeps_crashing_is_given_up_with_a_message(app, closed):
    admin = logged_in(app, "admin")
    admin.get(REPORT + ".pdf")
    now = utcnow()
    with app.app_context():
        asked = db.session.scalar(select(ReportRequest))
        asked.started_at = now - report_files.STALE_RENDER - timedelta(seconds=1)
        asked.attempts = report_files.MAX_ATTEMPTS
        db.session.commit()
    assert render_requested(app, now) == 0
    html = admin.get(REPORT + ".pdf").get_data(as_text=True)
    assert "PDF 生成失败" in html and "interrupted" in html


def test_each_language_has_its_own_file(app, closed):
    with app.app_context():
        db.session.scalar(select(User).where(User.agent_no == "admin")).locale = "en"
        db.session.commit()
    admin = logged_in(app, "admin")
    assert "being prepared" in admin.get(REPORT + ".pdf").get_data(as_text=True)
    render_requested(app)
    text = pdf_text(admin.get(REPORT + ".pdf").get_data())
    assert "Report of 2026-11" in text and "Summary" in text and "团队协作奖" in text


def test_results_downloads_hold_the_frozen_version_safe_from_formulas(app, closed):
    people, period_id = closed
    with app.app_context():
        db.session.get(User, people["B"].id).name = "=cmd|' /C calc'!A0"
        db.session.commit()
    admin = logged_in(app, "admin")
    response = admin.get("/admin/periods/2026-11/results.csv")
    assert 'results-2026-11-v1.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert [(r["agent_no"], r["final"], r["rank"], r["status"]) for r in rows] == [
        ("A", "110", "1", "final"),
        ("B", "80", "2", "final"),
        ("C", "", "", "final"),
    ]
    assert rows[0]["score_brand_sentiment"] == "120" and rows[1]["name"].startswith("'=")
    book = load_workbook(io.BytesIO(admin.get("/admin/periods/2026-11/results.xlsx").data))
    table = list(book.active.values)
    header = table[0]
    assert header[:3] == ("period", "agent_no", "name")
    assert table[1][header.index("final")] == 110 and table[1][header.index("team")] == "一组"
    assert table[2][header.index("name")].startswith("'=")


def test_old_results_versions_stay_readable(app, closed):
    people, period_id = closed
    with app.app_context():
        row = db.session.get(PeriodRow, period_id)
        admin = db.session.scalar(select(User).where(User.agent_no == "admin"))
        services.revise_period(row, admin, "数据更正", AFTER_CLOSE)
        db.session.commit()
    admin = logged_in(app, "admin")

    def finals(url):
        text = admin.get(url).get_data().decode("utf-8-sig")
        return {r["agent_no"]: r["final"] for r in csv.DictReader(io.StringIO(text))}

    assert finals("/admin/periods/2026-11/results.csv")["A"] != "110"  # version 2: new data
    assert finals("/admin/periods/2026-11/results.csv?version=1")["A"] == "110"
    page = admin.get(REPORT + "?version=1").get_data(as_text=True)
    assert 'id="period-report-mean">95.00<' in page and "数据更正" not in page
    newest = admin.get(REPORT).get_data(as_text=True)
    assert "数据更正" in newest and "?version=1" in newest
    assert admin.get(REPORT + "?version=3").status_code == 404


def test_the_periods_page_links_each_closed_periods_report_and_downloads(app, closed):
    with app.app_context():
        services.ensure_period(parse_period("2026-12"))
        db.session.commit()
    html = logged_in(app, "admin").get("/admin/periods").get_data(as_text=True)
    links = html.split('id="period-report-2026-11">')[1].split("</small>")[0]
    for url in (REPORT, REPORT + ".pdf", "/results.xlsx", "/results.csv"):
        assert url in links, url
    assert 'id="period-report-2026-12"' not in html  # still open: nothing to report


def test_only_closed_periods_have_a_report(app, world):
    admin = logged_in(app, "admin")
    assert admin.get(REPORT).status_code == 404  # no such period yet
    with app.app_context():
        supply(world[0]["A"].id, "knowledge_contrib", 5, key="2026-12")
        services.ensure_period(parse_period("2026-12"))
        db.session.commit()
    for url in ("/report", "/report.pdf", "/report-pdf/progress", "/results.csv", "/results.xlsx"):
        assert admin.get("/admin/periods/2026-12" + url).status_code == 404
    assert post(admin, "/admin/periods/2026-12/report-pdf/retry").status_code == 404
    assert admin.get("/admin/periods/2026-11/results.pdf").status_code == 404


@pytest.mark.parametrize("role", [Role.AGENT, Role.TEAM_LEAD, Role.QA, Role.QA_LEAD])
def test_only_admins_get_the_report(app, closed, make_user, role):
    make_user({role}, agent_no="someone")
    client = logged_in(app, "someone")
    for url in ("", ".pdf"):
        assert client.get(REPORT + url).status_code == 403
    assert client.get(PROGRESS).status_code == 403
    assert post(client, RETRY).status_code == 403
    assert client.get("/admin/periods/2026-11/results.csv").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReportRequest)) == 0
    assert app.test_client().get(REPORT).status_code == 302  # to the login page


def test_the_report_page_and_an_empty_report_are_chinese(app, world):
    from tests.test_i18n import _english_phrases

    with app.app_context():  # nobody has data: nobody eligible, no chart, no award
        for supplied in db.session.scalars(select(SuppliedValue)):
            db.session.delete(supplied)
        db.session.commit()
    close(app)
    html = logged_in(app, "admin").get(REPORT).get_data(as_text=True)
    assert "本期没有合格坐席" in html and "本期尚无已批准或已发布的奖项" in html
    assert _english_phrases(html) == []


def test_the_pdf_waiting_page_is_chinese_in_every_state(app, world, monkeypatch):
    from tests.test_i18n import _english_phrases

    close(app)
    admin = logged_in(app, "admin")
    pages = [admin.get(REPORT + ".pdf").get_data(as_text=True)]  # queued, no scheduler
    with app.app_context():
        db.session.scalar(select(ReportRequest)).started_at = utcnow()
        db.session.commit()
    pages.append(admin.get(REPORT + ".pdf").get_data(as_text=True))  # rendering
    monkeypatch.setattr(report_files, "render_pdf", lambda html: 1 / 0)
    with app.app_context():
        db.session.scalar(select(ReportRequest)).started_at = None
        db.session.commit()
    render_requested(app)
    pages.append(admin.get(REPORT + ".pdf").get_data(as_text=True))  # failed
    monkeypatch.undo()
    post(admin, RETRY)
    render_requested(app)
    pages.append(admin.get(PROGRESS).get_data(as_text=True))  # ready
    markers = ("正在准备 PDF", "正在生成 PDF", "PDF 生成失败", "PDF 已生成")
    for page, marker in zip(pages, markers, strict=True):
        assert marker in page
        assert _english_phrases(page) == [], marker
