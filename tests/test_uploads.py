"""Uploading a data file: a preview that stores nothing, then the import, then the history."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role
from portal.extensions import db
from portal.metrics.models import ImportRecord, Interaction
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


def _preview(client, data: bytes, kind="interactions", name="calls.csv"):
    return client.post(
        "/imports/preview",
        data={"kind": kind, "file": (io.BytesIO(data), name), "csrf_token": csrf_token(client)},
        content_type="multipart/form-data",
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
    done = post(admin, "/imports/commit", {"token": token, "valid_only": "1"})
    assert done.status_code == 302
    assert _count(app) == 2
    detail = admin.get(done.headers["Location"]).get_data(as_text=True)
    assert "已导入" in detail and "NOBODY" in detail
    history = admin.get("/imports").get_data(as_text=True)
    assert "calls.csv" in history and "上传" in history
    assert post(admin, "/imports/commit", {"token": token}).status_code == 404  # used once


def test_a_clean_file_is_imported_whole(app, admin):
    clean = "\n".join(line for line in CSV.splitlines() if "NOBODY" not in line) + "\n"
    html = _preview(admin, clean.encode("utf-8-sig")).get_data(as_text=True)
    assert 'id="imports-commit"' in html and "imports-commit-valid" not in html
    token = re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)
    assert post(admin, "/imports/commit", {"token": token}).status_code == 302
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


def test_missing_kind_or_file_says_what_to_do(admin):
    response = post(admin, "/imports/preview", {"kind": "interactions"})
    assert response.status_code == 422
    assert "请选择文件内容类型并选择要上传的文件" in response.get_data(as_text=True)


def test_an_upload_over_the_size_limit_gets_a_clear_message(app, admin):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    try:
        response = _preview(admin, b"x" * 4096)
        assert response.status_code == 413
        assert "拆分文件" in response.get_data(as_text=True)
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
        assert purge_uploads(datetime.now(UTC)) == "removed 0 abandoned upload files"
        old = time.time() - 2 * 24 * 3600
        for path in files:
            os.utime(path, (old, old))
        assert purge_uploads(datetime.now(UTC)) == f"removed {len(files)} abandoned upload files"
