"""Notifications: the bell, the list, reading them, and their e-mail copies."""

from __future__ import annotations

import socket
from email import message_from_bytes
from email.policy import default

import pytest
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.extensions import db
from portal.notifications.models import Notification
from portal.notifications.services import notify, send_emails
from tests.conftest import login, post

PARAMS = {"metric": "csat", "note": "已改善"}


@pytest.fixture
def people(app, make_user):
    return make_user({Role.AGENT}, agent_no="A"), make_user({Role.AGENT}, agent_no="B")


def _notify(app, user, link="/metrics/me") -> int:
    with app.app_context():
        note = notify(db.session.get(User, user.id), "plan_closed", PARAMS, link)
        db.session.commit()
        return note.id


def _client(app, agent_no):
    client = app.test_client()
    login(client, agent_no)
    return client


def test_the_bell_counts_unread_and_polls_without_keeping_the_session_alive(app, people):
    a, _ = people
    client = _client(app, "A")
    assert 'id="notifications-count"' not in client.get("/").get_data(True)
    _notify(app, a)
    _notify(app, a)
    page = client.get("/")
    assert 'id="notifications-count">2<' in page.get_data(True)
    assert "Set-Cookie" in page.headers  # a page view counts as activity
    bell = client.get("/notifications/bell", headers={"HX-Request": "true"})
    assert 'id="notifications-count">2<' in bell.get_data(True) and "<html" not in bell.get_data(
        True
    )
    assert 'hx-trigger="every 30s"' in bell.get_data(True)
    assert "Set-Cookie" not in bell.headers  # polling does not


def test_the_list_reads_in_the_readers_language_and_opening_marks_read(app, people, make_user):
    a, b = people
    note_id = _notify(app, a, link="/improvement-plans/7")
    client = _client(app, "A")
    html = client.get("/notifications").get_data(True)
    assert "您的客户满意度改进计划已结束:已改善" in html
    opened = post(client, f"/notifications/{note_id}/open", {})
    assert opened.status_code == 302 and opened.headers["Location"] == "/improvement-plans/7"
    with app.app_context():
        assert db.session.get(Notification, note_id).read_at is not None
    assert post(_client(app, "B"), f"/notifications/{note_id}/open", {}).status_code == 404
    with app.app_context():
        db.session.get(User, a.id).locale = "en"
        db.session.commit()
    english = _client(app, "A").get("/notifications").get_data(True)
    assert "Your improvement plan for Customer satisfaction was closed" in english


def test_mark_all_as_read_touches_only_ones_own(app, people):
    a, b = people
    _notify(app, a)
    theirs = _notify(app, b)
    assert post(_client(app, "A"), "/notifications/read-all", {}).status_code == 302
    with app.app_context():
        assert db.session.get(Notification, theirs).read_at is None
        unread = db.session.scalars(select(Notification).where(Notification.read_at.is_(None)))
        assert [n.user_id for n in unread] == [b.id]


def test_no_notifications_is_an_empty_state(app, people):
    assert "还没有通知" in _client(app, "A").get("/notifications").get_data(True)


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free local port, collecting what it receives."""
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


def test_email_copies_go_out_once_in_the_readers_language(app, people, make_user, smtp_server):
    port, received = smtp_server
    a, b = people
    with app.app_context():
        db.session.get(User, b.id).email = ""
        db.session.commit()
    _notify(app, a)
    skipped = _notify(app, b)
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_FROM="portal@example.com")
    try:
        with app.app_context():
            assert send_emails() == "sent 1 e-mail(s), 0 failed"
            assert send_emails() == "sent 0 e-mail(s), 0 failed"  # each copy goes out once
            assert db.session.get(Notification, skipped).email_status == "skipped: no address"
    finally:
        app.config["SMTP_HOST"] = ""
    [mail] = received
    assert mail.rcpt_tos == ["A@example.com"]
    parsed = message_from_bytes(mail.content, policy=default)
    assert parsed["Subject"] == "绩效考核门户:您有一条新通知"
    body = parsed.get_content()
    assert "您的客户满意度改进计划已结束:已改善" in body
    assert "http://127.0.0.1:5000/metrics/me" in body  # PORTAL_BASE_URL + the link
    with app.app_context():
        assert "SMTP_HOST is not set" in send_emails()


def test_an_unreachable_smtp_server_is_recorded_not_raised(app, people):
    a, _ = people
    note_id = _notify(app, a)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port)
    try:
        with app.app_context():
            assert send_emails() == "sent 0 e-mail(s), 1 failed"
            assert db.session.get(Notification, note_id).email_status.startswith("failed:")
    finally:
        app.config["SMTP_HOST"] = ""
