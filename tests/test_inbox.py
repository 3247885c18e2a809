"""The inbox folder: files are imported by the scheduler and filed with their reports."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role
from portal.extensions import db
from portal.jobs import job_by_id, run_job
from portal.metrics.models import ImportRecord, Interaction

GOOD = (
    "interaction_id,agent_no,offered_at,answered_at,ended_at\n"
    "n1,A,2026-11-03T09:00:00+08:00,2026-11-03T09:00:10+08:00,2026-11-03T09:05:10+08:00\n"
)
BAD = (
    "interaction_id,agent_no,offered_at,ended_at\n"
    "n2,NOBODY,2026-11-03T09:00:00,2026-11-03T09:01:00\n"
)


@pytest.fixture
def inbox(app, tmp_path, make_user):
    make_user({Role.AGENT}, agent_no="A")
    old = app.config["INBOX_DIR"]
    app.config["INBOX_DIR"] = str(tmp_path / "inbox")
    yield tmp_path / "inbox"
    app.config["INBOX_DIR"] = old


def _drop(folder, name, text, age=60):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def test_files_are_imported_and_filed_with_their_report(app, inbox):
    _drop(inbox / "interactions", "calls.csv", GOOD)
    _drop(inbox / "interactions", "broken.csv", BAD)
    _drop(inbox / "interactions", "half-written.csv.part", GOOD)
    _drop(inbox / "interactions", "just-now.csv", GOOD.replace("n1", "n3"), age=0)
    with app.app_context():
        run = run_job(job_by_id("import_inbox"), datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        assert run.status == "ok" and run.detail == "1 file(s) imported, 1 refused"
        assert db.session.scalar(select(func.count(Interaction.id))) == 1
        doors = set(db.session.scalars(select(ImportRecord.door)))
        assert doors == {"inbox"}
    done = list((inbox / "interactions" / "done").iterdir())
    failed = list((inbox / "interactions" / "failed").iterdir())
    assert sorted(p.name.split("-", 2)[-1] for p in done) == ["calls.csv", "calls.csv.report.txt"]
    report = next(p for p in failed if p.name.endswith(".report.txt")).read_text()
    assert "Row 2: agent_no 'NOBODY' is not a known employee number" in report
    remaining = {p.name for p in (inbox / "interactions").iterdir() if p.is_file()}
    assert remaining == {"half-written.csv.part", "just-now.csv"}  # left for later
    assert not list((inbox / "interactions" / "processing").iterdir())


def test_a_file_claimed_by_another_process_is_skipped(app, inbox):
    from portal.metrics import inbox as inbox_module

    path = _drop(inbox / "interactions", "calls.csv", GOOD)
    processing = path.parent / "processing"
    processing.mkdir()
    os.rename(path, processing / path.name)  # the other scheduler took it first
    with app.app_context():
        assert inbox_module.import_inbox(datetime.now(UTC)) == "0 file(s) imported, 0 refused"
        assert db.session.scalar(select(func.count(Interaction.id))) == 0
