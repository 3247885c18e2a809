"""The scheduler: one list of jobs, each slot claimed once, failures recorded, a heartbeat."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from portal import create_app, jobs
from portal.accounts.models import LoginFailure, Role, UserSession
from portal.db import utcnow
from portal.extensions import db
from portal.jobs import JOBS, Job, beat, heartbeat_age, run_job
from portal.system.models import JobRun
from tests.conftest import login

ROOT = Path(__file__).resolve().parent.parent
NOON = datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)


def test_job_ids_are_unique_and_slots_are_aligned():
    ids = [job.id for job in JOBS]
    assert len(ids) == len(set(ids))
    job = Job("x", lambda now: "", 15, "x")
    assert job.slot(NOON) == "2026-11-23T12:00"
    assert job.slot(NOON + timedelta(minutes=14, seconds=50)) == "2026-11-23T12:00"
    assert job.slot(NOON + timedelta(minutes=15)) == "2026-11-23T12:15"


def test_a_slot_runs_once_however_often_it_is_started(ctx):
    calls = []
    job = Job("counting", lambda now: calls.append(now) or "done", 15, "counting")
    first = run_job(job, NOON)
    assert first.status == "ok" and first.detail == "done"
    assert run_job(job, NOON + timedelta(minutes=1)) is None  # same slot: claimed already
    assert len(calls) == 1
    assert run_job(job, NOON + timedelta(minutes=15)).status == "ok"  # the next slot runs
    assert len(calls) == 2


def test_a_failing_job_is_recorded_and_does_not_stop_the_next(ctx):
    def explode(now):
        raise RuntimeError("upstream file missing")

    failed = run_job(Job("exploding", explode, 15, "x"), NOON)
    assert failed.status == "failed"
    assert "upstream file missing" in failed.error
    assert failed.finished_at is not None
    ok = run_job(Job("fine", lambda now: "fine", 15, "x"), NOON)
    assert ok.status == "ok"


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(ctx):
    job = Job("slow", lambda now: "ok", 15, "x")
    db.session.add(JobRun(job_id="slow", slot="old", status="running", started_at=NOON))
    db.session.commit()
    run_job(job, NOON + timedelta(hours=7))
    stale = db.session.scalar(select(JobRun).where(JobRun.slot == "old"))
    assert stale.status == "failed" and "interrupted" in stale.error


def test_purge_removes_old_failures_and_ended_sessions_but_keeps_live_ones(ctx, make_user):
    user = make_user({Role.AGENT})
    now = utcnow()
    db.session.add_all(
        [
            LoginFailure(scope="account", key="x", at=now - timedelta(hours=2)),
            LoginFailure(scope="account", key="x", at=now - timedelta(minutes=1)),
            UserSession(user_id=user.id, token_hash="a" * 64, expires_at=now + timedelta(hours=1)),
            UserSession(user_id=user.id, token_hash="b" * 64, expires_at=now - timedelta(hours=1)),
            UserSession(
                user_id=user.id,
                token_hash="c" * 64,
                expires_at=now + timedelta(hours=1),
                revoked_at=now,
            ),
        ]
    )
    db.session.commit()
    run = run_job(jobs.job_by_id("purge_login_records"), now)
    assert run.status == "ok"
    assert run.detail == "removed 1 login failures and 2 ended sessions"
    assert db.session.scalar(select(func.count(LoginFailure.id))) == 1
    assert list(db.session.scalars(select(UserSession.token_hash))) == ["a" * 64]


def test_healthz_reports_the_scheduler_heartbeat(app, client):
    assert client.get("/healthz").get_json() == {
        "database": "ok",
        "scheduler_heartbeat_age_s": None,
    }
    with app.app_context():
        beat("host:1", utcnow() - timedelta(minutes=5), now=utcnow() - timedelta(seconds=42))
    age = client.get("/healthz").get_json()["scheduler_heartbeat_age_s"]
    assert 41 <= age <= 60
    with app.app_context():
        beat("host:1", utcnow())
        assert heartbeat_age() < 5


def test_healthz_answers_503_when_the_database_is_unreachable(app, tmp_path):
    broken = create_app(
        {
            **app.config,
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    )
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] != "ok"


def _scheduler_env(app) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY="test-secret",
        FLASK_APP="wsgi.py",
    )
    return env


def test_two_scheduler_processes_do_each_slot_once(app):
    """Two `flask scheduler run --once` processes racing: one run per job slot."""
    flask = str(Path(sys.executable).parent / "flask")
    procs = [
        subprocess.Popen(
            [flask, "scheduler", "run", "--once"],
            cwd=ROOT,
            env=_scheduler_env(app),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    with app.app_context():
        rows = db.session.execute(
            select(JobRun.job_id, JobRun.slot, func.count()).group_by(JobRun.job_id, JobRun.slot)
        ).all()
        assert {job_id for job_id, _, _ in rows} == {job.id for job in JOBS}
        # The processes may straddle a slot boundary; never twice in one slot.
        assert all(count == 1 for _, _, count in rows)
        assert heartbeat_age() is not None


def test_scheduler_disabled_runs_nothing(app):
    flask = str(Path(sys.executable).parent / "flask")
    env = {**_scheduler_env(app), "SCHEDULER_ENABLED": "0"}
    done = subprocess.run(
        [flask, "scheduler", "run"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0
    assert b"SCHEDULER_ENABLED is off" in done.stdout
    with app.app_context():
        assert db.session.scalar(select(func.count(JobRun.id))) == 0


def test_admin_reads_the_job_history(app, make_user):
    with app.app_context():
        run_job(Job("broken", lambda now: 1 / 0, 15, "x"), NOON)
        run_job(jobs.job_by_id("purge_login_records"), NOON)
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert "purge_login_records" in html
    assert "ZeroDivisionError" in html  # the failure's error, readable by the admin
    assert "成功" in html and "失败" in html
    assert "调度器从未运行过" in html  # no heartbeat yet: said plainly
