"""Configuration, read from the environment when the app is created (never at import)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting has a value the portal cannot run with."""


def _int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}.")
    return value


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _secret_key(instance: Path) -> str:
    """Generate the secret key once into instance/ so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def load_config(instance_path: str, env: dict | None = None) -> dict:
    """Build the Flask config mapping from environment variables."""
    env = dict(os.environ if env is None else env)
    instance = Path(instance_path)

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'portal.db'}"
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # psycopg 3 is the driver we ship; accept the bare URL form too.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]

    tz_name = env.get("PORTAL_TIMEZONE") or "Asia/Shanghai"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"PORTAL_TIMEZONE {tz_name!r} is not a known time zone.") from None

    base_url = (env.get("PORTAL_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    https = base_url.startswith("https://")
    fcr_window = _int(env, "FCR_WINDOW_HOURS", 72, minimum=1)
    grace = _int(env, "CLOSE_GRACE_HOURS", 72, minimum=0)
    if grace < fcr_window:
        raise ConfigError(
            f"CLOSE_GRACE_HOURS ({grace}) must not be less than FCR_WINDOW_HOURS ({fcr_window})."
        )

    return {
        "SECRET_KEY": env.get("SECRET_KEY") or _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PORTAL_TIMEZONE": tz_name,
        "PORTAL_BASE_URL": base_url,
        "FCR_WINDOW_HOURS": fcr_window,
        "SHORT_ABANDON_SECONDS": _int(env, "SHORT_ABANDON_SECONDS", 5),
        "SERVICE_LEVEL_SECONDS": _int(env, "SERVICE_LEVEL_SECONDS", 20),
        "NEW_AGENT_DAYS": _int(env, "NEW_AGENT_DAYS", 90),
        "CLOSE_GRACE_HOURS": grace,
        "APPEAL_WINDOW_DAYS": _int(env, "APPEAL_WINDOW_DAYS", 7, minimum=1),
        "APPEAL_DECISION_WORKING_DAYS": _int(env, "APPEAL_DECISION_WORKING_DAYS", 3, minimum=1),
        "SCHEDULER_ENABLED": _bool(env, "SCHEDULER_ENABLED", True),
        "INBOX_DIR": env.get("INBOX_DIR") or str(instance / "inbox"),
        # Provisional leaderboards are scored at most this many seconds ago (0: every request).
        "LEADERBOARD_LIVE_SECONDS": _int(env, "LEADERBOARD_LIVE_SECONDS", 60),
        # Leaderboards read names, teams, who may appear and their settings at most this many
        # seconds ago (each web process keeps them; 0: every request).
        "LEADERBOARD_REREAD_SECONDS": _int(env, "LEADERBOARD_REREAD_SECONDS", 10),
        # Rendered certificate PDFs, one folder per period.
        "CERTIFICATES_DIR": env.get("CERTIFICATES_DIR") or str(instance / "certificates"),
        # Rendered period report PDFs, one folder per period (rendered again when stale).
        "REPORTS_DIR": env.get("REPORTS_DIR") or str(instance / "reports"),
        # Cookies: signed, HTTP-only, same-site; Secure whenever the portal is served over HTTPS.
        "SESSION_COOKIE_NAME": "portal_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env, "SESSION_COOKIE_SECURE", https),
        "REMEMBER_COOKIE_NAME": "portal_remember",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(env, "SESSION_COOKIE_SECURE", https),
        "REMEMBER_COOKIE_DURATION": timedelta(days=_int(env, "REMEMBER_DAYS", 30, minimum=1)),
        # Idle timeout: the signed cookie is refused server-side after this long unused.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=_int(env, "SESSION_IDLE_HOURS", 12, 1)),
        # Absolute lifetime of a (non-remembered) login, enforced by its database row.
        "SESSION_MAX_HOURS": _int(env, "SESSION_MAX_HOURS", 24, minimum=1),
        # CSRF tokens live as long as the session: a page left open over lunch still works.
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_HEADERS": ["X-CSRFToken"],
        "LOGIN_MAX_FAILURES_ACCOUNT": _int(env, "LOGIN_MAX_FAILURES_ACCOUNT", 5, minimum=1),
        "LOGIN_MAX_FAILURES_ADDRESS": _int(env, "LOGIN_MAX_FAILURES_ADDRESS", 30, minimum=1),
        "LOGIN_FAILURE_WINDOW_MINUTES": _int(env, "LOGIN_FAILURE_WINDOW_MINUTES", 15, 1),
        # Reverse proxies in front of the portal (nginx…): trust this many X-Forwarded-* hops,
        # so login throttling sees the client's address, not the proxy's.
        "PROXY_FIX_HOPS": _int(env, "PROXY_FIX_HOPS", 0),
        "MAX_CONTENT_LENGTH": _int(env, "MAX_UPLOAD_MB", 50, minimum=1) * 1024 * 1024,
        # E-mail copies of notifications: off unless SMTP_HOST is set.
        "SMTP_HOST": env.get("SMTP_HOST", ""),
        "SMTP_PORT": _int(env, "SMTP_PORT", 25, minimum=1),
        "SMTP_USER": env.get("SMTP_USER", ""),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool(env, "SMTP_STARTTLS", False),
        "SMTP_FROM": env.get("SMTP_FROM", "portal@localhost"),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": tz_name,
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "portal" / "translations"),
        "LANGUAGES": {"zh_CN": "中文", "en": "English"},
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }
