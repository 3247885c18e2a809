"""Migrations: one head, upgrade on an empty database, no drift, and back down again."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from portal.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def test_there_is_exactly_one_head():
    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


@pytest.fixture
def empty_database(app, tmp_path):
    """A brand-new empty database of the kind the suite runs on."""
    with app.app_context():
        dialect = db.engine.dialect.name
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"portal_mig_{uuid.uuid4().hex[:8]}"
    admin_url = app.config["SQLALCHEMY_DATABASE_URI"]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _flask(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(DATABASE_URL=url, SECRET_KEY="x", FLASK_APP="wsgi.py")
    flask = str(Path(sys.executable).parent / "flask")
    return subprocess.run(
        [flask, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_upgrade_on_an_empty_database_has_no_drift_and_downgrades(empty_database):
    up = _flask(empty_database, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    tables = set(inspect(create_engine(empty_database)).get_table_names())
    assert {"users", "teams", "positions", "audit_entries", "job_runs"} <= tables
    with create_engine(empty_database).connect() as conn:
        seeded = conn.execute(
            text("SELECT name, metric, comparison, threshold, days FROM alert_rules")
        )
        assert [tuple(r) for r in seeded] == [
            ("客户满意度连续 3 天低于 85%", "csat", "below", 0.85, 3)
        ]

    check = _flask(empty_database, "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr

    down = _flask(empty_database, "db", "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert set(inspect(create_engine(empty_database)).get_table_names()) <= {"alembic_version"}
    again = _flask(empty_database, "db", "upgrade")
    assert again.returncode == 0, again.stderr


def test_narrowing_interactions_keeps_their_ratings_times_and_repeats(empty_database):
    """The interactions table is rebuilt on SQLite (batch mode): the surveys and evaluations
    that point at it must survive, repeats move to their own table, and going back restores
    the times as they were."""
    assert _flask(empty_database, "db", "upgrade", "ca7abc2afbba").returncode == 0
    engine = create_engine(empty_database)
    now = "2026-11-03 01:00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, agent_no, name, active, must_change_password, "
                "created_at, updated_at) VALUES (1, 'A', 'a', true, false, :t, :t)"
            ),
            {"t": now},
        )
        for n, repeat in ((1, True), (2, False)):
            conn.execute(
                text(
                    "INSERT INTO interactions (id, source_id, channel, queue, agent_id, "
                    "offered_at, answered_at, ended_at, offered_day, offered_s, ended_s, wait_s, "
                    "talk_s, wrap_s, hold_s, transferred, has_repeat) VALUES (:n, :s, 'phone', "
                    "'Q', 1, :t, :t, :t, '2026-11-03', 1793667600.25, 1793667900, 0, 299.75, 0, "
                    "0, false, :r)"
                ),
                {"n": n, "s": f"i{n}", "t": now, "r": repeat},
            )
        conn.execute(
            text(
                "INSERT INTO surveys (source_id, interaction_id, csat, submitted_at, comment) "
                "VALUES ('s1', 1, 5, :t, '')"
            ),
            {"t": now},
        )
    engine.dispose()
    assert _flask(empty_database, "db", "upgrade").returncode == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM surveys")).scalar() == 1
        assert conn.execute(text("SELECT interaction_id FROM interaction_repeats")).all() == [(1,)]
        assert "offered_at" not in {c["name"] for c in inspect(conn).get_columns("interactions")}
    engine.dispose()
    assert _flask(empty_database, "db", "downgrade", "ca7abc2afbba").returncode == 0
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source_id, has_repeat, answered_at FROM interactions ORDER BY id")
        ).all()
        assert [(s, bool(r)) for s, r, _ in rows] == [("i1", True), ("i2", False)]
        assert str(rows[0][2]).startswith("2026-11-03 01:00:00.25")
        assert conn.execute(text("SELECT count(*) FROM surveys")).scalar() == 1


FROZEN_RESULTS = [
    "INSERT INTO users (id, agent_no, name, active, must_change_password, created_at, updated_at)"
    " VALUES (1, '10001', '坐席', TRUE, FALSE, '2026-11-01', '2026-11-01')",
    "INSERT INTO positions (id, name, description, created_at)"
    " VALUES (1, '电话客服', '', '2026-11-01')",
    "INSERT INTO plans (id, position_id, period_kind, created_at)"
    " VALUES (1, 1, 'monthly', '2026-11-01')",
    "INSERT INTO plan_versions (id, plan_id, number, document, created_at, note)"
    " VALUES (1, 1, 1, '{}', '2026-11-01', '')",
    "INSERT INTO periods (id, key, kind, first_day, last_day, close_at, results_version,"
    " revision_pending, created_at) VALUES (1, '2026-10', 'monthly', '2026-10-01', '2026-10-31',"
    " '2026-11-03', 1, FALSE, '2026-11-01')",
    "INSERT INTO results_versions (id, period_id, number, created_at, reason)"
    " VALUES (1, 1, 1, '2026-11-03', '')",
    "INSERT INTO result_rows (version_id, agent_id, plan_version_id, cohort, bonus, deductions,"
    ' "offset", gate_open, eligible, lines)'
    " VALUES (1, 1, 1, '电话客服/regular', 0, 0, 0, TRUE, TRUE, '[]')",
]


def test_the_results_version_token_keeps_the_frozen_results(empty_database):
    """Adding and dropping the token keeps every frozen result row (on SQLite, a rebuilt
    results_versions with foreign keys on would delete them through ON DELETE CASCADE)."""
    assert _flask(empty_database, "db", "upgrade", "ca7abc2afbba").returncode == 0
    engine = create_engine(empty_database)
    with engine.begin() as conn:
        for statement in FROZEN_RESULTS:
            conn.execute(text(statement))
    up = _flask(empty_database, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM result_rows")).scalar() == 1
        token = conn.execute(text("SELECT token FROM results_versions")).scalar()
    assert len(token) == 16
    down = _flask(empty_database, "db", "downgrade", "ca7abc2afbba")
    assert down.returncode == 0, down.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM result_rows")).scalar() == 1
    engine.dispose()
