"""Fixtures: one app and schema per test session (built by the migrations), emptied after
every test. Runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import re
from datetime import date

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from portal import create_app
from portal.accounts import security
from portal.accounts.models import Position, Role, Team, User
from portal.extensions import db

PASSWORD = "secret123"
CSRF_RE = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal-test.db'}"


def _drop_everything() -> None:
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": _database_url(tmp_path_factory),
            "SERVER_NAME": None,
            "CERTIFICATES_DIR": str(tmp_path_factory.mktemp("certificates")),
            # Every test scores its own data: no provisional board kept between requests.
            "LEADERBOARD_LIVE_SECONDS": 0,
            # Nor names, teams, who may appear or settings (tests/test_leaderboards.py keeps them).
            "LEADERBOARD_REREAD_SECONDS": 0,
            "REPORTS_DIR": str(tmp_path_factory.mktemp("reports")),
        }
    )
    with app.app_context():
        _drop_everything()
        upgrade()
    yield app


@pytest.fixture(autouse=True)
def _empty_database(app):
    """Every test starts from empty tables; the schema stays."""
    yield
    with app.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                names = ", ".join(t.name for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(table.delete())


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """Build a user (committed). Usable inside or outside an app context."""
    counter = iter(range(1, 10_000))

    def make(
        roles=(Role.AGENT,),
        *,
        agent_no=None,
        name=None,
        team=None,
        position=None,
        password=PASSWORD,
        active=True,
        must_change=False,
        hire_date=None,
    ) -> User:
        with app.app_context():
            n = next(counter)
            user = User(
                agent_no=agent_no or f"u{n:04d}",
                name=name or f"用户{n}",
                email=f"{agent_no or f'u{n:04d}'}@example.com",
                active=active,
                must_change_password=must_change,
                hire_date=hire_date or date(2025, 1, 1),
                password_hash=security.hash_password(password) if password else None,
            )
            if team is not None:
                user.team_id = team if isinstance(team, int) else team.id
            if position is not None:
                user.position_id = position if isinstance(position, int) else position.id
            user.set_roles(roles)
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


@pytest.fixture
def make_team(app):
    def make(name: str, leads=()) -> Team:
        with app.app_context():
            team = Team(name=name)
            team.leads = [db.session.get(User, u.id) for u in leads]
            db.session.add(team)
            db.session.commit()
            db.session.refresh(team)
            db.session.expunge(team)
            return team

    return make


@pytest.fixture
def make_position(app):
    def make(name: str) -> Position:
        with app.app_context():
            position = Position(name=name)
            db.session.add(position)
            db.session.commit()
            db.session.refresh(position)
            db.session.expunge(position)
            return position

    return make


def csrf_token(client) -> str:
    """A valid CSRF token for this client's session, read from a page."""
    page = client.get("/login", follow_redirects=True)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, agent_no: str, password: str = PASSWORD, remember: bool = False):
    data = {"login": agent_no, "password": password, "csrf_token": csrf_token(client)}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data)


def post(client, url: str, data: dict | None = None, **kwargs):
    """POST with the session's CSRF token, as the browser would."""
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client)}, **kwargs)


def count_queries(app, client, url: str) -> int:
    """How many SQL statements answering `url` takes (list pages must not grow with length)."""
    from sqlalchemy import event

    count = []
    with app.app_context():
        listener = lambda *a, **k: count.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    return len(count)


def answered_call(source_id: str, agent_id: int | None, at, *, seconds: float = 300, queue="Q"):
    """An interaction answered at once at `at` (aware) and lasting `seconds`, for tests that
    need one stored without going through an import."""
    from zoneinfo import ZoneInfo

    from portal.metrics.models import Interaction

    return Interaction(
        source_id=source_id,
        queue=queue,
        agent_id=agent_id,
        offered_day=at.astimezone(ZoneInfo("Asia/Shanghai")).date(),
        offered_s=at.timestamp(),
        ended_s=at.timestamp() + seconds,
        wait_s=0,
        talk_s=seconds,
    )
