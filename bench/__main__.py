"""`make bench`: measure against a same-run baseline and write docs/BENCHMARKS.md.

Each figure is the median of several repetitions. The machine has 2 cores.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5


def median_time(func, repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _counter_table(conn) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_counter (id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute("DELETE FROM bench_counter")
    conn.execute("INSERT INTO bench_counter (id, n) VALUES (1, 0)")


def bench_sqlite_writes(app, db) -> dict:
    """Read-then-write transactions from 4 threads through the portal's engine set-up, against
    the same transactions done one after another with plain sqlite3 (no contention at all)."""
    threads, per_thread = 4, 150
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")

    def portal_run():
        with app.app_context(), db.engine.begin() as conn:
            _counter_table(conn.connection.driver_connection)

        def work():
            with app.app_context():
                for _ in range(per_thread):
                    with db.engine.begin() as conn:
                        n = conn.execute(text("SELECT n FROM bench_counter WHERE id = 1")).scalar()
                        conn.execute(
                            text("UPDATE bench_counter SET n = :n WHERE id = 1"), {"n": n + 1}
                        )

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        with app.app_context(), db.engine.connect() as conn:
            total = conn.execute(text("SELECT n FROM bench_counter")).scalar()
        assert total == threads * per_thread, f"lost updates: {total}"

    def baseline_run():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        _counter_table(conn)
        for _ in range(threads * per_thread):
            conn.execute("BEGIN IMMEDIATE")
            n = conn.execute("SELECT n FROM bench_counter WHERE id = 1").fetchone()[0]
            conn.execute("UPDATE bench_counter SET n = ? WHERE id = 1", (n + 1,))
            conn.execute("COMMIT")
        conn.close()

    def deferred_failures() -> int:
        """The same contention with plain deferred BEGIN: how many transactions fail."""
        failures = 0
        lock = threading.Lock()

        def work():
            nonlocal failures
            conn = sqlite3.connect(path, isolation_level=None, timeout=15)
            for _ in range(per_thread):
                try:
                    conn.execute("BEGIN")
                    n = conn.execute("SELECT n FROM bench_counter WHERE id = 1").fetchone()[0]
                    conn.execute("UPDATE bench_counter SET n = ? WHERE id = 1", (n + 1,))
                    conn.execute("COMMIT")
                except sqlite3.OperationalError:
                    conn.execute("ROLLBACK")
                    with lock:
                        failures += 1
            conn.close()

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return failures

    portal = median_time(portal_run)
    baseline = median_time(baseline_run)
    failed = deferred_failures()
    count = threads * per_thread
    return {
        "name": "SQLite read-then-write transactions, 4 threads",
        "measure": f"{count} transactions: {portal:.3f} s ({count / portal:.0f}/s), no failures",
        "baseline": f"same transactions serially in plain sqlite3: {baseline:.3f} s",
        "ratio": portal / baseline,
        "note": f"with a plain deferred BEGIN, {failed} of {count} transactions failed "
        "with 'database is locked'",
    }


def bench_password_verify() -> dict:
    from argon2 import PasswordHasher

    from portal.accounts.security import _hasher

    stored = _hasher.hash("correct horse 1")
    portal = median_time(lambda: _hasher.verify(stored, "correct horse 1"), repeats=21)
    default = PasswordHasher()
    default_hash = default.hash("correct horse 1")
    baseline = median_time(lambda: default.verify(default_hash, "correct horse 1"), repeats=21)
    return {
        "name": "argon2id password verification (OWASP: 19 MiB, t=2, p=1)",
        "measure": f"{portal * 1000:.1f} ms per login (goal: well under 50 ms)",
        "baseline": f"argon2-cffi's default profile (64 MiB, t=3, p=4): {baseline * 1000:.1f} ms",
        "ratio": portal / baseline,
        "note": "",
    }


def bench_user_list(app, db) -> dict:
    """The admin user list with 5,000 users, against the health check on the same server."""
    from portal.accounts.models import Role, Team, User
    from portal.accounts.security import hash_password

    with app.app_context():
        teams = [Team(name=f"组{i}") for i in range(20)]
        db.session.add_all(teams)
        db.session.flush()
        users = [
            User(
                agent_no=f"{100000 + i}",
                name=f"坐席{i}",
                email=f"a{i}@example.com",
                team_id=teams[i % 20].id,
                hire_date=date(2024, 1, 1),
                active=True,
                must_change_password=False,
            )
            for i in range(5000)
        ]
        for u in users:
            u.set_roles({Role.AGENT})
        admin = User(
            agent_no="bench-admin",
            name="管理员",
            active=True,
            must_change_password=False,
            password_hash=hash_password("bench1234"),
        )
        admin.set_roles({Role.ADMIN})
        db.session.add_all([*users, admin])
        db.session.commit()

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post(
        "/login", data={"login": "bench-admin", "password": "bench1234", "csrf_token": token}
    )
    queries = []
    with app.app_context():
        listener = lambda *a, **k: queries.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        assert client.get("/users?page=150").status_code == 200
        event.remove(db.engine, "before_cursor_execute", listener)
    url = "/users?page=150"
    portal = median_time(lambda: client.get(url), repeats=11)
    search = median_time(lambda: client.get("/users?q=坐席4999"), repeats=11)
    baseline = median_time(lambda: client.get("/healthz"), repeats=11)
    return {
        "name": "Admin user list, 5,000 users, page 150",
        "measure": f"{portal * 1000:.1f} ms per page, {len(queries)} SQL statements; "
        f"search {search * 1000:.1f} ms",
        "baseline": f"/healthz on the same app: {baseline * 1000:.1f} ms",
        "ratio": portal / baseline,
        "note": "",
    }


def main() -> None:
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db

    tmp = tempfile.mkdtemp(prefix="portal-bench-")
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db", "SECRET_KEY": "bench"}
    )
    with app.app_context():
        upgrade()
    results = [bench_password_verify(), bench_sqlite_writes(app, db), bench_user_list(app, db)]
    from bench import scoring_bench

    results += scoring_bench.run()

    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; medians, "
        f"{time.strftime('%Y-%m-%d')}. Each row compares with a baseline measured in the same run; "
        "ratio = the portal's time ÷ the baseline's time (lower is better).",
        "",
        "| benchmark | result | baseline | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['measure']} | {r['baseline']} | {r['ratio']:.2f} |")
        print(
            f"{r['name']}\n  {r['measure']}\n  baseline: {r['baseline']}\n"
            f"  ratio: {r['ratio']:.2f}" + (f"\n  {r['note']}" if r["note"] else "")
        )
    notes = list(dict.fromkeys(r["note"] for r in results if r["note"]))
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    path = ROOT / "docs" / "BENCHMARKS.md"
    old = path.read_text() if path.exists() else ""
    kept = old[old.index("\n## ") :] if "\n## " in old else ""  # the sections below the table
    path.write_text("\n".join(lines) + "\n" + kept)
    print("Written to docs/BENCHMARKS.md")
    for run_section in SECTIONS.values():
        run_section()


def write_section(title: str, body: list[str]) -> None:
    """Write `## title` and `body` into docs/BENCHMARKS.md, replacing that section only (or
    adding it at the end); the rest of the file stays as it is."""
    path = ROOT / "docs" / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    heading = f"## {title}\n"
    block = heading + "\n" + "\n".join(body).rstrip() + "\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + block + (text[end:] if end != -1 else "")
    path.write_text(text)
    print(f"Written to docs/BENCHMARKS.md, section {title!r}")


def run_metrics() -> None:
    """Importing a month of interactions and computing its metrics (bench/metrics_bench.py)."""
    from bench import metrics_bench

    write_section(metrics_bench.SECTION, metrics_bench.section(metrics_bench.run()))


def run_close() -> None:
    """Closing a month with its certificates; certificates per second (bench/close_bench.py)."""
    from bench import close_bench

    results = close_bench.run()
    write_section(close_bench.SECTION, close_bench.section(results))


def run_leaderboards() -> None:
    """Leaderboard page requests per second against a minimal Flask page (leaderboard_bench)."""
    from bench import leaderboard_bench

    write_section(leaderboard_bench.SECTION, leaderboard_bench.section(leaderboard_bench.run()))


# `python -m bench NAME …` runs only these, each rewriting its own section; `make bench` runs
# the table above, then every section.
SECTIONS = {"metrics": run_metrics, "close": run_close, "leaderboards": run_leaderboards}


if __name__ == "__main__":
    import sys

    chosen = sys.argv[1:]
    if unknown := [name for name in chosen if name not in SECTIONS]:
        sys.exit(f"Unknown benchmark {', '.join(unknown)}; choose from {', '.join(SECTIONS)}.")
    for name in chosen:
        SECTIONS[name]()
    if not chosen:
        main()
