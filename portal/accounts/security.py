"""Passwords (argon2id), revocable login sessions and database-backed login throttling."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import lazyload

from portal.accounts.models import LoginFailure, User, UserRole, UserSession
from portal.extensions import db

# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when the account does not exist, so timing does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

MIN_PASSWORD_LENGTH = 8


TEMPORARY_PREFIX = "sha256$"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def hash_temporary(password: str) -> str:
    """Hash a portal-generated one-time password.

    These are random with about 70 bits of entropy, so a fast hash is as safe as argon2 for
    them, and importing thousands of users does not spend minutes hashing.
    """
    return TEMPORARY_PREFIX + hashlib.sha256(password.encode()).hexdigest()


def verify_password(user: User | None, password: str) -> bool:
    """Check a password in constant-ish time, whether or not the user has one."""
    stored = user.password_hash if user is not None and user.password_hash else None
    if stored and stored.startswith(TEMPORARY_PREFIX):
        # One-time passwords only work until the user has chosen their own.
        return user.must_change_password and hmac.compare_digest(stored, hash_temporary(password))
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(user: User) -> bool:
    stored = user.password_hash or ""
    return stored.startswith("$argon2") and _hasher.check_needs_rehash(stored)


PASSWORD_PROBLEMS = {
    "too_short": _l("Use at least %(n)s characters.", n=MIN_PASSWORD_LENGTH),
    "letters_and_digits": _l("Use both letters and digits."),
}


def password_problem(password: str) -> str | None:
    """Why the password is too weak (a key of PASSWORD_PROBLEMS), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if password.isdigit() or password.isalpha():
        return "letters_and_digits"
    return None


def temporary_password() -> str:
    """A readable one-time password (no 0/O/1/l confusion) for first login or a reset."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(12))
        if password_problem(pw) is None:
            return pw


# --- sessions -------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    user: User,
    *,
    remember: bool,
    now: datetime,
    max_hours: int,
    remember_days: int,
    ip: str = "",
    user_agent: str = "",
) -> str:
    """Create a login session row and return its token (kept only in the user's cookie)."""
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=remember_days) if remember else timedelta(hours=max_hours)
    db.session.add(
        UserSession(
            user_id=user.id,
            token_hash=_token_hash(token),
            remember=remember,
            created_at=now,
            expires_at=now + lifetime,
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    db.session.flush()
    user.session_token = token
    return token


def session_user_query(**also) -> Select:
    """The statement that finds the active user of a live session token, run by every
    logged-in request: the token's hash and the time are bound when it runs (`token_hash`,
    `now`), the roles come as one column rather than a second query, and `also` names further
    columns (correlated with User) that a caller wants read with it."""
    roles = (
        select(func.aggregate_strings(UserRole.role, ","))
        .where(UserRole.user_id == User.id)
        .scalar_subquery()
    )
    return (
        select(User, roles.label("roles"), *(column.label(name) for name, column in also.items()))
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            UserSession.token_hash == bindparam("token_hash"),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > bindparam("now"),
            User.active.is_(True),
        )
        .options(lazyload(User.role_rows))
    )


@functools.cache
def _session_user_query() -> Select:
    return session_user_query()


def load_session_user(token: str, now: datetime, query: Select | None = None) -> User | None:
    """The active user of a live session token, or None if it is unknown, expired or revoked.
    `query` (a `session_user_query`, built once by the caller) may read more columns: each is
    set on the user under its name."""
    row = db.session.execute(
        query if query is not None else _session_user_query(),
        {"token_hash": _token_hash(token), "now": now},
    ).first()
    if row is None:
        return None
    user, roles, *also = row
    user.set_loaded_roles(roles.split(",") if roles else ())
    for name, value in zip(row._fields[2:], also, strict=True):
        setattr(user, name, value)
    user.session_token = token
    return user


def end_session(token: str | None, now: datetime) -> None:
    if token:
        db.session.execute(
            update(UserSession)
            .where(UserSession.token_hash == _token_hash(token), UserSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def end_other_sessions(user: User, now: datetime, keep_token: str | None = None) -> int:
    """Revoke every live session of `user` except `keep_token`; returns how many ended."""
    stmt = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if keep_token:
        stmt = stmt.where(UserSession.token_hash != _token_hash(keep_token))
    return db.session.execute(stmt.values(revoked_at=now)).rowcount


def live_session_count(user: User, now: datetime) -> int:
    return db.session.scalar(
        select(func.count()).where(
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
        )
    )


# --- throttling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    max_account: int
    max_address: int
    window: timedelta


def _recent(scope: str, key: str, since: datetime) -> tuple[int, datetime | None]:
    count, oldest = db.session.execute(
        select(func.count(), func.min(LoginFailure.at)).where(
            LoginFailure.scope == scope, LoginFailure.key == key, LoginFailure.at > since
        )
    ).one()
    return count, oldest


def throttle_wait(login: str, address: str, policy: ThrottlePolicy, now: datetime) -> int:
    """Seconds until this account/address may try again; 0 when allowed.

    State lives in the database, so every web process and host sees the same counts.
    """
    since = now - policy.window
    wait = 0
    for scope, key, limit in (
        ("account", login, policy.max_account),
        ("address", address, policy.max_address),
    ):
        count, oldest = _recent(scope, key, since)
        if count >= limit and oldest is not None:
            wait = max(wait, int((oldest + policy.window - now).total_seconds()) + 1)
    return wait


def record_failure(login: str, address: str, now: datetime) -> None:
    db.session.add_all(
        [
            LoginFailure(scope="account", key=login, at=now),
            LoginFailure(scope="address", key=address, at=now),
        ]
    )
    db.session.flush()


def clear_account_failures(login: str) -> None:
    db.session.execute(
        delete(LoginFailure).where(LoginFailure.scope == "account", LoginFailure.key == login)
    )


def purge_expired(now: datetime, window: timedelta) -> tuple[int, int]:
    """Delete login failures older than the window and sessions that ended; returns counts."""
    failures = db.session.execute(
        delete(LoginFailure).where(LoginFailure.at <= now - window)
    ).rowcount
    sessions = db.session.execute(
        delete(UserSession).where(
            or_(UserSession.expires_at <= now, UserSession.revoked_at.is_not(None))
        )
    ).rowcount
    return failures, sessions
