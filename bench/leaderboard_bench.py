"""Leaderboard page benchmark (issue 6): requests per second and p95 latency of the
leaderboard page under 8 concurrent clients, against a minimal Flask page served the same way
in the same run (goal: at least 0.2 of its rate, p95 under 50 ms).

1,000 agents of demo-like data (three positions with their default plans, 20 teams, a tenth
of them new agents): October 2026 closed by the real close (a frozen results version,
published) and November 2026 open (computed live). Each app is served by gunicorn in a
subprocess as the README runs it in production; the clients are threads in this process,
logged in as an agent (humane mode, the default). The portal's home page is measured too: the
lightest logged-in page, the cost every page pays (session, navigation, layout). Run alone
with `python -m bench.leaderboard_bench`.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.report import results_table

ROOT = Path(__file__).resolve().parent.parent
AGENTS = int(os.environ.get("BENCH_AGENTS", "1000"))
CLIENTS = 8
SECONDS = 3.0  # measured per repeat, after a warm-up
REPEATS = 5
WORKERS = 4  # as the README runs the portal: `gunicorn -w 4 wsgi:app` (sync workers)
PASSWORD = "bench1234"
SECTION = "Leaderboard page"
CLOSED, OPEN = "2026-10", "2026-11"
POSITIONS = {"电话客服": 0.6, "技术支持": 0.2, "社交媒体客服": 0.2}


def minimal_app():
    """The baseline: a Flask app with one page and nothing else."""
    from flask import Flask

    app = Flask(__name__)

    @app.get("/")
    def index():
        return "<!doctype html><title>ok</title><p>ok</p>"

    return app


def _day_rows(agent_id: int, trait: dict, first: date, days: int, rng: random.Random) -> list:
    """One queue's daily sums for each day: about 65 contacts a day, the agent's habits."""
    rows = []
    for n in range(days):
        n_all = rng.randint(50, 80)
        short = rng.randint(0, 1)
        answered = n_all - short - rng.randint(0, 3)
        n_csat = answered // 5
        n_qa = 1 if n % 2 == 0 else 0
        rows.append(
            {
                "day": first + timedelta(days=n),
                "agent_id": agent_id,
                "queue": trait["queue"],
                "n_all": n_all,
                "n_short": short,
                "n_answered": answered,
                "n_sl": int(answered * rng.uniform(0.7, 0.95)),
                "sum_wait": answered * trait["wait"] * rng.uniform(0.8, 1.2),
                "sum_handle": answered * trait["aht"] * rng.uniform(0.9, 1.1),
                "n_fcr": int(answered * min(1.0, trait["fcr"] * rng.uniform(0.95, 1.05))),
                "n_transferred": int(answered * rng.uniform(0.02, 0.08)),
                "n_csat": n_csat,
                "n_csat_pos": int(n_csat * min(1.0, trait["csat"] * rng.uniform(0.95, 1.05))),
                "n_nps": n_csat,
                "n_nps_pro": int(n_csat * 0.6),
                "n_nps_det": int(n_csat * 0.1),
                "n_qa": n_qa,
                "sum_qa": n_qa * trait["qa"] * rng.uniform(0.95, 1.05),
            }
        )
    return rows


def seed(app) -> None:
    """The organisation, two months of daily sums and supplied values, October closed and
    published."""
    from sqlalchemy import insert

    from portal.accounts.models import Position, Role, Team, User
    from portal.accounts.security import hash_password
    from portal.extensions import db
    from portal.metrics.models import DayStats, SuppliedValue
    from portal.metrics.periods import parse_period
    from portal.periods import services as periods
    from portal.scoring.services import ensure_default_plan

    rng = random.Random(2026)
    password = hash_password(PASSWORD)
    with app.app_context():
        positions = [Position(name=name) for name in POSITIONS]
        teams = [Team(name=f"{n + 1:02d}组") for n in range(20)]
        db.session.add_all(positions + teams)
        db.session.flush()
        for position in positions:
            ensure_default_plan(None, position)
        people = []
        for n in range(AGENTS):
            share, position = 0.0, positions[-1]
            for candidate, weight in zip(positions, POSITIONS.values(), strict=True):
                share += weight
                if n / AGENTS < share:
                    position = candidate
                    break
            new = n % 10 == 9  # a tenth joined recently: the new-agent cohort
            user = User(
                agent_no=f"{100000 + n}",
                name=f"坐席{n}",
                email=f"a{n}@bench.example",
                team_id=teams[n % 20].id,
                position_id=position.id,
                hire_date=date(2026, 10, 15) if new else date(2024, 1, 1),
                active=True,
                must_change_password=False,
                password_hash=password,
            )
            user.set_roles({Role.AGENT})
            people.append(user)
        admin = User(agent_no="bench-admin", name="管理员", must_change_password=False, active=True)
        admin.set_roles({Role.ADMIN})
        db.session.add_all([*people, admin])
        db.session.flush()
        for month in (CLOSED, OPEN):
            period = parse_period(month)
            rows, supplied = [], []
            for user in people:
                trait = {
                    "queue": f"Q{user.id % 20}",
                    "aht": rng.uniform(280, 450),
                    "wait": rng.uniform(5, 40),
                    "fcr": rng.uniform(0.6, 0.9),
                    "csat": rng.uniform(0.75, 0.97),
                    "qa": rng.uniform(65, 98),
                }
                rows += _day_rows(user.id, trait, period.first_day, period.days, rng)
                supplied.append(
                    {
                        "agent_id": user.id,
                        "period_key": month,
                        "metric": "knowledge_contrib",
                        "value": rng.uniform(1, 9),
                    }
                )
                supplied.append(
                    {
                        "agent_id": user.id,
                        "period_key": month,
                        "metric": "brand_sentiment",
                        "value": rng.uniform(55, 90),
                    }
                )
            for start in range(0, len(rows), 5000):
                db.session.execute(insert(DayStats), rows[start : start + 5000])
            db.session.execute(insert(SuppliedValue), supplied)
        db.session.commit()
        row = periods.ensure_period(parse_period(CLOSED))
        db.session.commit()
        closed_at = datetime(2026, 11, 3, 16, tzinfo=UTC)
        outcome = periods.close_period(row, closed_at)
        assert outcome.status == "closed", outcome.message
        row.published_version, row.published_at = row.results_version, closed_at
        db.session.commit()


def _serve(target: str, env: dict, port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        target,
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz" if "wsgi" in target else "/")
            conn.getresponse().read()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"{target} did not start on port {port}")


def _login(port: int, agent_no: str) -> str:
    """The session cookie of a fresh login (the login page's CSRF token, then the form)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    from urllib.parse import urlencode

    body = urlencode({"login": agent_no, "password": PASSWORD, "csrf_token": token})
    conn.request(
        "POST",
        "/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 302, f"login failed: {response.status}"
    cookies = [
        value.split(";")[0]
        for name, value in response.getheaders()
        if name.lower() == "set-cookie" and "portal_session" in value
    ]
    return cookies[-1]


def _load(port: int, path: str, cookie: str, seconds: float) -> tuple[int, list[float]]:
    """`CLIENTS` threads asking for `path` back to back for `seconds`: requests and latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    failures = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine = []
        headers = {"Cookie": cookie} if cookie else {}
        while time.perf_counter() < stop:
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                failures.append(response.status)
                return
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    assert not failures, f"{path} answered {failures[:3]}"
    return len(latencies), [elapsed, *latencies]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(pages: dict[str, tuple[int, str, str]]) -> dict[str, dict]:
    """Each page (port, path, cookie) asked for by CLIENTS clients for SECONDS, in turn, REPEATS
    times (so that a busy moment of the machine falls on all of them alike): the median rate,
    and the median and p95 latency of all their requests."""
    for port, path, cookie in pages.values():  # warm-up: every worker, its caches
        _load(port, path, cookie, 1.0)
    rates = {name: [] for name in pages}
    latencies = {name: [] for name in pages}
    for _ in range(REPEATS):
        for name, (port, path, cookie) in pages.items():
            count, (elapsed, *found) = _load(port, path, cookie, SECONDS)
            rates[name].append(count / elapsed)
            latencies[name] += found
    figures = {}
    for name in pages:
        found = sorted(latencies[name])
        figures[name] = {
            "rps": statistics.median(rates[name]),
            "p95_ms": found[int(0.95 * (len(found) - 1))] * 1000,
            "median_ms": statistics.median(found) * 1000,
        }
    return figures


def run() -> list[dict]:
    from flask_migrate import upgrade

    from portal import create_app

    folder = Path(tempfile.mkdtemp(prefix="portal-bench-boards-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "SCHEDULER_ENABLED": "0",
        "CERTIFICATES_DIR": str(folder / "certificates"),
        "PYTHONPATH": str(ROOT),
    }
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "CERTIFICATES_DIR": str(folder / "certificates"),
        }
    )
    with app.app_context():
        upgrade()
    seed(app)

    minimal_port, portal_port = _free_port(), _free_port()
    servers = [
        _serve("bench.leaderboard_bench:minimal_app()", env, minimal_port),
        _serve("wsgi:app", env, portal_port),
    ]
    try:
        cookie = _login(portal_port, "100003")
        figures = measure(
            {
                "minimal": (minimal_port, "/", ""),
                "home": (portal_port, "/", cookie),
                "closed": (portal_port, f"/leaderboards?period={CLOSED}", cookie),
                "open": (portal_port, f"/leaderboards?period={OPEN}", cookie),
            }
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)

    base = figures["minimal"]
    results = []
    for name, label in (
        ("closed", f"closed period {CLOSED}, read from its snapshot"),
        ("open", f"open period {OPEN}, computed live"),
        ("home", "for comparison: the portal's home page"),
    ):
        f = figures[name]
        share = f["rps"] / base["rps"]
        results.append(
            {
                "name": f"{label}, {CLIENTS} clients"
                if name == "home"
                else f"Leaderboard page, {AGENTS:,} agents, {label}, {CLIENTS} clients",
                "measure": f"{f['rps']:.0f} requests/s; latency median {f['median_ms']:.1f} ms, "
                f"p95 {f['p95_ms']:.1f} ms",
                "baseline": f"minimal Flask page: {base['rps']:.0f} requests/s, p95 "
                f"{base['p95_ms']:.1f} ms",
                "ratio": share,
                "goal": "—" if name == "home" else "rate ≥ 0.2 of the baseline's, p95 < 50 ms",
                "met": None if name == "home" else share >= 0.2 and f["p95_ms"] < 50,
                "note": "",
            }
        )
    return results


def section(results: list[dict]) -> list[str]:
    """The lines of this benchmark's section of docs/BENCHMARKS.md."""
    import platform

    lines = [
        f"Measured by `python -m bench leaderboards` (part of `make bench`) on "
        f"{platform.machine()} with {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. "
        f"{AGENTS:,} agents (three positions with their seeded plans, 20 teams, a tenth of "
        "them new) with a month of daily sums and supplied values each for October and "
        "November 2026; October closed by the real close and published, November open. Both "
        f"apps are served by `gunicorn -w {WORKERS}` (sync workers, as the README runs the "
        f"portal) on SQLite; {CLIENTS} client threads in the benchmark process ask for the page "
        "back to back, logged in as an agent, humane mode on (the default). Each figure: the "
        f"median rate of {REPEATS} runs of {SECONDS:.0f} s after a warm-up, and the latency "
        "percentiles of all their requests. Ratio = the page's rate ÷ the minimal page's rate "
        "(higher is better).",
        "",
        *results_table(results),
    ]
    closed, _open, home = results
    lines += [
        "",
        "- Every logged-in request runs one query for the login session, its user, their roles "
        "and the bell's unread count (a revoked session is refused at the next request); a "
        "board adds one for the period's state and its results versions, so whether it is "
        "closed and which version the viewer may see are always current. A process keeps each "
        "results version it has read, with the boards built from it, named by the version's "
        "id and random token (a version never changes). Names, teams, who is left out "
        "(inactive, no agent role), the plans' period kinds and the board settings are read at "
        "most `LEADERBOARD_REREAD_SECONDS` (10) ago by each process (a setting changed by that "
        "process at once). The menu, the head's assets, the bell, the board's filters and each "
        "of its lines are template fragments kept per process, each named by what it shows "
        "(language, roles and led teams; the line's values and names and whether it is the "
        "viewer's own); templates translate with one catalog lookup per string. The home page "
        f"reaches {home['ratio']:.2f} of the minimal page's rate, the closed board "
        f"{closed['ratio'] / home['ratio']:.2f} of the home page's.",
        "- An open period's board is scored (`scoring.services.all_results`, a few hundred ms "
        "at 1,000 agents) at most `LEADERBOARD_LIVE_SECONDS` (60) ago: each web process keeps "
        "it, with the boards built from it, and the board shows when it was scored. No cheap "
        "data version covers all its inputs (imports, QA scores and appeals, people's "
        "positions, teams and roles, plans), so it is kept for a time, said on the page, "
        "rather than until a change. Scored at every request it ran at 8 requests/s with a "
        "p95 of 1.2 s.",
        "- Profiled on 2026-12-01 in one process (Flask's test client, one thread, this "
        "benchmark's data; medians of process CPU time per request, the machine shared with "
        "other work), before → after: the minimal page 0.17 → 0.15 ms; a logged-in page that "
        "renders only the layout 1.86 → 0.83 ms; the home page 2.83 → 1.51 ms; the closed "
        "board 4.71 → 1.34 ms; the open board 6.01 → 1.34 ms. Before (2026-11-23) this "
        "benchmark measured the closed board at "
        "177 requests/s (0.07), the open board at 146 (0.06) and the home page at 248 (0.10): "
        "two queries for the login (the session with its user, then the roles), one for the bell, "
        "and per board request the "
        "period, a sum over the version's rows, who is left out, the teams, the settings and "
        "the names, and Flask-Babel's lookups for every string of the page.",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(section(run())))
