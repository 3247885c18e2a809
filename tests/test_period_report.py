"""The admin's period report: a closed period's frozen results summed up, drawn and listed as a
page and a PDF, its awards, and its results as CSV and XLSX."""

from __future__ import annotations

import csv
import io

import pypdf
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.awards.models import Award, AwardType
from portal.extensions import db
from portal.metrics.models import SuppliedValue
from portal.metrics.periods import parse_period
from portal.periods import services
from portal.periods.models import PeriodRow
from tests.test_period_results import AFTER_CLOSE, build_world, change_everything, close, supply
from tests.test_period_results import _client as logged_in

REPORT = "/admin/periods/2026-11/report"


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


def test_the_report_pdf_has_the_period_agents_awards_and_chinese_text(app, closed):
    response = logged_in(app, "admin").get(REPORT + ".pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'report-2026-11-v1.pdf"' in response.headers["Content-Disposition"]
    reader = pypdf.PdfReader(io.BytesIO(response.get_data()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "2026-11" in text and "考核报告" in text
    for expected in ("甲", "乙", "丙", "110.00", "团队协作奖", "已批准", "概要", "一组"):
        assert expected in text, expected


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
    for url in ("/report", "/report.pdf", "/results.csv", "/results.xlsx"):
        assert admin.get("/admin/periods/2026-12" + url).status_code == 404
    assert admin.get("/admin/periods/2026-11/results.pdf").status_code == 404


@pytest.mark.parametrize("role", [Role.AGENT, Role.TEAM_LEAD, Role.QA, Role.QA_LEAD])
def test_only_admins_get_the_report(app, closed, make_user, role):
    make_user({role}, agent_no="someone")
    client = logged_in(app, "someone")
    for url in ("", ".pdf"):
        assert client.get(REPORT + url).status_code == 403
    assert client.get("/admin/periods/2026-11/results.csv").status_code == 403
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
