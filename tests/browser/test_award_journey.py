"""An admin closes a period, approves its nominations and publishes; the agent sees the award
on the wall, downloads the certificate, and the public verification page confirms it."""

from __future__ import annotations

import io

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader
from sqlalchemy import select

from portal.accounts.models import Position, Role, User
from portal.awards.models import Award
from portal.extensions import db
from portal.metrics.periods import parse_period
from portal.periods import services
from portal.scoring.models import Plan, PlanVersion
from tests.browser.test_journeys import _log_in
from tests.test_awards import plan, result

pytestmark = pytest.mark.browser


def test_admin_closes_and_publishes_the_agent_downloads_and_verifies(
    app, live_server, page, make_user, make_team, scheduler, monkeypatch
):
    make_user({Role.ADMIN}, agent_no="admin", name="杨强")
    team = make_team("一组")
    with app.app_context():
        position = Position(name="电话客服")
        db.session.add(position)
        db.session.flush()
        plan_row = Plan(position_id=position.id, period_kind="monthly")
        db.session.add(plan_row)
        db.session.flush()
        db.session.add(PlanVersion(plan_id=plan_row.id, number=1, document={}))
        row_id = services.ensure_period(parse_period("2026-10")).id
        db.session.commit()
        position_id = position.id
    star = make_user({Role.AGENT}, agent_no="10001", name="吴军", team=team, position=position_id)
    other = make_user({Role.AGENT}, agent_no="10002", name="李娜", team=team, position=position_id)

    def scored(period):  # the two agents' results, as the engine would give them
        people = {u.id: db.session.get(User, u.id) for u in (star, other)}
        found = plan(
            [result(star.id, 97.5), result(other.id, 72, rank=2)], people, period=period.key
        )
        found.version = db.session.scalar(select(PlanVersion))
        return [found]

    monkeypatch.setattr(services, "all_results", scored)

    _log_in(page, live_server, "admin")
    page.goto(f"{live_server}/admin/periods")
    page.click("#period-close-2026-10")
    # The scheduler closes it within seconds; the row's progress polls, then the page reloads.
    expect(page.locator("#period-publish-2026-10")).to_be_visible(timeout=20_000)
    page.click("#period-awards-2026-10")
    expect(page.locator("h2")).to_contain_text("2026-10")
    with app.app_context():
        award = db.session.scalar(select(Award))
        award_id, number = award.id, award.certificate_no
    expect(page.locator(f"#award-{award_id}")).to_contain_text("吴军")
    page.click(f"#award-approve-{award_id}")
    expect(page.locator(f"#award-{award_id}")).to_contain_text("已批准")
    page.click("#period-publish-2026-10")
    expect(page.locator(f"#award-{award_id}")).to_contain_text("已发布")
    page.click("#logout")

    _log_in(page, live_server, "10001")
    page.goto(f"{live_server}/awards/wall")
    card = page.locator(f"#award-{award_id}")
    expect(card).to_contain_text("服务之星")
    expect(card).to_contain_text("吴军")
    with page.expect_download() as download:
        page.click(f"#wall-pdf-{award_id}")
    with open(download.value.path(), "rb") as pdf:
        pages = PdfReader(io.BytesIO(pdf.read())).pages
    text = "".join("".join(p.extract_text() for p in pages).split())
    assert "吴军" in text and number in text
    card.get_by_role("link", name=number).click()
    expect(page.locator("#verify-valid")).to_contain_text("有效")
    expect(page.locator("#verify-holder")).to_have_text("吴军")
    with app.app_context():
        assert db.session.get(services.PeriodRow, row_id).published_version == 1
