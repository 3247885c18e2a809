"""Uploading a data file: a preview that stores nothing, then the import, then the history."""

from __future__ import annotations

import io
import re
import threading

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role
from portal.extensions import db
from portal.metrics.models import ImportRecord, Interaction, UploadTask
from tests.conftest import csrf_token, login, post

CSV = (
    "interaction_id,queue,agent_no,offered_at,answered_at,ended_at,customer_key,班次\n"
    "u1,售后热线,A,2026-11-03T09:00:00+08:00,2026-11-03T09:00:10+08:00,2026-11-03T09:05:10+08:00,c1,早\n"
    "u2,售后热线,NOBODY,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,c2,早\n"
    "u3,售后热线,A,2026-11-03 10:00:00,2026-11-03 10:00:05,2026-11-03 10:02:05,c3,晚\n"
)


@pytest.fixture
def admin(app, make_user):
    make_user({Role.AGENT}, agent_no="A", name="王芳")
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    return client


def _run_tasks(app) -> None:
    """What the scheduler process does every few seconds."""
    from portal.metrics.uploads import run_upload_tasks

    with app.app_context():
        run_upload_tasks()


def _queue(client, data: bytes, kind="interactions", name="calls.csv"):
    return client.post(
        "/imports/preview",
        data={"kind": kind, "file": (io.BytesIO(data), name), "csrf_token": csrf_token(client)},
        content_type="multipart/form-data",
    )


def _preview(client, data: bytes, kind="interactions", name="calls.csv"):
    """Upload, let the scheduler check the file, and open the outcome."""
    queued = _queue(client, data, kind, name)
    if queued.status_code != 302:
        return queued
    _run_tasks(client.application)
    return client.get(queued.headers["Location"])


def _commit(client, token: str, **form):
    """Ask for the import, let the scheduler run it; the task page then leads to the record."""
    queued = post(client, "/imports/commit", {"token": token, **form})
    assert queued.status_code == 302, queued.status_code
    _run_tasks(client.application)
    return client.get(queued.headers["Location"])


def _task_id(app, token: str, action: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(UploadTask.id).where(UploadTask.token == token, UploadTask.action == action)
        )


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Interaction.id)))


def test_preview_shows_encoding_columns_rows_and_rejections_and_stores_nothing(app, admin):
    page = _preview(admin, CSV.encode("gbk"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="imports-encoding">gb18030<' in html
    assert "班次" in html  # the unknown column, listed
    assert re.search(r'id="imports-new">2<', html) and re.search(r'id="imports-rejected">1<', html)
    assert "NOBODY" in html and "不是已登记的工号" in html  # the reason, in Chinese
    assert "2026-11-03 09:00:00" in html  # a row as it will be stored, in local time
    assert "导入有效行" in html
    assert _count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(ImportRecord.id))) == 0


def test_committing_the_valid_rows_imports_them_and_records_the_upload(app, admin):
    html = _preview(admin, CSV.encode("gbk")).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    done = _commit(admin, token, valid_only="1")
    assert done.status_code == 302
    assert _count(app) == 2
    detail = admin.get(done.headers["Location"]).get_data(as_text=True)
    assert "已导入" in detail and "NOBODY" in detail
    history = admin.get("/imports").get_data(as_text=True)
    assert "calls.csv" in history and "上传" in history
    # The preview now leads to the import instead of offering it again.
    again = admin.get(f"/imports/tasks/{_task_id(app, token, 'preview')}").get_data(as_text=True)
    assert 'id="imports-follow"' in again and "imports-commit" not in again


def test_the_preview_shows_only_rows_that_would_be_stored_and_rejections_in_row_order(app, admin):
    lines = CSV.splitlines()
    # Row 3 repeats row 2's id, row 4 names an unknown agent.
    data = "\n".join([lines[0], lines[1], lines[1], lines[2], lines[3]]) + "\n"
    html = _preview(admin, data.encode()).get_data(as_text=True)
    sample = html.split('id="imports-sample"')[1].split("</table>")[0]
    shown_rows = re.findall(r"<tr><td>(\d+)</td>", sample)
    assert shown_rows == ["2", "5"]
    rejections = html.split('id="imports-rejections"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(\d+)</td>", rejections) == ["3", "4"]
    assert re.search(r'id="imports-new">2<', html) and re.search(r'id="imports-rejected">2<', html)


def _sample(html: str) -> tuple[list[str], list[list[str]]]:
    table = html.split('id="imports-sample"')[1].split("</table>")[0]
    head = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", table)]
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(<td>.*?)</tr>", table)]
    return head, rows


def test_the_previews_first_rows_are_headed_by_the_files_columns(app, admin):
    """As the rest of the page names them (columns found, missing, unknown), in metrics.md's
    order; values as they will be stored (times in local time, defaults filled in)."""
    head, rows = _sample(_preview(admin, CSV.encode()).get_data(as_text=True))
    assert head == [
        "行",
        "interaction_id",
        "channel",
        "queue",
        "agent_no",
        "offered_at",
        "answered_at",
        "ended_at",
        "wrap_seconds",
        "hold_seconds",
        "customer_key",
        "transferred",
        "resolved",
    ]
    assert rows[0][:8] == ["2", "u1", "phone", "售后热线", "A"] + [
        "2026-11-03 09:00:00",
        "2026-11-03 09:00:10",
        "2026-11-03 09:05:10",
    ]
    surveys = "survey_id,interaction_id,csat,submitted_at\ns1,u1,5,2026-11-03T12:00:00\n"
    _commit_all(admin, CSV)
    head, rows = _sample(_preview(admin, surveys.encode(), "surveys").get_data(as_text=True))
    assert head == ["行", "survey_id", "interaction_id", "csat", "nps", "submitted_at", "comment"]
    assert rows == [["2", "s1", "u1", "5", "—", "2026-11-03 12:00:00", ""]]


def _commit_all(client, text: str) -> None:
    html = _preview(client, text.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    assert _commit(client, token, valid_only="1").status_code == 302


def test_a_file_without_a_valid_row_offers_no_import(app, admin):
    only_bad = "\n".join(
        CSV.splitlines()[:1] + [line for line in CSV.splitlines() if "NOBODY" in line]
    )
    html = _preview(admin, (only_bad + "\n").encode()).get_data(as_text=True)
    assert 'id="imports-nothing-valid"' in html and "没有可导入的行" in html
    assert "imports-commit" not in html


def test_valid_rows_that_became_invalid_before_the_import_are_refused(app, admin):
    """The preview found valid rows; by the time of the import none is valid any more (here
    the agent's employee number changed): the import is refused, and says why."""
    from portal.accounts.models import User

    html = _preview(admin, CSV.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    with app.app_context():
        db.session.scalar(select(User).where(User.agent_no == "A")).agent_no = "A-2"
        db.session.commit()
    done = _commit(admin, token, valid_only="1")
    assert done.status_code == 302
    detail = admin.get(done.headers["Location"]).get_data(as_text=True)
    assert 'id="imports-outcome"' in detail and "全部 3 行均被拒绝" in detail
    assert _count(app) == 0
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.status == "rejected" and record.rejected == 3


def test_a_clean_file_is_imported_whole(app, admin):
    clean = "\n".join(line for line in CSV.splitlines() if "NOBODY" not in line) + "\n"
    html = _preview(admin, clean.encode("utf-8-sig")).get_data(as_text=True)
    assert 'id="imports-commit"' in html and "imports-commit-valid" not in html
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    assert _commit(admin, token).status_code == 302
    assert _count(app) == 2


def test_a_file_with_a_problem_cannot_be_committed(app, admin):
    html = _preview(admin, b"\x00\x01binary\x00" * 20, name="x.csv").get_data(as_text=True)
    assert 'id="imports-problem"' in html and "不是 CSV 文本文件" in html
    assert "imports-commit" not in html
    missing = _preview(admin, b"interaction_id,offered_at\nx,2026-11-03T09:00:00\n")
    assert "缺少列:ended_at" in missing.get_data(as_text=True)


def test_another_admins_upload_cannot_be_committed(app, admin, make_user):
    html = _preview(admin, CSV.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    make_user({Role.ADMIN}, agent_no="admin2")
    other = app.test_client()
    login(other, "admin2")
    assert post(other, "/imports/commit", {"token": token}).status_code == 403
    assert post(other, "/imports/commit", {"token": "../../etc"}).status_code == 404
    assert other.get(f"/imports/tasks/{_task_id(app, token, 'preview')}").status_code == 403
    assert other.get("/imports/tasks/99999").status_code == 404
    make_user({Role.AGENT}, agent_no="B")
    agent = app.test_client()
    login(agent, "B")
    assert agent.get(f"/imports/tasks/{_task_id(app, token, 'preview')}").status_code == 403


def test_missing_kind_or_file_says_what_to_do(admin):
    response = post(admin, "/imports/preview", {"kind": "interactions"})
    assert response.status_code == 422
    assert "请选择文件内容类型并选择要上传的文件" in response.get_data(as_text=True)


def test_an_upload_over_the_size_limit_states_the_limit_and_what_to_do(app, admin):
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    try:
        response = _preview(admin, b"x" * (3 * 1024 * 1024))
        assert response.status_code == 413
        html = response.get_data(as_text=True)
        assert "2 MB" in html and "拆分文件" in html
        assert "flask import" in html and "收件箱文件夹" in html
        post(admin, "/account/language", {"locale": "en"})
        html = _preview(admin, b"x" * (3 * 1024 * 1024)).get_data(as_text=True)
        assert "2 MB" in html and "Split the file" in html
        assert "flask import" in html and "inbox folder" in html
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 50 * 1024 * 1024


def test_abandoned_uploads_are_deleted_after_a_day(app, admin):
    import os
    import time
    from datetime import UTC, datetime
    from pathlib import Path

    from portal.jobs import purge_uploads

    folder = Path(app.instance_path) / "uploads"
    for leftover in folder.glob("*"):
        leftover.unlink()
    _preview(admin, CSV.encode())
    files = list(folder.glob("*"))
    assert files
    with app.app_context():
        assert purge_uploads(datetime.now(UTC)).startswith("removed 0 abandoned upload files")
        old = time.time() - 2 * 24 * 3600
        for path in files:
            os.utime(path, (old, old))
        assert purge_uploads(datetime.now(UTC)).startswith(
            f"removed {len(files)} abandoned upload files"
        )


def test_the_task_page_shows_progress_while_the_scheduler_works(app, admin, monkeypatch):
    from portal.metrics import ingest, uploads

    queued = _queue(admin, CSV.encode())
    waiting = admin.get(queued.headers["Location"]).get_data(as_text=True)
    assert 'id="imports-task-queued"' in waiting and 'hx-trigger="load delay:1s"' in waiting
    seen = []
    report = uploads._report

    def report_and_look(task, rows, done):
        report(task, rows, done)
        # The page polls from another process; a thread has its own app context, session
        # and connection, as that process would.
        look = threading.Thread(
            target=lambda: seen.append(
                admin.get(queued.headers["Location"] + "?poll=1", headers={"HX-Request": "true"})
            )
        )
        look.start()
        look.join()

    monkeypatch.setattr(ingest, "BATCH", 1)
    monkeypatch.setattr(ingest, "FAST_BATCH", 1)
    monkeypatch.setattr(ingest, "COPY_BATCH", 1)
    monkeypatch.setattr(uploads, "_report", report_and_look)
    _run_tasks(app)
    first = seen[0].get_data(as_text=True)
    assert 'id="imports-task-running"' in first and "已读取 1 行" in first
    assert "<html" not in first  # a fragment, swapped in place while polling
    assert 'hx-get="/imports/tasks/' in first  # and it keeps polling
    done = admin.get(queued.headers["Location"] + "?poll=1", headers={"HX-Request": "true"})
    assert done.headers["HX-Redirect"] == queued.headers["Location"]  # the outcome, as a page
    assert 'id="imports-new">2<' in admin.get(queued.headers["Location"]).get_data(as_text=True)


def test_a_double_click_on_import_queues_one_import(app, admin):
    html = _preview(admin, CSV.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    first = post(admin, "/imports/commit", {"token": token, "valid_only": "1"})
    second = post(admin, "/imports/commit", {"token": token, "valid_only": "1"})
    assert first.headers["Location"] == second.headers["Location"]
    _run_tasks(app)
    assert _count(app) == 2
    with app.app_context():
        assert db.session.scalar(select(func.count(ImportRecord.id))) == 1


def test_a_task_whose_process_died_says_so_and_is_released(app, admin):
    from datetime import timedelta

    from portal.db import utcnow
    from portal.metrics.uploads import run_upload_tasks

    queued = _queue(admin, CSV.encode())
    task_id = int(queued.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        task = db.session.get(UploadTask, task_id)
        task.status, task.started_at = "running", utcnow() - timedelta(minutes=10)
        db.session.commit()
    html = admin.get(queued.headers["Location"]).get_data(as_text=True)
    assert 'id="imports-task-failed"' in html and 'hx-get="/imports/tasks' not in html
    with app.app_context():
        assert run_upload_tasks().endswith("1 interrupted")
        assert db.session.get(UploadTask, task_id).status == "failed"


def _failing_import(monkeypatch, error: Exception) -> None:
    """The import's writing fails with `error` (a bug, or the database)."""
    from portal.metrics import ingest

    def fail(self, batch):
        raise error

    monkeypatch.setattr(ingest.Importer, "write", fail)


def test_a_failed_import_says_what_to_do_and_leaves_a_failed_record(app, admin, monkeypatch):
    import hashlib

    data = CSV.encode()
    html = _preview(admin, data).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    _failing_import(monkeypatch, RuntimeError("KeyError in _upsert: internal detail"))
    page = _commit(admin, token, valid_only="1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    task_id = _task_id(app, token, "import")
    assert 'id="imports-task-failed"' in html
    assert "意外错误" in html and f"上传任务 {task_id}" in html
    assert "internal detail" not in html and "Traceback" not in html
    assert _count(app) == 0
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert (record.status, record.door, record.filename) == ("failed", "upload", "calls.csv")
        assert record.checksum == hashlib.sha256(data).hexdigest() and record.valid_only
        assert record.actor_label.startswith("admin")
    assert f'href="/imports/{record.id}"' in html
    history = admin.get("/imports").get_data(as_text=True)
    assert "失败" in history
    detail = admin.get(f"/imports/{record.id}").get_data(as_text=True)
    assert 'id="imports-outcome"' in detail and "意外错误" in detail
    post(admin, "/account/language", {"locale": "en"})
    english = admin.get(f"/imports/tasks/{task_id}").get_data(as_text=True)
    assert "An unexpected error stopped this, so nothing was stored." in english


def test_a_database_too_busy_is_named_as_such(app, admin, monkeypatch):
    from sqlalchemy.exc import OperationalError

    html = _preview(admin, CSV.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    _failing_import(monkeypatch, OperationalError("INSERT …", {}, Exception("database is locked")))
    html = _commit(admin, token, valid_only="1").get_data(as_text=True)
    assert "数据库" in html and "忙" in html and "database is locked" not in html


def test_a_check_whose_file_is_gone_says_to_upload_again_and_leaves_no_record(app, admin):
    from pathlib import Path

    queued = _queue(admin, CSV.encode())
    for path in (Path(app.instance_path) / "uploads").glob("*.upload"):
        path.unlink()
    _run_tasks(app)
    html = admin.get(queued.headers["Location"]).get_data(as_text=True)
    assert 'id="imports-task-failed"' in html and "已不在" in html
    with app.app_context():
        assert db.session.scalar(select(func.count(ImportRecord.id))) == 0


def test_an_interrupted_import_leaves_a_failed_record(app, admin):
    from datetime import timedelta

    from portal.db import utcnow
    from portal.metrics.uploads import run_upload_tasks

    html = _preview(admin, CSV.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    queued = post(admin, "/imports/commit", {"token": token, "valid_only": "1"})
    task_id = _task_id(app, token, "import")
    with app.app_context():
        task = db.session.get(UploadTask, task_id)
        task.status, task.started_at = "running", utcnow() - timedelta(minutes=10)
        db.session.commit()
        assert run_upload_tasks().endswith("1 interrupted")
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.status == "failed" and db.session.get(UploadTask, task_id).import_id
    html = admin.get(queued.headers["Location"]).get_data(as_text=True)
    assert "停止" in html and 'id="imports-task-record"' in html


def test_the_task_page_gives_the_size_in_the_readers_language(app, admin):
    queued = _queue(admin, b"interaction_id,offered_at,ended_at\n")
    assert "35 字节" in admin.get(queued.headers["Location"]).get_data(as_text=True)
    post(admin, "/account/language", {"locale": "en"})
    html = admin.get(queued.headers["Location"]).get_data(as_text=True)
    assert "35 bytes" in html and "Bytes" not in html


def test_a_task_nobody_picks_up_says_to_start_the_scheduler(app, admin):
    from datetime import timedelta

    from portal.db import utcnow

    queued = _queue(admin, CSV.encode())
    assert "flask scheduler run" not in admin.get(queued.headers["Location"]).get_data(True)
    with app.app_context():
        task = db.session.get(UploadTask, int(queued.headers["Location"].rsplit("/", 1)[1]))
        task.created_at = utcnow() - timedelta(minutes=2)
        db.session.commit()
    assert "flask scheduler run" in admin.get(queued.headers["Location"]).get_data(True)


def _postgresql_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has one writer at a time: the other scheduler would wait")


def _meanwhile_another_scheduler_fails(app, task_id: int) -> None:
    """What another scheduler process does to a task it takes for dead: its own connection
    marks the task failed and commits."""
    from portal.metrics.uploads import INTERRUPTED, _failed

    with app.app_context():  # a session of its own (pushed contexts do not share one)
        task = db.session.get(UploadTask, task_id)
        _failed(task, INTERRUPTED, task.started_at)
        db.session.commit()


def test_a_task_reported_dead_by_two_schedulers_gets_one_failed_record(app, admin, monkeypatch):
    from datetime import timedelta

    from portal.db import utcnow
    from portal.metrics import uploads

    _postgresql_only(app)
    html = _preview(admin, CSV.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    post(admin, "/imports/commit", {"token": token, "valid_only": "1"})
    task_id = _task_id(app, token, "import")
    with app.app_context():
        task = db.session.get(UploadTask, task_id)
        task.status, task.started_at = "running", utcnow() - timedelta(minutes=10)
        db.session.commit()
    stale = uploads.is_stale

    def seen_stale_by_both(task, now):  # the other scheduler reports it first
        _meanwhile_another_scheduler_fails(app, task.id)
        return stale(task, now)

    monkeypatch.setattr(uploads, "is_stale", seen_stale_by_both)
    with app.app_context():
        assert uploads.run_upload_tasks().endswith("0 interrupted")
        assert db.session.scalar(select(func.count(ImportRecord.id))) == 1


def test_an_import_reported_dead_while_it_ran_is_undone(app, admin, monkeypatch):
    """Another scheduler took the running import for dead and told the uploader it failed
    with nothing stored: when the import ends after all, it is undone, so that stays true."""
    from portal.metrics import ingest, uploads

    _postgresql_only(app)
    html = _preview(admin, CSV.encode()).get_data(as_text=True)
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    queued = post(admin, "/imports/commit", {"token": token, "valid_only": "1"})
    real = ingest.run_import

    def slow_import(*args, **kwargs):
        outcome = real(*args, **kwargs)
        _meanwhile_another_scheduler_fails(app, _task_id(app, token, "import"))
        return outcome

    monkeypatch.setattr(uploads, "run_import", slow_import)
    _run_tasks(app)
    assert _count(app) == 0
    with app.app_context():
        records = db.session.scalars(select(ImportRecord)).all()
        assert [r.status for r in records] == ["failed"]
        assert db.session.get(UploadTask, _task_id(app, token, "import")).status == "failed"
    html = admin.get(queued.headers["Location"]).get_data(as_text=True)
    assert 'id="imports-task-failed"' in html
