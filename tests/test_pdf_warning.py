"""Without HarfBuzz's subsetting library every certificate takes seconds: the portal says so at
start and on the admin's scheduled jobs page."""

from __future__ import annotations

import ctypes.util
import logging

import pytest

from portal import create_app, pdf
from portal.accounts.models import Role
from tests.conftest import login


def _without_subsetting(monkeypatch) -> None:
    """Hide libharfbuzz-subset from the library lookup, as on a machine without it."""
    real = ctypes.util.find_library
    monkeypatch.setattr(
        ctypes.util,
        "find_library",
        lambda name: None if name == "harfbuzz-subset" else real(name),
    )


def test_subsetting_missing_follows_the_library_lookup(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libharfbuzz-subset.so.0")
    assert pdf.subsetting_missing() is False
    _without_subsetting(monkeypatch)
    assert pdf.subsetting_missing() is True


@pytest.mark.parametrize("missing", [True, False])
def test_start_warns_only_when_subsetting_is_missing(app, monkeypatch, caplog, missing):
    if missing:
        _without_subsetting(monkeypatch)
    else:
        monkeypatch.setattr(pdf, "subsetting_missing", lambda: False)
    with caplog.at_level(logging.WARNING):
        fresh = create_app({**app.config})
    warnings = [
        r for r in caplog.records if r.name == fresh.logger.name and r.levelno == logging.WARNING
    ]
    if missing:
        assert len(warnings) == 1
        assert "libharfbuzz-subset0" in warnings[0].getMessage()
        assert "slow" in warnings[0].getMessage()
    else:
        assert warnings == []


def test_jobs_page_tells_the_admin_when_subsetting_is_missing(app, make_user, monkeypatch):
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    _without_subsetting(monkeypatch)
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert 'id="system-pdf-slow"' in html
    assert "libharfbuzz-subset0" in html
    monkeypatch.setattr(pdf, "subsetting_missing", lambda: False)
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert 'id="system-pdf-slow"' not in html
