"""Writing audit entries. Services call `record` in the same transaction as the change."""

from __future__ import annotations

from datetime import date, datetime

from flask import has_request_context, request

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.extensions import db


def _plain(value):
    """Make a value JSON-safe and stable for before/after snapshots."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def record(
    actor: User | None,
    action: str,
    obj_type: str = "",
    obj_id: object = "",
    *,
    summary: str = "",
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    """Add an audit entry for `action` by `actor` (None for the system)."""
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        actor_label=f"{actor.agent_no} {actor.name}" if actor is not None else "system",
        action=action,
        object_type=obj_type,
        object_id=str(obj_id or ""),
        summary=summary,
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
        ip=(request.remote_addr or "") if has_request_context() else "",
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def changes(before: dict | None, after: dict | None) -> list[tuple[str, object, object]]:
    """The keys whose values differ, for showing an entry as a diff."""
    before, after = before or {}, after or {}
    keys = sorted(set(before) | set(after))
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
