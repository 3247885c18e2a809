"""Closing a month (issue 6, point 8): 1,000 agents and about 2 million interactions closed end to
end with their award certificates, and certificates per second against a bare WeasyPrint render
of the same HTML, with and without HarfBuzz's subsetting library.

`python -m bench close` runs only these and rewrites only their section of docs/BENCHMARKS.md.
Set BENCH_AGENTS to run smaller (the default is 1,000 agents, about 2 million interactions).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.metrics_bench import _flask, generate
from bench.report import results_table

ROOT = Path(__file__).resolve().parent.parent
PERIOD_KEY = "2026-11"  # the month metrics_bench.generate fills
PREVIOUS_KEY = "2026-10"
NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # after November's close time (grace included)
TEAMS = 50
# A mid-sized contact centre: most agents on the phones, each position with its own plan, and
# some agents hired within NEW_AGENT_DAYS (a cohort of their own).
POSITIONS = (("电话客服", 0.7), ("技术支持", 0.2), ("社交媒体客服", 0.1))
NEW_SHARE = 0.12
SURVEYED, EVALUATED, RED_LINE = 0.10, 0.01, 0.003  # shares of answered contacts / evaluations
CLOSE_REPEATS = 3
CERTIFICATE_REPEATS = 3
WITHOUT_SUBSETTING = 5  # certificates rendered with the Python fallback (seconds each)
CLOSE_GOAL_S = 60.0
RATE_GOAL = 15.0  # certificates per second per core
RATIO_GOAL = 1.3  # at most this times the bare render
SECTION = "Period close and certificates"


# --- the data ---------------------------------------------------------------------------------


def _app(url: str, certificates: Path | None = None):
    from portal import create_app

    overrides = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"}
    if certificates is not None:
        overrides["CERTIFICATES_DIR"] = str(certificates)
    return create_app(overrides)


def _people(url: str, agents: int, seed: int = 5) -> None:
    """The agents (A00000… as in the generated interactions; teams 组0…组49 as metrics_bench
    has them), two admins to be told of the close, and a QA evaluator."""
    from portal.accounts.models import Position, Role, Team, User
    from portal.extensions import db

    rng = random.Random(seed)
    app = _app(url)
    with app.app_context():
        positions = {name: Position(name=name) for name, _share in POSITIONS}
        teams = [Team(name=f"组{i}") for i in range(TEAMS)]
        db.session.add_all([*positions.values(), *teams])
        db.session.flush()
        names, shares = zip(*POSITIONS, strict=True)
        people = []
        for n in range(agents):
            hired = date(2024, 1, 1)
            if rng.random() < NEW_SHARE:
                hired = date(2026, 10, 1) - timedelta(days=rng.randint(0, 40))
            user = User(
                agent_no=f"A{n:05d}",
                name=f"坐席{n}",
                team_id=teams[n % TEAMS].id,
                position_id=positions[rng.choices(names, shares)[0]].id,
                hire_date=hired,
                active=True,
                must_change_password=False,
            )
            user.set_roles({Role.AGENT})
            people.append(user)
        for agent_no, name, role in (
            ("admin1", "管理员甲", Role.ADMIN),
            ("admin2", "管理员乙", Role.ADMIN),
            ("QA0001", "质检员", Role.QA),
        ):
            user = User(agent_no=agent_no, name=name, active=True, must_change_password=False)
            user.set_roles({role})
            people.append(user)
        db.session.add_all(people)
        db.session.commit()
        db.engine.dispose()


def _ratings(interactions: Path, folder: Path, agents: int, seed: int = 13) -> tuple[Path, Path]:
    """Surveys (about one answered contact in ten) and QA evaluations (one in a hundred, a few
    with a red line) of the generated interactions. Each agent has their own level of
    satisfaction and quality, so the plans' quality lines (and gates) tell agents apart."""
    rng = random.Random(seed)
    satisfied = [rng.uniform(0.72, 0.97) for _ in range(agents)]
    quality = [rng.uniform(68.0, 96.0) for _ in range(agents)]
    surveys, evaluations = folder / "surveys.csv", folder / "qa.csv"
    with (
        interactions.open(encoding="utf-8") as source,
        surveys.open("w", newline="", encoding="utf-8") as s,
        evaluations.open("w", newline="", encoding="utf-8") as q,
    ):
        reader = csv.reader(source)
        next(reader)
        survey_out, qa_out = csv.writer(s), csv.writer(q)
        survey_out.writerow(["survey_id", "interaction_id", "submitted_at", "csat"])
        qa_out.writerow(
            ["evaluation_id", "interaction_id", "evaluator_no", "score", "evaluated_at", "red_line"]
        )
        for row in reader:
            interaction, agent_no, answered, ended = row[0], row[3], row[5], row[6]
            if not answered:
                continue
            agent = int(agent_no[1:])
            draw = rng.random()
            if draw < SURVEYED:
                happy = rng.random() < satisfied[agent]
                csat = rng.choice((4, 5)) if happy else rng.randint(1, 3)
                survey_out.writerow([f"S{interaction}", interaction, ended, csat])
            elif draw < SURVEYED + EVALUATED:
                score = round(min(100.0, max(0.0, rng.gauss(quality[agent], 6.0))), 1)
                red = int(rng.random() < RED_LINE)
                qa_out.writerow([f"E{interaction}", interaction, "QA0001", score, ended, red])
    return surveys, evaluations


def _plans(url: str) -> None:
    """Each position's seeded plan (default_document), its targets set from the month's
    spread of values as a planner would from last month's: threshold at the 3rd percentile,
    target at the 60th, stretch at the 95th (mirrored where lower is better)."""
    from portal.accounts.models import Position
    from portal.extensions import db
    from portal.metrics import compute
    from portal.metrics.periods import parse_period
    from portal.scoring import plans
    from portal.scoring.services import position_agents, save_plan

    period = parse_period(PERIOD_KEY)
    app = _app(url)
    with app.app_context():
        for name, _share in POSITIONS:
            position = db.session.query(Position).filter_by(name=name).one()
            found = compute.agent_metrics(period, position_agents(position))
            doc = plans.default_document(name)
            for line in doc["lines"]:
                line.pop("new_agent", None)
                values = sorted(v for m in found if (v := m.values.get(line["metric"])) is not None)
                if len(values) < 10:  # no data (e.g. a supplied metric): left out of scores
                    continue

                def at(share: float, values=values) -> float:
                    return round(values[min(len(values) - 1, int(share * len(values)))], 4)

                if line["metric"] in compute.LOWER_IS_BETTER:
                    band = (at(0.97), at(0.40), at(0.05))
                else:
                    band = (at(0.03), at(0.60), at(0.95))
                line["threshold"], line["target"], line["stretch"] = band
            save_plan(None, doc, note="bench: targets from the month's spread")
        db.session.commit()
        db.engine.dispose()


def _periods(url: str, seed: int = 17) -> None:
    """November to close, and October closed before it: its snapshot holds each ranked
    agent's October final (November's provisional final minus a rise drawn around +1.5,
    sd 4) so that 进步标兵 has a previous period to compare with, as it would in production."""
    from sqlalchemy import insert

    from portal.extensions import db
    from portal.metrics.periods import parse_period
    from portal.periods.models import ResultRow, ResultsVersion
    from portal.periods.services import ensure_period
    from portal.scoring.engine import rounded
    from portal.scoring.services import all_results

    rng = random.Random(seed)
    app = _app(url)
    with app.app_context():
        ensure_period(parse_period(PERIOD_KEY))
        previous = ensure_period(parse_period(PREVIOUS_KEY))
        version = ResultsVersion(period_id=previous.id, number=1, created_at=previous.close_at)
        db.session.add(version)
        db.session.flush()
        rows = []
        for plan in all_results(parse_period(PERIOD_KEY)):
            ranked = [r for r in plan.results if r.rank is not None]
            for cohort in sorted({r.cohort for r in ranked}):
                finals = sorted(
                    (
                        (rounded(max(0.0, r.final - rng.gauss(1.5, 4.0))), r)
                        for r in ranked
                        if r.cohort == cohort
                    ),
                    key=lambda pair: -pair[0],
                )
                for rank, (final, r) in enumerate(finals, start=1):
                    rows.append(
                        {
                            "version_id": version.id,
                            "agent_id": r.key,
                            "team_id": plan.agents[r.key].team_id,
                            "handled": r.handled,
                            "plan_version_id": plan.version.id,
                            "cohort": r.cohort,
                            "weighted": final,
                            "final": final,
                            "gate_open": True,
                            "eligible": True,
                            "rank": rank,
                            "lines": [],
                        }
                    )
        db.session.execute(insert(ResultRow), rows)
        previous.results_version, previous.closed_at = 1, previous.close_at
        db.session.commit()
        db.engine.dispose()


def prepare(url: str, folder: Path, interactions: Path, agents: int) -> dict:
    """A database at `url` holding the month, ready to close; returns what it holds."""
    _flask(url, "db", "upgrade")
    _people(url, agents)
    imported = {}
    surveys, evaluations = _ratings(interactions, folder, agents)
    for kind, path in (("interactions", interactions), ("surveys", surveys), ("qa", evaluations)):
        seconds, _peak = _flask(url, "import", kind, str(path))
        with path.open(encoding="utf-8") as f:
            imported[kind] = sum(1 for _ in f) - 1
        print(f"  imported {imported[kind]:,} {kind} in {seconds:.0f} s", flush=True)
    _plans(url)
    _periods(url)
    return imported


# --- the close --------------------------------------------------------------------------------


def provisional_seconds(url: str) -> float:
    """The same-run baseline: the month's provisional results computed alone (what a score page
    computes), the median of CLOSE_REPEATS."""
    from portal.extensions import db
    from portal.metrics.periods import parse_period
    from portal.scoring.services import all_results

    app = _app(url)
    samples = []
    with app.app_context():
        for _ in range(CLOSE_REPEATS):
            started = time.perf_counter()
            found = all_results(parse_period(PERIOD_KEY))
            samples.append(time.perf_counter() - started)
            assert sum(len(plan.results) for plan in found) > 0
            db.session.rollback()
        db.engine.dispose()
    return statistics.median(samples)


def close_once(url: str, certificates: Path) -> dict:
    """Close November on the database at `url` (a fresh copy) and time its steps."""
    from sqlalchemy import func, select

    from portal import pdf
    from portal.awards.models import Award, AwardType
    from portal.extensions import db
    from portal.periods.models import PeriodRow
    from portal.periods.services import close_period

    pdf._fonts.cache_clear()  # a scheduler that has not rendered a PDF yet: fonts load first
    marks: dict[str, float] = {}

    def progress(row: PeriodRow) -> None:
        now = time.perf_counter()
        if row.close_step == "freezing":
            marks.setdefault("claimed", now)
        elif row.close_step == "certificates":
            marks["frozen" if row.close_done == 0 else "rendered"] = now

    app = _app(url, certificates)
    with app.app_context():
        row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == PERIOD_KEY))
        started = time.perf_counter()
        outcome = close_period(row, NOW, progress=progress)
        total = time.perf_counter() - started
        assert outcome.status == "closed", outcome.message
        by_type = dict(
            db.session.execute(
                select(AwardType.code, func.count(Award.id))
                .join(Award, Award.award_type_id == AwardType.id)
                .where(Award.period_id == row.id)
                .group_by(AwardType.code)
            ).all()
        )
        rendered = db.session.scalar(
            select(func.count(Award.id)).where(
                Award.period_id == row.id, Award.pdf_path.is_not(None)
            )
        )
        db.session.remove()
        db.engine.dispose()
    files = len(list(certificates.rglob("*.pdf")))
    assert files == rendered == sum(by_type.values()), (files, rendered, by_type)
    frozen = marks["frozen"]
    last = marks.get("rendered", frozen)
    return {
        "total": total,
        "claim": marks["claimed"] - started,
        "freeze": frozen - marks["claimed"],
        "certificates": last - frozen,
        "finish": started + total - last,
        "awards": by_type,
        "rendered": rendered,
    }


def _copy_sqlite(source: str, target: Path) -> str:
    target.unlink(missing_ok=True)
    src = sqlite3.connect(source.removeprefix("sqlite:///"))
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


def _pg_admin(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


def close_runs(url: str, label: str, folder: Path) -> dict:
    """CLOSE_REPEATS closes, each on a fresh copy of the prepared database."""
    runs = []
    for n in range(CLOSE_REPEATS):
        certificates = folder / f"certificates-{label}-{n}"
        if url.startswith("sqlite"):
            copy = _copy_sqlite(url, folder / f"close-{n}.db")
        else:
            import psycopg

            base = url.rsplit("/", 1)[1]
            name = f"{base}_run"
            with psycopg.connect(_pg_admin(url), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {name} TEMPLATE {base} STRATEGY FILE_COPY")
            copy = url.rsplit("/", 1)[0] + "/" + name
        run = close_once(copy, certificates)
        print(
            f"  close {n + 1}/{CLOSE_REPEATS} on {label}: {run['total']:.2f} s "
            f"(freeze+nominate {run['freeze']:.2f} s, {run['rendered']} certificates "
            f"{run['certificates']:.2f} s); awards {run['awards']}",
            flush=True,
        )
        runs.append(run | {"url": copy})
    middle = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
    return middle | {
        "url": runs[-1]["url"],  # a closed copy, still there
        "samples": [r["total"] for r in runs],
        "median": {
            key: statistics.median(r[key] for r in runs)
            for key in ("total", "claim", "freeze", "certificates", "finish")
        },
    }


def close_row(label: str, agents: int, interactions: int, closed: dict, baseline: float) -> dict:
    m = closed["median"]
    stars = closed["awards"].get("service_star", 0)
    improved = closed["awards"].get("most_improved", 0)
    return {
        "name": f"Close a month on {label}: {agents:,} agents, {interactions:,} interactions",
        "measure": f"{m['total']:.1f} s end to end, median of {CLOSE_REPEATS} "
        f"({', '.join(f'{s:.1f}' for s in closed['samples'])}): freeze and nominate "
        f"{m['freeze']:.1f} s, {closed['rendered']} certificates {m['certificates']:.1f} s "
        f"({stars} 服务之星, {improved} 进步标兵), claim and finish "
        f"{m['claim'] + m['finish']:.2f} s",
        "baseline": f"the same provisional results computed alone (all_results): {baseline:.1f} s",
        "ratio": m["total"] / baseline,
        "goal": f"under {CLOSE_GOAL_S:.0f} s",
        "met": m["total"] < CLOSE_GOAL_S,
    }


# --- certificates per second -----------------------------------------------------------------


def _render_both(url: str, folder: Path, limit: int | None, repeats: int) -> dict:
    """Render the closed period's certificates with render_certificate (HTML with its QR code,
    PDF, file) and the same HTML with a bare WeasyPrint call sharing one FontConfiguration;
    one warm-up each (fonts loaded), then `repeats` rounds, the two alternating certificate by
    certificate (so that a busy moment of the machine falls on both). Medians of the rounds."""
    from sqlalchemy import select
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    from portal.awards.certificates import certificate_html, render_certificate
    from portal.awards.models import Award
    from portal.extensions import db
    from portal.periods.models import PeriodRow

    app = _app(url, folder)
    with app.app_context():
        row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == PERIOD_KEY))
        awards = db.session.scalars(
            select(Award).where(Award.period_id == row.id).order_by(Award.id).limit(limit)
        ).all()
        htmls = [certificate_html(award) for award in awards]
        fonts = FontConfiguration()
        render_certificate(awards[0], NOW)
        HTML(string=htmls[0]).write_pdf(font_config=fonts)
        portal, bare, html = [], [], []
        for _ in range(repeats):
            portal.append(0.0)
            bare.append(0.0)
            for award, text in zip(awards, htmls, strict=True):
                started = time.perf_counter()
                render_certificate(award, NOW)
                portal[-1] += time.perf_counter() - started
                started = time.perf_counter()
                HTML(string=text).write_pdf(font_config=fonts)
                bare[-1] += time.perf_counter() - started
            started = time.perf_counter()
            for award in awards:
                certificate_html(award)
            html.append(time.perf_counter() - started)
        size = len(HTML(string=htmls[0]).write_pdf(font_config=fonts))
        db.session.rollback()
        db.engine.dispose()
    count = len(awards)
    return {
        "count": count,
        "portal": statistics.median(portal) / count,
        "bare": statistics.median(bare) / count,
        "html": statistics.median(html) / count,
        "bytes": size,
    }


def _without_subsetting_main(url: str, folder: str, count: str) -> None:
    """Subprocess entry: the same renders with HarfBuzz's subsetting library hidden from
    WeasyPrint (it then subsets the CJK font with fontTools, in Python)."""
    import weasyprint.pdf.fonts
    import weasyprint.text.ffi

    weasyprint.text.ffi.harfbuzz_subset = None
    weasyprint.pdf.fonts.harfbuzz_subset = None  # the name its PDF writer imported
    fallbacks = []

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "fontTools" in record.getMessage():
                fallbacks.append(record)

    logging.getLogger("weasyprint").addHandler(Counter())
    found = _render_both(url, Path(folder), int(count), 1)
    print(json.dumps(found | {"fallbacks": len(fallbacks)}))


def without_subsetting(url: str, folder: Path) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.close_bench",
            "without-subsetting",
            url,
            str(folder),
            str(WITHOUT_SUBSETTING),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"render without subsetting failed: {done.stderr[-2000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["fallbacks"] > 0, "WeasyPrint did not fall back to fontTools"
    return found


def certificate_rows(url: str, folder: Path) -> list[dict]:
    fast = _render_both(url, folder / "rates", None, CERTIFICATE_REPEATS)
    slow = without_subsetting(url, folder / "rates-without-subsetting")
    rate = 1 / fast["portal"]
    ratio = fast["portal"] / fast["bare"]
    print(
        f"  certificates: {rate:.1f}/s ({fast['portal'] * 1000:.0f} ms each, HTML and QR "
        f"{fast['html'] * 1000:.1f} ms), bare {1 / fast['bare']:.1f}/s; without subsetting "
        f"{slow['portal']:.2f} s each, bare {slow['bare']:.2f} s",
        flush=True,
    )
    return [
        {
            "name": f"Certificates per second, {fast['count']} certificates of the close, "
            "one process (one core)",
            "measure": f"{rate:.1f} per second, {fast['portal'] * 1000:.0f} ms each (of which "
            f"HTML and QR code {fast['html'] * 1000:.1f} ms), {fast['bytes'] // 1024} KB PDF; "
            f"median of {CERTIFICATE_REPEATS} rounds",
            "baseline": f"bare WeasyPrint render of the same HTML, shared FontConfiguration: "
            f"{1 / fast['bare']:.1f} per second, {fast['bare'] * 1000:.0f} ms each",
            "ratio": ratio,
            "goal": f"at least {RATE_GOAL:.0f} per second per core, at most {RATIO_GOAL}× the "
            "bare render",
            "met": rate >= RATE_GOAL and ratio <= RATIO_GOAL,
        },
        {
            "name": "The same without HarfBuzz's subsetting library (WeasyPrint falls back to "
            f"fontTools), {slow['count']} certificates",
            "measure": f"{1 / slow['portal']:.2f} per second, {slow['portal']:.2f} s each: "
            f"{slow['portal'] / fast['portal']:.0f} times slower than with libharfbuzz-subset0",
            "baseline": f"bare WeasyPrint render without it: {slow['bare']:.2f} s each",
            "ratio": slow["portal"] / slow["bare"],
            "goal": "why set-up installs libharfbuzz-subset0",
            "met": None,
        },
    ]


# --- the run ----------------------------------------------------------------------------------


def _pg_url() -> str | None:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url else None


def run() -> list[dict]:
    agents = int(os.environ.get("BENCH_AGENTS", "1000"))
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-close-"))
    interactions = folder / "interactions.csv"
    started = time.perf_counter()
    rows = generate(interactions, agents)
    print(f"Close bench: {rows:,} interactions generated in {time.perf_counter() - started:.0f} s")
    results = []
    sqlite_url = f"sqlite:///{folder / 'portal.db'}"
    prepare(sqlite_url, folder, interactions, agents)
    closed = close_runs(sqlite_url, "sqlite", folder)
    results.append(close_row("SQLite", agents, rows, closed, provisional_seconds(sqlite_url)))
    results += certificate_rows(closed["url"], folder)
    pg_url = _pg_url()
    if pg_url:
        import psycopg

        name = "portal_bench_close"
        with psycopg.connect(_pg_admin(pg_url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        url = pg_url.rsplit("/", 1)[0] + "/" + name
        prepare(url, folder, interactions, agents)
        closed = close_runs(url, "postgresql", folder)
        results.append(close_row("PostgreSQL", agents, rows, closed, provisional_seconds(url)))
        with psycopg.connect(_pg_admin(pg_url), autocommit=True) as conn:
            for database in (name, f"{name}_run"):
                conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    shutil.rmtree(folder)
    return results


def section(results: list[dict]) -> list[str]:
    """The lines of this benchmark's section of docs/BENCHMARKS.md."""
    import platform

    lines = [
        f"Measured by `python -m bench close` (part of `make bench`) on {platform.machine()} "
        f"with {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. The month is "
        "metrics_bench's generated November plus surveys of one answered contact in ten and QA "
        "evaluations of one in a hundred; three positions with their seeded plans, targets set "
        "from the month's spread; October closed before it (a synthetic snapshot) so that "
        "进步标兵 has a previous period. Each close runs on a fresh copy of the same database "
        "and includes loading the fonts, as in a scheduler that has not rendered a PDF yet.",
        "",
        *results_table(results),
    ]
    return lines + ["", *NOTES]


NOTES = (
    "- The close's figure runs `close_period` on the whole: the claim, freezing every plan's "
    "results as a new results version, nominating by the rules of scoring.md §7, rendering "
    "each certificate (one commit each), the audit entry and the admins' notifications.",
    "- A WeasyPrint render uses one core: the certificates' rate is per core.",
    "- Profiled on 2026-11-23 (pyinstrument), a certificate's QR code drawn as qrcode's SVG "
    "path (a square per module) took a third of the render in WeasyPrint's Python SVG path "
    "code; it is now one stroked line per run of dark modules in a row (the same modules, "
    "compared pixel by pixel): 52 ms → 38 ms per bare render, medians of 40 alternating "
    "renders; the first run of this benchmark, under load, had 98 ms and 10 per second.",
    "- Without libharfbuzz-subset0 the subprocess hides it from WeasyPrint "
    "(`weasyprint.text.ffi.harfbuzz_subset = None`) and checks that WeasyPrint warned it used "
    "fontTools instead. On a machine without the library the portal logs a warning at start "
    "and the admin's scheduled jobs page shows it.",
)


if __name__ == "__main__" and sys.argv[1:2] == ["without-subsetting"]:
    _without_subsetting_main(*sys.argv[2:5])
