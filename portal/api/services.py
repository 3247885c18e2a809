"""Creating, checking and revoking API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from portal.accounts.models import User
from portal.api.models import ApiToken
from portal.audit.services import record
from portal.extensions import db

PREFIX = "pt_"
# A token's last use is written at most once a minute: precise enough for an admin deciding
# whether a token is still in use, without a write on every request of a busy integration.
LAST_USE_EVERY = timedelta(minutes=1)


class TokenError(Exception):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(actor: User, name: str) -> tuple[ApiToken, str]:
    """A new token; the plain text is returned once and never stored."""
    name = name.strip()
    if not name:
        raise TokenError(_l("Give the token a name, e.g. the system that will use it."))
    plain = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name[:80], token_hash=_hash(plain), prefix=plain[:10], created_by_id=actor.id
    )
    db.session.add(token)
    db.session.flush()
    record(
        actor,
        "api_token.create",
        "api_token",
        token.id,
        summary=name,
        after={"name": name, "prefix": token.prefix},
    )
    return token, plain


def revoke_token(actor: User, token: ApiToken, now: datetime) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = now
    db.session.flush()
    record(
        actor,
        "api_token.revoke",
        "api_token",
        token.id,
        summary=token.name,
        before={"revoked": False},
        after={"revoked": True},
    )


def authenticate(header: str | None) -> ApiToken | None:
    """The live token of an `Authorization: Bearer …` header (the scheme in any case, as
    RFC 7235 has it); else None."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return db.session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == _hash(credentials.strip()), ApiToken.revoked_at.is_(None)
        )
    )


def use_is_due(token: ApiToken, now: datetime) -> bool:
    """Whether the token's last use, as loaded, is older than LAST_USE_EVERY (or unknown)."""
    return token.last_used_at is None or now - token.last_used_at >= LAST_USE_EVERY


def record_use(token_id: int, now: datetime) -> bool:
    """Mark the token used at `now` unless another request did within LAST_USE_EVERY (two web
    processes at once write it once); whether it was written."""
    written = db.session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USE_EVERY),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return written.rowcount > 0
