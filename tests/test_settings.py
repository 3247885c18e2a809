"""Portal settings: defaults when nothing is stored, checked values, audited changes, and the
admin's settings screen."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.accounts.models import Role
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.system import settings
from portal.system.models import Setting
from tests.conftest import login, post
from tests.test_i18n import _english_phrases


def test_missing_keys_take_their_defaults(ctx):
    assert settings.get_setting("leaderboard_humane") is True
    assert settings.get_setting("leaderboard_top_n") == 10
    assert settings.get_settings("leaderboard_top_n", "leaderboard_humane") == {
        "leaderboard_top_n": 10,
        "leaderboard_humane": True,
    }
    with pytest.raises(KeyError):
        settings.get_setting("no_such_setting")


def test_a_change_is_stored_and_audited_and_repeating_it_changes_nothing(app, make_user):
    admin = make_user({Role.ADMIN}, agent_no="admin")
    with app.app_context():
        assert settings.set_setting("leaderboard_top_n", 25, admin) == 25
        assert settings.set_setting("leaderboard_humane", False, admin) is False
        db.session.commit()
        assert settings.get_setting("leaderboard_top_n") == 25
        assert settings.get_settings("leaderboard_humane")["leaderboard_humane"] is False
        row = db.session.get(Setting, "leaderboard_top_n")
        assert row.updated_by == admin.id
        settings.set_setting("leaderboard_top_n", "25", admin)  # the same value again
        db.session.commit()
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.action, e.object_id) for e in entries] == [
            ("setting.change", "leaderboard_top_n"),
            ("setting.change", "leaderboard_humane"),
        ]
        assert (entries[0].before, entries[0].after) == (
            {"leaderboard_top_n": 10},
            {"leaderboard_top_n": 25},
        )


@pytest.mark.parametrize("value", [0, 101, -3, "abc", "1.5", 2.5, True, None, ""])
def test_top_n_must_be_a_whole_number_from_1_to_100(ctx, value):
    with pytest.raises(settings.SettingError):
        settings.set_setting("leaderboard_top_n", value, None)
    assert settings.get_setting("leaderboard_top_n") == 10


@pytest.mark.parametrize(("value", "stored"), [(1, 1), (100, 100), (" 42 ", 42), ("7", 7)])
def test_top_n_accepts_whole_numbers_in_range(ctx, value, stored):
    assert settings.set_setting("leaderboard_top_n", value, None) == stored


def test_humane_mode_takes_on_or_off_only(ctx):
    assert settings.set_setting("leaderboard_humane", "y", None) is True
    assert settings.set_setting("leaderboard_humane", "", None) is False
    with pytest.raises(settings.SettingError):
        settings.set_setting("leaderboard_humane", "maybe", None)


@pytest.fixture
def admin_client(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    return client


def test_the_settings_screen_saves_both_settings(app, admin_client):
    html = admin_client.get("/admin/settings").get_data(True)
    assert 'value="10"' in html and "checked" in html
    assert _english_phrases(html) == []
    response = post(admin_client, "/admin/settings", {"leaderboard_top_n": "5"})
    assert response.status_code == 302 and "saved=1" in response.headers["Location"]
    with app.app_context():
        assert settings.get_settings("leaderboard_humane", "leaderboard_top_n") == {
            "leaderboard_humane": False,  # the unticked box
            "leaderboard_top_n": 5,
        }
    saved = admin_client.get("/admin/settings?saved=1").get_data(True)
    assert 'id="system-settings-saved"' in saved and 'value="5"' in saved


def test_a_bad_top_n_is_refused_with_its_reason_and_nothing_changes(app, admin_client):
    response = post(
        admin_client,
        "/admin/settings",
        {"leaderboard_humane": "y", "leaderboard_top_n": "500"},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(True)
    assert response.status_code == 422 and "<html" not in html
    assert "请输入 1 到 100 之间的整数" in html
    assert _english_phrases(html) == []
    with app.app_context():
        assert db.session.scalars(select(Setting)).all() == []
        assert db.session.scalars(select(AuditEntry)).all() == []


def test_only_admins_see_the_settings_link(app, admin_client, make_user):
    assert 'href="/admin/settings"' in admin_client.get("/").get_data(True)
    make_user({Role.TEAM_LEAD, Role.AGENT}, agent_no="lead")
    lead = app.test_client()
    login(lead, "lead")
    assert 'href="/admin/settings"' not in lead.get("/").get_data(True)
    assert lead.get("/admin/settings").status_code == 403


def test_a_value_read_while_the_change_was_uncommitted_is_forgotten_at_commit(app):
    """A board request of another thread may read the old value between the change's flush
    and its commit; the change shows once committed all the same."""
    import threading

    def read() -> dict:
        seen = {}

        def look():  # a board's GET request (on SQLite: a reader beside the writer)
            with app.test_request_context("/leaderboards"):
                seen.update(settings.recent_settings("leaderboard_top_n", seconds=600))

        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        return seen

    with app.app_context():
        settings.set_setting("leaderboard_top_n", 30, None)  # flushed, not committed
        assert read() == {"leaderboard_top_n": 10}  # another request keeps the old value
        db.session.commit()
    assert read() == {"leaderboard_top_n": 30}
