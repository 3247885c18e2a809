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


def _stopped_while_importing(app, monkeypatch, times: int = 1) -> None:
    """Runs of the job that stop inside the import, as when the scheduler is stopped there
    (here: interrupted from the keyboard)."""
    from portal.metrics import inbox as inbox_module

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(inbox_module, "run_import", stopped)
        for _ in range(times):
            with app.app_context(), pytest.raises(KeyboardInterrupt):
                inbox_module.import_inbox(datetime.now(UTC))


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
    assert "Fix them and put the file into the inbox folder again." in report
    assert "valid rows only" not in report  # the inbox has no such choice
    remaining = {p.name for p in (inbox / "interactions").iterdir() if p.is_file()}
    assert remaining == {"half-written.csv.part", "just-now.csv"}  # left for later
    assert not list((inbox / "interactions" / "processing").iterdir())


def test_a_file_another_process_is_importing_is_left_to_it(app, inbox):
    import fcntl

    from portal.metrics import inbox as inbox_module

    path = _drop(inbox / "interactions", "calls.csv", GOOD)
    processing = path.parent / "processing"
    processing.mkdir()
    os.rename(path, processing / path.name)
    with (processing / path.name).open("rb") as other:  # the other scheduler, at work
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with app.app_context():
            result = inbox_module.import_inbox(datetime.now(UTC))
            assert result == "0 file(s) imported, 0 refused"
            assert db.session.scalar(select(func.count(Interaction.id))) == 0
    assert [p.name for p in processing.iterdir()] == ["calls.csv"]


def test_a_file_whose_import_was_interrupted_is_tried_once_more(app, inbox, monkeypatch):
    """The scheduler stopped while importing (here: interrupted from the keyboard): nothing
    was stored, the file stayed in processing/ and its lock went with the process. The next
    run imports it there."""
    from portal.metrics import inbox as inbox_module

    _drop(inbox / "interactions", "calls.csv", GOOD)
    _stopped_while_importing(app, monkeypatch)
    processing = inbox / "interactions" / "processing"
    assert [p.name for p in processing.iterdir()] == ["calls.csv"]
    with app.app_context():
        assert inbox_module.import_inbox(datetime.now(UTC)) == "1 file(s) imported, 0 refused"
        assert db.session.scalar(select(func.count(Interaction.id))) == 1
    assert not list(processing.iterdir())  # nor the mark of its interruption
    done = sorted(p.name.split("-", 2)[-1] for p in (inbox / "interactions" / "done").iterdir())
    assert done == ["calls.csv", "calls.csv.report.txt"]


def test_a_file_interrupted_twice_is_refused_with_a_report(app, inbox, monkeypatch):
    from portal.metrics import inbox as inbox_module

    _drop(inbox / "interactions", "calls.csv", GOOD)
    _stopped_while_importing(app, monkeypatch, times=2)
    with app.app_context():
        assert inbox_module.import_inbox(datetime.now(UTC)) == "0 file(s) imported, 1 refused"
    failed = inbox / "interactions" / "failed"
    report = next(p for p in failed.iterdir() if p.name.endswith(".report.txt")).read_text()
    assert "interrupted twice" in report and "Put the file back into the inbox" in report
    assert not list((inbox / "interactions" / "processing").iterdir())
    assert not [p for p in (inbox / "interactions").iterdir() if p.is_file()]


def test_a_new_file_never_replaces_one_of_its_name_still_being_imported(app, inbox, monkeypatch):
    """Daily exports often reuse a name. A calls.csv interrupted in processing/ and a new
    calls.csv in the inbox: both are imported, one after the other, and both are filed."""
    import fcntl

    from portal.metrics import inbox as inbox_module

    _drop(inbox / "interactions", "calls.csv", GOOD)
    _stopped_while_importing(app, monkeypatch)
    newer = _drop(inbox / "interactions", "calls.csv", GOOD.replace("n1", "n9"))
    processing = inbox / "interactions" / "processing"
    with (processing / "calls.csv").open("rb") as other:  # another scheduler retries it
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with app.app_context():
            assert inbox_module.import_inbox(datetime.now(UTC)) == "0 file(s) imported, 0 refused"
        assert newer.read_text() == GOOD.replace("n1", "n9")  # left waiting, not moved over it
    with app.app_context():
        assert inbox_module.import_inbox(datetime.now(UTC)) == "2 file(s) imported, 0 refused"
        ids = set(db.session.scalars(select(Interaction.source_id)))
    assert ids == {"n1", "n9"}
    done = [p for p in (inbox / "interactions" / "done").iterdir() if p.suffix == ".csv"]
    assert len(done) == 2 and not list(processing.iterdir())


def test_an_earlier_files_mark_of_interruption_does_not_count_for_a_new_one(app, inbox):
    """A mark left by an earlier calls.csv (removed by hand from processing/ since) names
    that file, not a new one of the same name: the new one, interrupted once, is imported."""
    from portal.metrics import inbox as inbox_module

    processing = inbox / "interactions" / "processing"
    processing.mkdir(parents=True)
    (processing / ".calls.csv.interrupted").write_text("0:12345")
    _drop(processing, "calls.csv", GOOD)  # left by a scheduler that stopped
    with app.app_context():
        assert inbox_module.import_inbox(datetime.now(UTC)) == "1 file(s) imported, 0 refused"
    assert not list(processing.iterdir())
