"""Imports refuse what metrics.md refuses, say where and why, and change nothing when refusing."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role
from portal.extensions import db
from portal.metrics.models import ImportRecord, Interaction, Survey

HEADER = "interaction_id,queue,agent_no,offered_at,answered_at,ended_at,customer_key\n"
GOOD = "g1,Q1,A,2026-11-03T09:00:00+08:00,2026-11-03T09:00:10+08:00,2026-11-03T09:05:10+08:00,c1\n"


@pytest.fixture
def agents(make_user):
    make_user({Role.AGENT}, agent_no="A", name="王芳")
    make_user({Role.QA}, agent_no="QA1")


def _run(runner, tmp_path, kind, data, *extra, name="file.csv"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return runner.invoke(args=["import", kind, str(path), *extra])


def _interactions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Interaction.id)))


BAD_INTERACTIONS = [
    (
        HEADER + GOOD + "b2,Q1,A,2026-11-03T09:00:00+08:00,,2026-11-03T08:59:00+08:00,c1\n",
        "Row 3: ended_at is before offered_at",
    ),
    (
        HEADER
        + GOOD
        + "b2,Q1,A,2026-11-03T09:00:00+08:00,2026-11-03T08:00:00+08:00,2026-11-03T09:10:00+08:00,\n",
        "Row 3: answered_at is before offered_at",
    ),
    (
        HEADER + GOOD + "b2,Q1,A,2026-11-03T09:00:00+08:00,,2026-11-04T09:00:01+08:00,\n",
        "Row 3: the interaction lasts more than 24 hours",
    ),
    (
        HEADER + GOOD + "b2,Q1,NOBODY,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n",
        "Row 3: agent_no 'NOBODY' is not a known employee number",
    ),
    (
        HEADER + GOOD + "g1,Q1,A,2026-11-03T10:00:00+08:00,,2026-11-03T10:01:00+08:00,\n",
        "Row 3: g1 already appears in row 2 of this file",
    ),
    (
        HEADER + GOOD + "b2,Q1,A,03/11/2026 9:00,,2026-11-03T09:01:00+08:00,\n",
        "Row 3: offered_at '03/11/2026 9:00' is not a timestamp",
    ),
    (HEADER + GOOD + "b2,Q1,A,,,2026-11-03T09:01:00+08:00,\n", "Row 3: offered_at is empty"),
    (
        HEADER + GOOD + ",Q1,A,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n",
        "Row 3: interaction_id is empty",
    ),
    (
        "interaction_id,queue,agent_no,offered_at,answered_at,ended_at,wrap_seconds\n"
        "b1,Q1,A,2026-11-03T09:00:00+08:00,2026-11-03T09:00:10+08:00,2026-11-03T09:05:10+08:00,-3\n",
        "Row 2: wrap_seconds -3 is not between 0 and 86400 seconds",
    ),
    (
        "interaction_id,channel,offered_at,ended_at\nb1,fax,2026-11-03T09:00:00+08:00,2026-11-03T09:01:00+08:00\n",
        "Row 2: channel 'fax' must be one of phone, chat, email, social",
    ),
    (
        "interaction_id,queue,offered_at\nb1,Q1,2026-11-03T09:00:00+08:00\n",
        "missing column(s): ended_at",
    ),
    (
        "interaction_id,offered_at,ended_at,offered_at\nb1,2026-11-03T09:00:00,2026-11-03T09:01:00,x\n",
        "column(s) named twice: offered_at",
    ),
    (
        HEADER + GOOD + "b2,Q1,A,0001-01-01T00:00:00+08:00,,0001-01-01T00:01:00+08:00,\n",
        "Row 3: offered_at '0001-01-01T00:00:00+08:00' is not a time from 2000 to 2099",
    ),
    (
        HEADER + GOOD + "b2,Q1,A,9999-12-31T23:59:00-12:00,,9999-12-31T23:59:59-12:00,\n",
        "Row 3: offered_at '9999-12-31T23:59:00-12:00' is not a time from 2000 to 2099",
    ),
    (
        HEADER + GOOD + "b2,Q1,A,0001-01-01 00:00,,0001-01-01 00:01,\n",
        "Row 3: offered_at '0001-01-01 00:00' is not a time from 2000 to 2099",
    ),
    ("", "The file is empty"),
    (HEADER, "no data rows"),
    (b"\x00\x01\x02binary\xff\xfe\x00garbage" * 10, "not a CSV text file"),
    ((HEADER + GOOD).encode("utf-16"), "UTF-16"),
    (
        HEADER.encode()
        + "g1,Café,A,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n".encode("latin-1"),
        "neither UTF-8 nor GB18030",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_INTERACTIONS)
def test_malformed_interaction_files_are_refused_whole(
    app, runner, tmp_path, agents, data, message
):
    result = _run(runner, tmp_path, "interactions", data)
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert _interactions(app) == 0
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.status == "rejected" and record.message


def test_a_bad_byte_deep_in_a_file_names_its_row(app, runner, tmp_path, agents):
    rows = "".join(GOOD.replace("g1", f"g{n}") for n in range(1, 30_000))
    data = (HEADER + rows).encode() + b"bad,Q1,A,\xff\xfe,,x\n" + GOOD.encode()
    result = _run(runner, tmp_path, "interactions", data)
    assert result.exit_code == 1
    assert "Row 30001 is not valid utf-8 text" in result.output, result.output
    assert _interactions(app) == 0


@pytest.fixture
def apart(app, monkeypatch):
    """Every file parsed by the second process, as large files are on SQLite."""
    from portal.metrics import ingest

    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("files are parsed beside the import on SQLite only")
    monkeypatch.setattr(ingest, "PARSE_APART_BYTES", 0)
    monkeypatch.setattr(ingest, "_parse_here", lambda *a: pytest.fail("parsed in this process"))


@pytest.mark.parametrize(
    ("data", "message"),
    [BAD_INTERACTIONS[i] for i in (0, 3, 9, 10, 11, 12, 13, 17)]
    + [("g1\xff".encode("latin-1") + b"\xff\n", "neither UTF-8 nor GB18030")],
)
def test_the_second_process_refuses_as_this_one_does(
    app, runner, tmp_path, agents, apart, data, message
):
    result = _run(runner, tmp_path, "interactions", data)
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert _interactions(app) == 0


def test_a_file_named_as_a_workbook_is_read_as_one_whatever_its_size(
    app, tmp_path, agents, monkeypatch
):
    """An upload is stored under a name of its own: the user's name decides, not that one."""
    from flask_babel import force_locale

    from portal.metrics import ingest

    stored = tmp_path / "a1b2c3.upload"
    stored.write_text(HEADER + GOOD, encoding="utf-8")

    def refusal() -> str:
        with app.app_context(), stored.open("rb") as stream, force_locale("en"):
            record = ingest.run_import("interactions", stream, filename="月报.xlsx", door="upload")
            db.session.commit()
            assert record.status == "rejected"
            return record.message

    small = refusal()
    monkeypatch.setattr(ingest, "PARSE_APART_BYTES", 0)  # as if it were large
    assert refusal() == small
    assert _interactions(app) == 0


def test_a_file_parsed_by_the_second_process_imports_the_same(app, runner, tmp_path, agents, apart):
    import hashlib

    bad = "b2,Q1,A,2026-11-03T09:00:00+08:00,,2026-11-03T08:59:00+08:00,c1\n"
    data = HEADER + GOOD + bad + GOOD.replace("g1", "g3").replace("c1", "c3")
    result = _run(runner, tmp_path, "interactions", data, "--valid-only")
    assert result.exit_code == 0, result.output
    assert "inserted: 2  updated: 0  unchanged: 0  rejected: 1" in result.output
    assert "Row 3: ended_at is before offered_at" in result.output
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.checksum == hashlib.sha256(data.encode()).hexdigest()
        assert record.encoding == "utf-8"
    again = _run(runner, tmp_path, "interactions", data, "--valid-only")
    assert "inserted: 0  updated: 0  unchanged: 2  rejected: 1" in again.output, again.output


def test_an_employee_number_first_seen_late_in_a_file_is_found(
    app, runner, tmp_path, agents, monkeypatch
):
    """Employee numbers are read before rows are written: later on PostgreSQL the connection
    is busy with the file's COPY."""
    from portal.metrics import ingest

    for name in ("FAST_BATCH", "COPY_BATCH", "BATCH"):
        monkeypatch.setattr(ingest, name, 1)
    abandoned = "a1,Q1,,2026-11-03T09:00:00+08:00,,2026-11-03T09:00:20+08:00,\n"
    result = _run(runner, tmp_path, "interactions", HEADER + abandoned + GOOD)
    assert result.exit_code == 0, result.output
    assert "inserted: 2" in result.output


def test_a_statement_sent_during_the_copy_fails_at_once(app, tmp_path, agents, monkeypatch):
    """On PostgreSQL the connection cannot answer while the import's COPY is open: a look-up
    slipped in there would wait forever. It fails instead, and the session goes on."""
    from flask_babel import force_locale
    from sqlalchemy import text

    from portal.metrics import ingest

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("only PostgreSQL writes through a COPY")
        monkeypatch.setattr(ingest, "COPY_BATCH", 1)
        track = ingest.Importer._track

        def track_and_look_up(self, rows):
            track(self, rows)
            db.session.execute(text("SELECT 1"))

        monkeypatch.setattr(ingest.Importer, "_track", track_and_look_up)
        path = tmp_path / "i.csv"
        path.write_text(HEADER + GOOD + GOOD.replace("g1", "g2"), encoding="utf-8")
        opened = pytest.raises(RuntimeError, match="while an import's COPY is open")
        with path.open("rb") as stream, force_locale("en"), opened:
            ingest.run_import("interactions", stream, filename="i.csv", door="cli")
        db.session.rollback()
        assert db.session.scalar(text("SELECT 2")) == 2
        assert _interactions(app) == 0


@pytest.mark.parametrize("careful", [False, True])
def test_a_row_the_database_refuses_gets_a_message_not_a_traceback(
    app, runner, tmp_path, agents, careful
):
    """Only a stored source id sends a file down the careful path; any other refusal by the
    database (here a trigger's, standing for a constraint the checks missed) is reported."""
    from sqlalchemy import text

    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
        if postgresql:
            db.session.execute(
                text(
                    "CREATE FUNCTION test_refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'queue refused' USING ERRCODE = 'check_violation'; "
                    "END $$ LANGUAGE plpgsql"
                )
            )
            db.session.execute(
                text(
                    "CREATE TRIGGER test_refuse BEFORE INSERT ON interactions FOR EACH ROW "
                    "WHEN (NEW.queue = 'BAD') EXECUTE FUNCTION test_refuse()"
                )
            )
        else:
            db.session.execute(
                text(
                    "CREATE TRIGGER test_refuse BEFORE INSERT ON interactions "
                    "WHEN NEW.queue = 'BAD' BEGIN SELECT RAISE(ABORT, 'queue refused'); END"
                )
            )
        db.session.commit()
    try:
        stored = _run(runner, tmp_path, "interactions", HEADER + GOOD, name="first.csv")
        assert stored.exit_code == 0, stored.output
        # With g1 stored already, the file is read carefully: the refusal comes from there.
        first = GOOD if careful else ""
        bad = GOOD.replace("g1", "b1").replace(",Q1,", ",BAD,")
        result = _run(runner, tmp_path, "interactions", HEADER + first + bad)
        assert result.exit_code == 1
        assert "The database refused the file's rows" in result.output, result.output
        assert "queue refused" in result.output
        assert "Traceback" not in result.output
        assert _interactions(app) == 1
    finally:
        with app.app_context():
            db.session.rollback()
            db.session.execute(
                text("DROP TRIGGER test_refuse" + (" ON interactions" if postgresql else ""))
            )
            if postgresql:
                db.session.execute(text("DROP FUNCTION test_refuse()"))
            db.session.commit()


def test_an_import_waits_while_another_transaction_keeps_the_sums(app, runner, tmp_path, agents):
    """On PostgreSQL the upkeep of repeats and daily sums is one transaction at a time: an
    import that would add to a day being rebuilt elsewhere waits for that to end."""
    import threading

    from sqlalchemy import text

    from portal.metrics import stats

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has one writer at a time anyway")
        holder = db.engine.connect()
    holder.begin()
    holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": stats.UPKEEP_LOCK})
    outcome, done = {}, threading.Event()

    def run() -> None:
        outcome["result"] = _run(runner, tmp_path, "interactions", HEADER + GOOD)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert not done.wait(1.5), "the import did not wait"
    finally:
        holder.rollback()
        holder.close()
    assert done.wait(60)
    worker.join()
    assert outcome["result"].exit_code == 0, outcome["result"].output
    assert _interactions(app) == 1


def test_a_file_sent_again_goes_the_careful_way_from_its_first_rows(
    app, runner, tmp_path, agents, monkeypatch
):
    """On PostgreSQL a stored id would otherwise only show when the COPY of the whole file
    ends: the first rows are looked up before any COPY opens."""
    from portal.metrics import ingest

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("only PostgreSQL writes through a COPY")
    monkeypatch.setattr(ingest, "COPY_BATCH", 1)
    data = HEADER + GOOD + GOOD.replace("g1", "g2") + GOOD.replace("g1", "g3")
    assert _run(runner, tmp_path, "interactions", data).exit_code == 0
    copies = []
    driver_columns = ingest._driver_columns
    monkeypatch.setattr(
        ingest, "_driver_columns", lambda *a: copies.append(a[0].name) or driver_columns(*a)
    )
    again = _run(runner, tmp_path, "interactions", data)
    assert "inserted: 0  updated: 0  unchanged: 3" in again.output, again.output
    assert "interactions" not in copies  # no COPY was opened for the rows sent again


def test_blank_rows_are_left_out(app, runner, tmp_path, agents):
    """Spreadsheets export empty lines and rows of bare commas: neither is a row."""
    data = HEADER + GOOD + "\n,,,,,,\n  , ,\n" + GOOD.replace("g1", "g2")
    result = _run(runner, tmp_path, "interactions", data)
    assert result.exit_code == 0, result.output
    assert "Rows read: 2  inserted: 2" in result.output


def test_valid_only_imports_the_good_rows(app, runner, tmp_path, agents):
    data = HEADER + GOOD + "b2,Q1,NOBODY,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n"
    result = _run(runner, tmp_path, "interactions", data, "--valid-only")
    assert result.exit_code == 0
    assert "inserted: 1" in result.output and "rejected: 1" in result.output
    assert "Row 3: agent_no 'NOBODY'" in result.output
    assert _interactions(app) == 1


def test_valid_only_with_no_valid_row_is_refused_with_exit_1(app, runner, tmp_path, agents):
    """interfaces.md: exit 1 if nothing was imported because of errors."""
    bad = "b{n},Q1,NOBODY,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n"
    data = HEADER + bad.format(n=2) + bad.format(n=3)
    result = _run(runner, tmp_path, "interactions", data, "--valid-only")
    assert result.exit_code == 1, result.output
    assert "Row 2: agent_no 'NOBODY'" in result.output and "Row 3: agent_no" in result.output
    assert "Error: Every row was rejected (2), so nothing was imported." in result.output
    assert _interactions(app) == 0
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert (record.status, record.valid_only, record.rejected) == ("rejected", True, 2)
        assert len(record.rejections) == 2


def test_rejections_are_reported_in_row_order(app, runner, tmp_path, agents):
    """A batch's rejections are found in passes (the parser's, then repeated ids): they are
    still reported and kept in row order."""
    nobody = "b4,Q1,NOBODY,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n"
    data = HEADER + GOOD + GOOD + nobody + GOOD.replace("g1", "g5")
    result = _run(runner, tmp_path, "interactions", data, "--valid-only")
    assert result.exit_code == 0, result.output
    first = result.output.index("Row 3: g1 already appears in row 2 of this file")
    assert first < result.output.index("Row 4: agent_no 'NOBODY'")
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert [number for number, _ in record.rejections] == [3, 4]


def test_the_first_ten_thousand_rejections_are_kept_and_the_others_counted(
    app, runner, tmp_path, agents
):
    bad = "b{n},Q1,NOBODY,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n"
    data = HEADER + "".join(bad.format(n=n) for n in range(10_050))
    result = _run(runner, tmp_path, "interactions", data)
    assert result.exit_code == 1
    assert "Row 10001: agent_no 'NOBODY'" in result.output and "Row 10002" not in result.output
    assert "… and 50 more rejected rows: only the first 10000 are kept." in result.output
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.rejected == 10_050 and len(record.rejections) == 10_000
        assert [n for n, _ in record.rejections] == list(range(2, 10_002))


def test_rejections_kept_across_batches_are_the_first_rows(
    app, runner, tmp_path, agents, monkeypatch
):
    from portal.metrics import ingest

    for name in ("FAST_BATCH", "COPY_BATCH", "BATCH"):
        monkeypatch.setattr(ingest, name, 2)
    monkeypatch.setattr(ingest, "KEEP_REJECTIONS", 3)
    pending = []
    settle = ingest.Importer.settle

    def watched(importer):
        pending.append(len(importer._batch_rejections))
        settle(importer)

    monkeypatch.setattr(ingest.Importer, "settle", watched)
    bad = "b{n},Q1,NOBODY,2026-11-03T09:00:00+08:00,,2026-11-03T09:01:00+08:00,\n"
    rows = [GOOD, GOOD, bad.format(n=4), GOOD.replace("g1", "g5"), bad.format(n=6), GOOD]
    rows += [bad.format(n=n) for n in range(8, 20)]
    result = _run(runner, tmp_path, "interactions", HEADER + "".join(rows), "--valid-only")
    assert result.exit_code == 0, result.output
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.rejected == 16 and [n for n, _ in record.rejections] == [3, 4, 6]
    # At most a batch's rejections are held at a time, however many rows a file rejects.
    assert pending and max(pending) <= 2


def test_unknown_columns_are_ignored_and_reported(app, runner, tmp_path, agents):
    data = "interaction_id,offered_at,ended_at,skill\nx1,2026-11-03T09:00:00,2026-11-03T09:01:00,售前\n"
    result = _run(runner, tmp_path, "interactions", data)
    assert result.exit_code == 0
    assert "Ignored unknown columns: skill" in result.output


def test_gbk_and_bom_files_are_read(app, runner, tmp_path, agents):
    data = HEADER + GOOD.replace("Q1", "售后热线")
    assert _run(runner, tmp_path, "interactions", data.encode("gbk")).exit_code == 0
    result = _run(runner, tmp_path, "interactions", data.encode("utf-8-sig"))
    assert result.exit_code == 0 and "unchanged: 1" in result.output
    with app.app_context():
        assert db.session.scalar(select(Interaction.queue)) == "售后热线"


def test_xlsx_files_are_read_with_real_dates(app, runner, tmp_path, agents):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["interaction_id", "queue", "agent_no", "offered_at", "answered_at", "ended_at"])
    sheet.append(
        [
            "x1",
            "Q1",
            "A",
            datetime(2026, 11, 3, 9, 0),
            datetime(2026, 11, 3, 9, 0, 12),
            datetime(2026, 11, 3, 9, 4, 12),
        ]
    )
    sheet.append([1002, "Q1", None, "2026-11-03T09:00:00+08:00", None, "2026-11-03T09:00:30+08:00"])
    path = tmp_path / "calls.xlsx"
    book.save(path)
    result = runner.invoke(args=["import", "interactions", str(path)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        rows = {i.source_id: i for i in db.session.scalars(select(Interaction))}
        assert rows["x1"].wait_s == 12 and rows["x1"].talk_s == 240
        assert rows["x1"].offered_at.hour == 1  # 09:00 in Shanghai is 01:00 UTC
        assert "1002" in rows and rows["1002"].agent_id is None


def test_an_updated_record_replaces_the_old_one(app, runner, tmp_path, agents):
    _run(runner, tmp_path, "interactions", HEADER + GOOD)
    changed = GOOD.replace("09:05:10", "09:06:10")
    result = _run(runner, tmp_path, "interactions", HEADER + changed)
    assert "inserted: 0  updated: 1" in result.output
    with app.app_context():
        assert db.session.scalar(select(Interaction.talk_s)) == 360


def test_a_file_sent_again_writes_nothing(app, runner, tmp_path, agents, monkeypatch):
    """Unchanged rows are counted, not rewritten: they keep the import that stored them.
    An id twice in the file is still caught, naming the row that had it first, even when
    the two are batches apart."""
    from portal.metrics import ingest

    monkeypatch.setattr(ingest, "BATCH", 2)
    rows = [GOOD.replace("g1", f"g{n}") for n in range(1, 6)]
    assert _run(runner, tmp_path, "interactions", HEADER + "".join(rows)).exit_code == 0
    again = _run(runner, tmp_path, "interactions", HEADER + "".join(rows))
    assert "inserted: 0  updated: 0  unchanged: 5" in again.output, again.output
    with app.app_context():
        first = db.session.scalars(select(ImportRecord.id).order_by(ImportRecord.id)).first()
        assert set(db.session.scalars(select(Interaction.import_id))) == {first}
    twice = _run(runner, tmp_path, "interactions", HEADER + "".join(rows) + rows[0])
    assert "Row 7: g1 already appears in row 2 of this file" in twice.output, twice.output


def test_a_new_time_zone_moves_the_days_of_a_file_sent_again(app, runner, tmp_path, agents):
    """The local day is stored with each interaction: the same file read in another time
    zone updates it (the rows are not unchanged)."""
    row = "n1,Q1,A,2026-11-04T01:30:00+08:00,,2026-11-04T01:31:00+08:00,\n"  # 17:30 UTC
    _run(runner, tmp_path, "interactions", HEADER + row)
    with app.app_context():
        assert str(db.session.scalar(select(Interaction.offered_day))) == "2026-11-04"
    zone = app.config["PORTAL_TIMEZONE"]
    app.config["PORTAL_TIMEZONE"] = "UTC"
    try:
        again = _run(runner, tmp_path, "interactions", HEADER + row)
    finally:
        app.config["PORTAL_TIMEZONE"] = zone
    assert "updated: 1" in again.output, again.output
    with app.app_context():
        assert str(db.session.scalar(select(Interaction.offered_day))) == "2026-11-03"


def test_large_files_of_every_kind_are_written_in_several_batches(
    app, runner, tmp_path, agents, monkeypatch
):
    """Interactions, then surveys and evaluations that look theirs up batch by batch."""
    from portal.metrics import ingest

    monkeypatch.setattr(ingest, "FAST_BATCH", 2)
    monkeypatch.setattr(ingest, "COPY_BATCH", 2)
    monkeypatch.setattr(ingest, "BATCH", 2)
    calls = "".join(GOOD.replace("g1", f"g{n}") for n in range(1, 8))
    assert _run(runner, tmp_path, "interactions", HEADER + calls).exit_code == 0
    surveys = "survey_id,interaction_id,csat,submitted_at\n" + "".join(
        f"s{n},g{n},5,2026-11-03T12:00:00\n" for n in range(1, 8)
    )
    result = _run(runner, tmp_path, "surveys", surveys)
    assert "inserted: 7  updated: 0" in result.output, result.output
    qa = "evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line\n" + "".join(
        f"e{n},g{n},QA1,90,2026-11-04T10:00:00,0\n" for n in range(1, 8)
    )
    result = _run(runner, tmp_path, "qa", qa)
    assert "inserted: 7  updated: 0" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Survey.id))) == 7
    again = _run(runner, tmp_path, "surveys", surveys)  # careful, batch by batch too
    assert "inserted: 0  updated: 0  unchanged: 7" in again.output, again.output


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "survey_id,interaction_id,csat,submitted_at\ns1,g1,6,2026-11-03T12:00:00\n",
            "csat 6 must be a whole number from 1 to 5",
        ),
        (
            "survey_id,interaction_id,nps,submitted_at\ns1,g1,4.5,2026-11-03T12:00:00\n",
            "nps 4.5 must be a whole number from 0 to 10",
        ),
        (
            "survey_id,interaction_id,csat,submitted_at\ns1,nope,5,2026-11-03T12:00:00\n",
            "interaction_id 'nope' is not imported yet",
        ),
        ("survey_id,interaction_id,csat\ns1,g1,5\n", "missing column(s): submitted_at"),
        (
            "survey_id,interaction_id,csat,submitted_at\ns1,g1,5,0001-01-01T00:00:00+08:00\n",
            "submitted_at '0001-01-01T00:00:00+08:00' is not a time from 2000 to 2099",
        ),
    ],
)
def test_bad_surveys_are_refused(app, runner, tmp_path, agents, data, message):
    assert _run(runner, tmp_path, "interactions", HEADER + GOOD, name="i.csv").exit_code == 0
    result = _run(runner, tmp_path, "surveys", data)
    assert result.exit_code == 1 and message in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Survey.id))) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line\ne1,g1,QA1,101,2026-11-04T10:00:00,0\n",
            "score 101 must be from 0 to 100",
        ),
        (
            "evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line\ne1,g1,ZZ,90,2026-11-04T10:00:00,0\n",
            "evaluator_no 'ZZ' is not a known employee number",
        ),
        (
            "evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line\ne1,g1,QA1,90,2026-11-04T10:00:00,maybe\n",
            "red_line 'maybe' must be 1 or 0",
        ),
        (
            "evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line\ne1,g1,QA1,90,9999-12-31T23:00:00-12:00,0\n",
            "evaluated_at '9999-12-31T23:00:00-12:00' is not a time from 2000 to 2099",
        ),
    ],
)
def test_bad_qa_evaluations_are_refused(app, runner, tmp_path, agents, data, message):
    _run(runner, tmp_path, "interactions", HEADER + GOOD, name="i.csv")
    result = _run(runner, tmp_path, "qa", data)
    assert result.exit_code == 1 and message in result.output


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("A,2026-13,knowledge_contrib,3", "'2026-13' is not a period key"),
        ("A,9999-W52,knowledge_contrib,3", "Row 2: period '9999-W52' is not a period key of the"),
        ("A,1000-01,knowledge_contrib,3", "Row 2: period '1000-01' is not a period key of the"),
        ("A,2026-11,csat,0.9", "metric_code 'csat' is not supplied from outside"),
        ("A,2026-11,brand_sentiment,101", "must be from 0 to 100"),
        ("A,2026-11,soothing_rate,1.5", "must be from 0 to 1"),
        ("X,2026-11,knowledge_contrib,1", "agent_no 'X' is not a known employee number"),
        ("A,2026-11,knowledge_contrib,many", "value 'many' is not a number"),
    ],
)
def test_bad_supplied_values_are_refused(app, runner, tmp_path, agents, row, message):
    result = _run(runner, tmp_path, "metric-values", f"agent_no,period,metric_code,value\n{row}\n")
    assert result.exit_code == 1 and message in result.output


def test_supplied_values_update_by_agent_period_and_metric(app, runner, tmp_path, agents):
    header = "agent_no,period,metric_code,value\n"
    _run(runner, tmp_path, "metric-values", header + "A,2026-11,knowledge_contrib,3\n")
    result = _run(runner, tmp_path, "metric-values", header + "a,2026-11,knowledge_contrib,5\n")
    assert "inserted: 0  updated: 1" in result.output
    dup = _run(
        runner,
        tmp_path,
        "metric-values",
        header + "A,2026-11,knowledge_contrib,3\nA,2026-11,knowledge_contrib,4\n",
    )
    assert dup.exit_code == 1 and "Row 3: knowledge_contrib already appears in row 2" in dup.output


def test_import_record_keeps_file_checksum_and_counts(app, runner, tmp_path, agents):
    import hashlib

    data = (HEADER + GOOD).encode()
    _run(runner, tmp_path, "interactions", data, name="calls.csv")
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.status == "committed" and record.door == "cli"
        assert record.filename == "calls.csv" and record.encoding == "utf-8"
        assert record.checksum == hashlib.sha256(data).hexdigest()
        assert (record.rows_read, record.inserted, record.rejected) == (1, 1, 0)


REFUSED_FILES = {
    "rejected rows": (HEADER + GOOD + BAD_INTERACTIONS[3][0].split("\n", 2)[2]).encode(),
    "header": b"interaction_id,queue,offered_at\nb1,Q1,2026-11-03T09:00:00+08:00\n",
    "no data rows": HEADER.encode(),
    # Reading stops at the bad byte, far from the end: the checksum is still the whole file's.
    "bad byte deep in the file": (
        HEADER + "".join(GOOD.replace("g1", f"g{n}") for n in range(1, 30_000))
    ).encode()
    + b"bad,Q1,A,\xff\xfe,,x\n"
    + (GOOD * 3000).encode(),
}


@pytest.mark.parametrize("apart", [False, True], ids=["here", "parsing-process"])
@pytest.mark.parametrize("refusal", list(REFUSED_FILES))
def test_a_refused_file_is_recorded_with_its_checksum(
    app, runner, tmp_path, agents, monkeypatch, refusal, apart
):
    """metrics.md §1: every import leaves a record with its checksum, refusals included."""
    import hashlib

    from portal.metrics import ingest

    if apart:
        monkeypatch.setattr(ingest, "PARSE_APART_BYTES", 0)
    data = REFUSED_FILES[refusal]
    result = _run(runner, tmp_path, "interactions", data, name="calls.csv")
    assert result.exit_code == 1, result.output
    with app.app_context():
        record = db.session.scalars(select(ImportRecord)).one()
        assert record.status == "rejected"
        assert record.checksum == hashlib.sha256(data).hexdigest()


def test_an_unreadable_rest_of_a_file_leaves_no_checksum_rather_than_a_wrong_one(app, agents):
    """A file whose reading failed part-way and whose rest cannot be read: no checksum."""
    import io

    from flask_babel import force_locale

    from portal.metrics.ingest import run_import

    class Breaking(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise OSError("the disk went away")
            return super().read(size)

    data = (HEADER + GOOD).encode() + b"bad,Q1,A,\xff\xfe,,x\n" + (GOOD * 100_000).encode()
    with app.app_context(), force_locale("en"):
        record = run_import("interactions", Breaking(data), filename="x.csv", door="cli")
        assert record.status == "rejected" and record.checksum == ""


def test_bulk_writes_store_exactly_what_the_orm_stores(ctx, make_user):
    """Imports write through the driver for speed; what lands must be what SQLAlchemy itself
    would store, or reads (and metrics) would differ between imported and other rows."""
    from datetime import UTC, date, timedelta, timezone

    from sqlalchemy import text

    from portal.metrics.ingest import _insert_rows
    from portal.metrics.models import QaEvaluation

    agent = make_user({Role.AGENT}, agent_no="A")
    values = {
        "channel": "chat",
        "queue": "售后",
        "agent_id": agent.id,
        "offered_day": date(2026, 11, 3),
        "offered_s": 1.5,
        "ended_s": 2.0,
        "wait_s": 5.25,
        "talk_s": None,
        "wrap_s": 0.0,
        "hold_s": 12.0,
        "customer_key": None,
        "transferred": True,
        "resolved": None,
    }
    db.session.add(Interaction(source_id="orm", **values))
    db.session.flush()
    _insert_rows(Interaction.__table__, ("source_id", *values), [("bulk", *values.values())])
    columns = [c.name for c in Interaction.__table__.columns if c.name not in ("id", "source_id")]
    orm, bulk = (
        db.session.execute(
            text(f"SELECT {', '.join(columns)} FROM interactions WHERE source_id = :s"), {"s": s}
        ).one()
        for s in ("orm", "bulk")
    )
    assert bulk == orm
    read = db.session.scalars(select(Interaction).order_by(Interaction.source_id)).all()
    assert [r.offered_day for r in read] == [date(2026, 11, 3)] * 2
    # Times (QA evaluations keep theirs as timestamps) and defaults.
    call = read[0]
    shanghai = timezone(timedelta(hours=8))
    evaluated = datetime(2026, 11, 3, 0, 30, 5, 250000, tzinfo=shanghai)
    db.session.add(
        QaEvaluation(
            source_id="orm",
            interaction_id=call.id,
            score=90,
            original_score=90,
            evaluated_at=evaluated,
            released_at=evaluated,
        )
    )
    db.session.flush()
    qa_columns = (
        "source_id",
        "interaction_id",
        "score",
        "original_score",
        "evaluated_at",
        "released_at",
    )
    _insert_rows(
        QaEvaluation.__table__, qa_columns, [("bulk", call.id, 90.0, 90.0, evaluated, evaluated)]
    )
    stored = [c.name for c in QaEvaluation.__table__.columns if c.name not in ("id", "source_id")]
    orm, bulk = (
        db.session.execute(
            text(f"SELECT {', '.join(stored)} FROM qa_evaluations WHERE source_id = :s"),
            {"s": s},
        ).one()
        for s in ("orm", "bulk")
    )
    assert bulk == orm  # the status and comment defaults included
    got = db.session.scalars(select(QaEvaluation.evaluated_at).order_by(QaEvaluation.source_id))
    assert list(got) == [evaluated.astimezone(UTC)] * 2
