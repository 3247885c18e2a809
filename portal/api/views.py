"""The JSON API (interfaces.md): bearer tokens, imports, periods and their published results,
and its OpenAPI description."""

from __future__ import annotations

import hashlib
from functools import wraps

from flask import Blueprint, current_app, g, request
from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from portal.api import services
from portal.api.models import ApiToken
from portal.db import SQLITE_BUSY_TIMEOUT_MS, utcnow
from portal.extensions import csrf, db
from portal.metrics.ingest import json_table, run_import
from portal.metrics.messages import shown
from portal.periods.models import PeriodRow
from portal.periods.results import export_rows
from portal.periods.services import state
from portal.web.auth import public

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

MAX_ROWS = 10_000
API_ACCESS = "api-token"
# SQLite: how long noting a token's use waits for the write lock (an import may hold it for
# minutes; the request then goes on, and a later one notes the use).
LAST_USE_WAIT_MS = 500


def token_required(view):
    """Bearer-token access; answers 401 JSON without a live token."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        token = services.authenticate(request.headers.get("Authorization"))
        if token is None:
            return {"error": "a valid API token is required: Authorization: Bearer <token>"}, 401
        _record_use(token)
        g.api_token = token
        return view(*args, **kwargs)

    wrapper.access = API_ACCESS
    return wrapper


def _record_use(token: ApiToken) -> None:
    """Commit the token's last use before the request's own work: a refused import rolls its
    transaction back, and reading requests never commit."""
    now = utcnow()
    if not services.use_is_due(token, now):
        return
    token_id = token.id
    db.session.commit()  # end the read: on SQLite the update then takes the write lock first
    connection = db.session.connection()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {LAST_USE_WAIT_MS}")
    try:
        services.record_use(token_id, now)
        recorded = True
    except OperationalError:  # SQLite: an import holds the write lock
        recorded = False
    finally:
        if sqlite:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    if recorded:
        db.session.commit()
    else:
        db.session.rollback()


def _import(kind: str):
    rows = request.get_json(silent=True)
    if not isinstance(rows, list):
        return {"error": "the body must be a JSON list of rows"}, 400
    if len(rows) > MAX_ROWS:
        return {"error": f"at most {MAX_ROWS} rows a request; got {len(rows)}"}, 413
    if not rows:
        return {"error": "the list is empty"}, 400
    checksum = hashlib.sha256(request.get_data()).hexdigest()
    with force_locale("en"):  # the API answers in English; the record keeps message ids
        record = run_import(kind, json_table(rows, checksum), filename="", door="api", actor=None)
        rejected = [{"row": n, "reason": shown(r)} for n, r in record.rejections or []]
        error = shown(record.message)
    record.actor_label = f"API token {g.api_token.name}"
    db.session.commit()
    body = {
        "import_id": record.id,
        "status": record.status,
        "rows": record.rows_read,
        "inserted": record.inserted,
        "updated": record.updated,
        "unchanged": record.unchanged,
        "rejected": rejected,
    }
    if record.status != "committed":
        body["error"] = error
        return body, 422
    return body, 200


@bp.post("/interactions")
@token_required
def post_interactions():
    return _import("interactions")


@bp.post("/surveys")
@token_required
def post_surveys():
    return _import("surveys")


def _time(moment):
    return moment.isoformat() if moment is not None else None


def _period(row: PeriodRow, now) -> dict:
    return {
        "key": row.key,
        "kind": row.kind,
        "first_day": row.first_day.isoformat(),
        "last_day": row.last_day.isoformat(),
        "state": state(row, now),
        "close_at": _time(row.close_at),
        "closed_at": _time(row.closed_at),
        "published_at": _time(row.published_at),
        "results_version": row.results_version or None,
        "published_version": row.published_version,
    }


@bp.get("/periods")
@token_required
def period_list():
    """Every period, newest first, with its state and results versions."""
    now = utcnow()
    rows = db.session.scalars(
        select(PeriodRow).order_by(PeriodRow.first_day.desc(), PeriodRow.kind)
    ).all()
    return [_period(row, now) for row in rows]


@bp.get("/periods/<key>/results")
@token_required
def period_results(key: str):
    """The published results version of a period, in the layout of `flask results export`;
    404 while the period is unknown or its results are not published."""
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
    if row is None:
        return {"error": f"there is no period {key!r}"}, 404
    if row.closed_at is None or row.published_version is None:
        return {"error": f"the results of {key} are not published"}, 404
    return export_rows(row, row.published_version)


@bp.get("/openapi.json")
@public
def openapi():
    from portal.api.openapi import document

    return document(current_app.config["PORTAL_BASE_URL"])
