"""A refused htmx request says so on the page instead of failing silently."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role, User
from portal.extensions import db
from tests.browser.test_journeys import _log_in

pytestmark = pytest.mark.browser


def test_htmx_request_refused_after_losing_a_role_shows_a_message(
    live_server, page, app, make_user
):
    admin = make_user({Role.ADMIN}, agent_no="admin", name="杨强")
    make_user({Role.AGENT}, agent_no="10001", name="吴军")

    _log_in(page, live_server, "admin")
    page.goto(f"{live_server}/users")
    rows = page.locator("#accounts-results tbody tr")
    expect(rows).to_have_count(2)

    # While the page is open, the account loses the admin role (the session stays valid).
    with app.app_context():
        user = db.session.get(User, admin.id)
        user.set_roles({Role.AGENT})
        db.session.commit()
        db.session.remove()

    page.evaluate("window.__same_page = true")
    page.fill("input[name=q]", "吴")

    message = page.locator("#portal-messages [role=alert]")
    expect(message).to_have_attribute("data-status", "403")
    expect(message).to_contain_text("无权访问")
    expect(message).to_contain_text("您的账号无权打开此页面")
    # The refusal is not swapped into the table: the old results stay, on the same page.
    expect(rows).to_have_count(2)
    assert page.evaluate("window.__same_page") is True
