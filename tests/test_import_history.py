"""The import history and the upload pages, read in each reader's language: reasons and
messages are kept as message ids and translated when shown, whatever door the import came by."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from portal.accounts.models import Role
from portal.extensions import db
from portal.metrics.models import ImportRecord
from tests.conftest import login, post
from tests.test_uploads import CSV, _commit, _preview

MISSING_AND_TWICE = "interaction_id,offered_at,offered_at\nx1,2026-11-03T09:00:00,x\n"


@pytest.fixture
def admin(app, make_user):
    make_user({Role.AGENT}, agent_no="A", name="王芳")
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    return client


def _page(client, url: str) -> str:
    return unescape(client.get(url).get_data(as_text=True))


def _last_record(app) -> int:
    with app.app_context():
        return db.session.scalar(select(ImportRecord.id).order_by(ImportRecord.id.desc()))


@pytest.mark.parametrize("apart", [False, True], ids=["here", "parsing-process"])
def test_a_command_line_refusal_reads_in_each_viewers_language(
    app, admin, runner, tmp_path, monkeypatch, apart
):
    from portal.metrics import ingest

    if apart:  # the reasons come pickled from the parsing process
        monkeypatch.setattr(ingest, "PARSE_APART_BYTES", 0)
    path = tmp_path / "calls.csv"
    path.write_text(CSV, encoding="utf-8")
    result = runner.invoke(args=["import", "interactions", str(path)])
    assert result.exit_code == 1
    # The command line reports in English, as before.
    assert "Row 3: agent_no 'NOBODY' is not a known employee number" in result.output
    assert "Error: 1 row(s) rejected, nothing imported." in result.output
    url = f"/imports/{_last_record(app)}"
    chinese = _page(admin, url)
    assert "agent_no 'NOBODY' 不是已登记的工号" in chinese
    assert "1 行被拒绝" in chinese
    assert "known employee number" not in chinese and "rejected, nothing" not in chinese
    post(admin, "/account/language", {"locale": "en"})
    english = _page(admin, url)
    assert "agent_no 'NOBODY' is not a known employee number" in english
    assert "1 row(s) rejected, nothing imported." in english


def test_a_header_problem_is_translated_with_its_parts(app, admin, runner, tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text(MISSING_AND_TWICE, encoding="utf-8")
    result = runner.invoke(args=["import", "interactions", str(path)])
    assert "missing column(s): ended_at; column(s) named twice: offered_at" in result.output
    chinese = _page(admin, f"/imports/{_last_record(app)}")
    assert re.search("表头有问题.缺少列.ended_at.{1,2}重复的列.offered_at", chinese), chinese
    assert "missing column" not in chinese


def test_an_upload_reads_in_the_language_of_whoever_looks_now(app, admin):
    """The uploader checked the file in Chinese; the preview and the record are read in the
    language chosen since."""
    preview = _preview(admin, CSV.encode())
    assert "不是已登记的工号" in unescape(preview.get_data(as_text=True))
    post(admin, "/account/language", {"locale": "en"})
    again = _page(admin, preview.request.path)
    assert "agent_no 'NOBODY' is not a known employee number" in again
    token = re.search(r'name="token" value="([0-9a-f]+)"', again).group(1)
    done = _commit(admin, token, valid_only="1")
    record = _page(admin, done.headers["Location"])
    assert "agent_no 'NOBODY' is not a known employee number" in record


def test_who_imported_is_shown_in_the_readers_language(app, admin):
    with app.app_context():
        for door, label in (("api", "API token ACD 话单系统"), ("inbox", "system")):
            db.session.add(
                ImportRecord(kind="interactions", door=door, actor_label=label, status="committed")
            )
        db.session.commit()
    history = _page(admin, "/imports")
    assert "API 令牌 ACD 话单系统" in history and "系统" in history
    assert "API token" not in history
    post(admin, "/account/language", {"locale": "en"})
    assert "API token ACD 话单系统" in _page(admin, "/imports")


def test_records_kept_as_text_before_are_shown_as_they_are(app, admin):
    with app.app_context():
        record = ImportRecord(
            kind="interactions",
            door="cli",
            actor_label="system",
            status="rejected",
            message="1 row(s) rejected, nothing imported. Fix them, or import the valid rows only.",
            rejections=[[3, "agent_no 'NOBODY' is not a known employee number"]],
        )
        db.session.add(record)
        db.session.commit()
        url = f"/imports/{record.id}"
    page = _page(admin, url)
    assert "1 row(s) rejected, nothing imported." in page
    assert "agent_no 'NOBODY' is not a known employee number" in page
