"""The import history and the upload pages: read in each reader's language (reasons and
messages are kept as message ids and translated when shown, whatever door the import came by),
and every kept rejection reachable a page at a time."""

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


def _bad_rows(count: int) -> str:
    header = "interaction_id,agent_no,offered_at,ended_at\n"
    bad = "b{n},NOBODY,2026-11-03T09:00:00+08:00,2026-11-03T09:01:00+08:00\n"
    return header + "".join(bad.format(n=n) for n in range(count))


def _rows_listed(page: str) -> list[int]:
    table = page.split('id="imports-rejections"')[1].split("</table>")[0]
    return [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", table)]


def test_every_kept_rejection_is_listed_a_page_at_a_time_and_the_others_counted(
    app, admin, runner, tmp_path
):
    """10,000 rejections are kept, 100 a page; the page says how many more were rejected."""
    data = _bad_rows(10_050)
    path = tmp_path / "calls.csv"
    path.write_text(data, encoding="utf-8")
    assert runner.invoke(args=["import", "interactions", str(path)]).exit_code == 1
    url = f"/imports/{_last_record(app)}"
    first = _page(admin, url)
    assert _rows_listed(first) == list(range(2, 102))
    assert "第 1 / 100 页(共 10000 条)" in first and f'href="{url}?page=2"' in first
    assert "还有 50 行被拒绝" in first
    last = _page(admin, f"{url}?page=100")
    assert _rows_listed(last) == list(range(9902, 10_002))
    assert _rows_listed(_page(admin, f"{url}?page=999")) == list(range(9902, 10_002))
    preview = _preview(admin, data.encode())
    listed = unescape(preview.get_data(as_text=True))
    assert _rows_listed(listed) == list(range(2, 102)) and "还有 50 行被拒绝" in listed
    second = _page(admin, f"{preview.request.path}?page=2")
    assert _rows_listed(second) == list(range(102, 202))


def test_a_few_rejections_need_no_pages_and_no_note(app, admin):
    page = unescape(_preview(admin, _bad_rows(3).encode()).get_data(as_text=True))
    assert _rows_listed(page) == [2, 3, 4]
    assert "portal-pager" not in page and "imports-rejections-more" not in page


def test_the_history_does_not_read_the_rejections(app, admin, runner, tmp_path):
    """Each record may keep 10,000 rejections: the history's 25 records a page leave them."""
    from sqlalchemy import event

    path = tmp_path / "calls.csv"
    path.write_text(_bad_rows(50), encoding="utf-8")
    for _ in range(3):
        runner.invoke(args=["import", "interactions", str(path)])
    with app.app_context():
        engine = db.engine
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        history = admin.get("/imports")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert history.status_code == 200 and "calls.csv" in history.get_data(as_text=True)
    # The page's records (the count around them names every column, and reads none).
    records = [s for s in statements if "FROM imports" in s and "LIMIT" in s]
    assert records and not [s for s in records if "rejections" in s]
