"""Import and metrics benchmarks at call-center scale (issue: one month, 1,000 agents).

Set BENCH_AGENTS to run smaller (the default is 1,000 agents, about 2 million interactions).
"""

from __future__ import annotations

import csv
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portal.metrics.ingest import INTERACTION_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
PER_DAY = 65  # contacts an agent handles a day, on average


def generate(path: Path, agents: int, seed: int = 11) -> int:
    """One month (November 2026) of interactions for `agents` agents, as a CSV file."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 1 November, 00:00 in Shanghai
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(INTERACTION_COLUMNS)
        for day in range(30):
            base = start + timedelta(days=day, hours=8)
            for agent in range(agents):
                for _ in range(rng.randint(PER_DAY - 15, PER_DAY + 15)):
                    rows += 1
                    offered = base + timedelta(seconds=rng.randint(0, 13 * 3600))
                    wait = rng.randint(1, 60)
                    if rng.random() < 0.03:
                        writer.writerow(
                            [
                                f"B{rows}",
                                "phone",
                                f"Q{agent % 20}",
                                f"A{agent:05d}",
                                offered.isoformat(),
                                "",
                                (offered + timedelta(seconds=wait)).isoformat(),
                                "",
                                "",
                                "",
                                "",
                                "",
                            ]
                        )
                        continue
                    answered = offered + timedelta(seconds=wait)
                    ended = answered + timedelta(seconds=rng.randint(60, 900))
                    writer.writerow(
                        [
                            f"B{rows}",
                            "phone",
                            f"Q{agent % 20}",
                            f"A{agent:05d}",
                            offered.isoformat(),
                            answered.isoformat(),
                            ended.isoformat(),
                            rng.randint(0, 60),
                            0,
                            f"C{rng.randint(1, 600_000)}",
                            int(rng.random() < 0.05),
                            rng.choice(["", "1", "1", "0"]),
                        ]
                    )
    return rows


def _env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(DATABASE_URL=database_url, SECRET_KEY="bench", FLASK_APP="wsgi.py")
    return env


def _flask(database_url: str, *args: str) -> tuple[float, int]:
    """Run a flask command; returns (seconds, peak RSS of that process in MB)."""
    flask = str(Path(sys.executable).parent / "flask")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [flask, *args], cwd=ROOT, env=_env(database_url), capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed: {done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) // 1024


def _prepare(database_url: str, agents: int) -> None:
    """Schema and the agents' accounts."""
    _flask(database_url, "db", "upgrade")
    users = Path(tempfile.mkstemp(suffix=".csv")[1])
    with users.open("w", encoding="utf-8") as f:
        f.write("agent_no,name,email,team,position,roles,hire_date\n")
        for agent in range(agents):
            f.write(f"A{agent:05d},坐席{agent},,组{agent % 50},电话客服,agent,2024-01-01\n")
    _flask(database_url, "users", "import", str(users))
    users.unlink()


def _parsed_rows(path: Path):
    """The CSV rows as the tuples a hand-written loader would insert."""
    with path.open(encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            yield tuple(v or None for v in row)


PLAIN_TABLE = (
    "CREATE TABLE plain (interaction_id TEXT PRIMARY KEY, channel TEXT, queue TEXT, "
    "agent_no TEXT, offered_at TEXT, answered_at TEXT, ended_at TEXT, wrap_seconds REAL, "
    "hold_seconds REAL, customer_key TEXT, transferred INTEGER, resolved INTEGER)"
)


def sqlite_baseline(path: Path, folder: Path) -> float:
    db = folder / "plain.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(PLAIN_TABLE)
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO plain VALUES ({', '.join('?' * 12)})", _parsed_rows(path))
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def postgres_baseline(path: Path, url: str) -> float:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("DROP TABLE IF EXISTS plain")
        conn.execute(PLAIN_TABLE.replace("INTEGER", "INT"))
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY plain FROM STDIN") as copy:
            for row in _parsed_rows(path):
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE plain")
        conn.commit()
    return seconds


def metrics_times(database_url: str) -> tuple[float, float]:
    """(portal: rebuild the month's derived sums and compute every agent's metrics,
    baseline: one hand-written aggregate query over the same table)."""
    from sqlalchemy import select, text

    from portal import create_app
    from portal.accounts.models import User
    from portal.extensions import db
    from portal.metrics import compute, stats
    from portal.metrics.periods import parse_period

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    period = parse_period("2026-11")
    with app.app_context():
        agents = db.session.scalars(select(User)).all()
        started = time.perf_counter()
        stats.rebuild_day_stats(period.first_day, period.last_day)
        results = compute.agent_metrics(period, agents)
        db.session.commit()
        portal = time.perf_counter() - started
        assert sum(r.values["handled"] or 0 for r in results) > 0
        started = time.perf_counter()
        db.session.execute(
            text(
                "SELECT agent_id, COUNT(*), SUM(CASE WHEN talk_s IS NOT NULL THEN 1 ELSE 0 END), "
                "AVG(talk_s + wrap_s), AVG(CASE WHEN talk_s IS NOT NULL THEN wait_s END), "
                "SUM(CASE WHEN talk_s IS NOT NULL AND r.interaction_id IS NULL THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN transferred = :t THEN 1 ELSE 0 END) FROM interactions i "
                "LEFT JOIN interaction_repeats r ON r.interaction_id = i.id "
                "WHERE offered_day BETWEEN :a AND :b GROUP BY agent_id"
            ),
            {"a": period.first_day, "b": period.last_day, "t": True},
        ).all()
        baseline = time.perf_counter() - started
    return portal, baseline


def _measure(url: str, label: str, path: Path, rows: int, agents: int, baseline) -> list[dict]:
    """Import the file into the database at `url`, then compute the month's metrics, each
    against its baseline (`baseline(path)` → seconds for the bare load)."""
    _prepare(url, agents)
    portal, peak = _flask(url, "import", "interactions", str(path))
    bare_name, bare = baseline(path)
    metrics, aggregate = metrics_times(url)
    return [
        {
            "name": f"Import {rows:,} interactions into {label} ({agents} agents, one month)",
            "measure": f"{portal:.1f} s, {rows / portal:,.0f} rows/s, peak memory {peak} MB "
            "(goal: at least half the baseline's rate, at most 300 MB)",
            "baseline": f"{bare_name}: {bare:.1f} s, {rows / bare:,.0f} rows/s",
            "ratio": portal / bare,
            "note": "the import's time includes parsing, checking every row, upserts, the FCR "
            "repeat flags and the daily sums",
        },
        {
            "name": f"Metrics of that month for all {agents} agents ({label})",
            "measure": f"{metrics:.2f} s (goal: at most 3 times the baseline, under 10 s)",
            "baseline": f"one hand-written aggregate query: {aggregate:.2f} s",
            "ratio": metrics / aggregate,
            "note": "",
        },
    ]


def run() -> list[dict]:
    agents = int(os.environ.get("BENCH_AGENTS", "1000"))
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-metrics-"))
    path = folder / "interactions.csv"
    rows = generate(path, agents)
    results = _measure(
        f"sqlite:///{folder / 'portal.db'}",
        "SQLite",
        path,
        rows,
        agents,
        lambda p: ("plain sqlite3 executemany in one transaction", sqlite_baseline(p, folder)),
    )
    pg_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        import psycopg

        pg_url = pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
        name = "portal_bench"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        bench_url = pg_url.rsplit("/", 1)[0] + "/" + name
        results += _measure(
            bench_url,
            "PostgreSQL",
            path,
            rows,
            agents,
            lambda p: ("plain psycopg COPY", postgres_baseline(p, bench_url)),
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return results
