"""`flask users import PATH`: all or nothing, every bad row named, never a traceback."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Position, Role, Team, User
from portal.audit.models import AuditEntry
from portal.extensions import db
from tests.conftest import csrf_token, login

HEADER = "agent_no,name,email,team,position,roles,hire_date\n"


def _write(tmp_path, text: str, encoding: str = "utf-8", name: str = "users.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def _import(runner, path, *extra):
    return runner.invoke(args=["users", "import", path, *extra])


def _user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def test_import_creates_users_teams_and_positions(app, runner, tmp_path):
    path = _write(
        tmp_path,
        HEADER + "10001,王芳,wangfang@example.com,一组,电话客服,agent,2025-03-01\n"
        "20001,李强,,一组,电话客服,team_lead;agent,2024/06/15\n"
        "30001,赵敏,zhaomin@example.com,,,质检员,\n"
        "40001,周杰,,,,,\n",
    )
    result = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert "Created: 4" in result.output
    assert "New teams: 一组" in result.output and "New positions: 电话客服" in result.output
    with app.app_context():
        users = {u.agent_no: u for u in db.session.scalars(select(User))}
        assert users["10001"].team.name == "一组" and users["10001"].position.name == "电话客服"
        assert str(users["10001"].hire_date) == "2025-03-01"
        assert users["20001"].roles == {Role.TEAM_LEAD, Role.AGENT}
        assert str(users["20001"].hire_date) == "2024-06-15"
        assert users["30001"].roles == {Role.QA}
        assert users["40001"].roles == {Role.AGENT}  # empty roles: agent
        assert all(u.must_change_password for u in users.values())
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "users.import"))
        assert entry is not None and "4 created" in entry.summary


def test_imported_user_logs_in_with_the_printed_one_time_password_and_must_change_it(
    app, runner, tmp_path
):
    result = _import(runner, _write(tmp_path, HEADER + "10001,王芳,,,,agent,\n"))
    temporary = re.search(r"^10001,(\S+)$", result.output, re.M).group(1)
    client = app.test_client()
    response = login(client, "10001", temporary)
    assert response.status_code == 302
    assert client.get("/").headers["Location"].endswith("/account/password")
    changed = client.post(
        "/account/password",
        data={
            "current": temporary,
            "new": "myown2026",
            "confirm": "myown2026",
            "csrf_token": csrf_token(client),
        },
    )
    assert changed.status_code == 200
    assert client.get("/").status_code == 200
    assert login(app.test_client(), "10001", temporary).status_code == 401  # one-time only


def test_reimport_updates_existing_users_by_employee_number(app, runner, tmp_path):
    _import(runner, _write(tmp_path, HEADER + "10001,王芳,,一组,,agent,\n10002,李娜,,一组,,,\n"))
    result = _import(
        runner, _write(tmp_path, HEADER + "10001,王芳,,二组,,agent;qa,\n10002,李娜,,一组,,,\n")
    )
    assert result.exit_code == 0, result.output
    assert "Created: 0  Updated: 1  Unchanged: 1" in result.output
    assert "one_time_password" not in result.output  # nobody new, no password printed
    with app.app_context():
        user = db.session.scalar(select(User).where(User.agent_no == "10001"))
        assert user.team.name == "二组" and user.roles == {Role.AGENT, Role.QA}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030", "gbk"])
def test_chinese_files_in_utf8_bom_and_gb18030_are_read(app, runner, tmp_path, encoding):
    path = _write(tmp_path, HEADER + "10001,欧阳晓燕,,技术组,技术支持,组长,\n", encoding)
    result = _import(runner, path)
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.name == "欧阳晓燕" and user.team.name == "技术组"
        assert user.roles == {Role.TEAM_LEAD}


BAD_FILES = [
    ("agent_no,name,email,team,position,hire_date\n10001,王芳,,,,\n", "Missing column(s): roles"),
    (HEADER + "10001,王芳,,,,agent,\n10002,李娜,,,,boss,\n", "Row 3 (10002): unknown role 'boss'"),
    (HEADER + "10001,王芳,,,,,\n10001,李娜,,,,,\n", "Row 3 (10001): employee number 10001"),
    (HEADER + "10001,王芳,,,,,2025-13-01\n", "Row 2 (10001): hire_date '2025-13-01' is not"),
    (
        HEADER + "10001,王芳,,,,,2099-01-01\n",
        "Row 2 (10001): hire_date 2099-01-01 is not plausible",
    ),
    (HEADER + "10001,王芳,,,,,1900-01-01\n", "hire_date 1900-01-01 is not plausible"),
    (HEADER + "10001,王芳,not-an-email,,,,\n", "Row 2 (10001): email 'not-an-email'"),
    (HEADER + "10001,王芳,a@example.com,,,,\n10002,李娜,a@example.com,,,,\n", "Row 3 (10002)"),
    (HEADER + ",王芳,,,,,\n", "Row 2 (no agent_no): agent_no is empty"),
    (HEADER + "10001,,,,,,\n", "Row 2 (10001): name is empty"),
    (HEADER + "10 001,王芳,,,,,\n", "without spaces"),
    ("", "The file is empty"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_bad_files_are_refused_with_the_row_and_change_nothing(
    app, runner, tmp_path, content, message
):
    result = _import(runner, _write(tmp_path, content))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert _user_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(Team.id))) == 0
        assert db.session.scalar(select(func.count(Position.id))) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((HEADER + "10001,王芳,,,,,\n").encode("utf-16"), "UTF-16"),
        (HEADER.encode() + "10001,Café,,,,,\n".encode("latin-1"), "neither UTF-8 nor GB18030"),
        (b"PK\x03\x04" + b"\x00" * 100, "Excel workbook"),
    ],
)
def test_wrong_encodings_and_binary_files_are_refused(app, runner, tmp_path, data, message):
    path = tmp_path / "users.csv"
    path.write_bytes(data)
    result = _import(runner, str(path))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert _user_count(app) == 0


def test_missing_file_is_one_clear_sentence(runner, tmp_path):
    result = _import(runner, str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_email_of_another_existing_user_is_refused(app, runner, tmp_path, make_user):
    make_user({Role.AGENT}, agent_no="99999")  # e-mail 99999@example.com
    result = _import(runner, _write(tmp_path, HEADER + "10001,王芳,99999@example.com,,,,\n"))
    assert result.exit_code == 1
    assert "belongs to another user (99999)" in result.output
    assert _user_count(app) == 1


def test_valid_only_imports_the_good_rows_and_reports_the_rest(app, runner, tmp_path):
    path = _write(tmp_path, HEADER + "10001,王芳,,,,,\n10002,李娜,,,,boss,\n10003,张伟,,,,,\n")
    result = _import(runner, path, "--valid-only")
    assert result.exit_code == 0, result.output
    assert "Row 3 (10002): unknown role 'boss'" in result.output
    assert "Created: 2" in result.output and "Rejected: 1" in result.output
    with app.app_context():
        assert set(db.session.scalars(select(User.agent_no))) == {"10001", "10003"}


def test_unknown_columns_are_ignored_and_listed(app, runner, tmp_path):
    path = _write(
        tmp_path,
        "agent_no,name,email,team,position,roles,hire_date,shift\n10001,王芳,,,,,,早班\n",
    )
    result = _import(runner, path)
    assert result.exit_code == 0
    assert "Ignored unknown columns: shift" in result.output
