"""Creating, checking and revoking API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.accounts.models import User
from portal.api.models import ApiToken
from portal.audit.services import record
from portal.extensions import db

PREFIX = "pt_"


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


def authenticate(header: str | None, now: datetime) -> ApiToken | None:
    """The live token of an `Authorization: Bearer …` header, marking its use; else None."""
    if not header or not header.startswith("Bearer "):
        return None
    token = db.session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == _hash(header[7:].strip()), ApiToken.revoked_at.is_(None)
        )
    )
    if token is not None:
        token.last_used_at = now
    return token
