"""The JSON API: bearer tokens an admin manages, imports with the file rules, OpenAPI."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from portal.accounts.models import Role
from portal.api.models import ApiToken
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.metrics.models import ImportRecord, Interaction, Survey
from tests.conftest import login, post

CALL = {
    "interaction_id": "api-1",
    "queue": "Q1",
    "agent_no": "A",
    "offered_at": "2026-11-03T09:00:00+08:00",
    "answered_at": "2026-11-03T09:00:10+08:00",
    "ended_at": "2026-11-03T09:05:10+08:00",
    "wrap_seconds": 30,
    "customer_key": "c1",
    "transferred": 0,
    "resolved": None,
}


@pytest.fixture
def token(app, make_user):
    make_user({Role.AGENT}, agent_no="A")
    make_user({Role.ADMIN}, agent_no="admin")
    admin = app.test_client()
    login(admin, "admin")
    page = post(admin, "/admin/api-tokens", {"name": "ACD 话单系统"}).get_data(as_text=True)
    plain = page.split('id="api-new-token">')[1].split("<")[0]
    return {"Authorization": f"Bearer {plain}"}, admin


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


def test_token_is_stored_hashed_shown_once_and_audited(app, token):
    headers, admin = token
    plain = headers["Authorization"][7:]
    with app.app_context():
        stored = db.session.scalar(select(ApiToken))
        assert stored.token_hash != plain and plain not in stored.token_hash
        assert stored.name == "ACD 话单系统" and stored.last_used_at is None
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "api_token.create"))
    assert plain not in admin.get("/admin/api-tokens").get_data(as_text=True)


def test_interactions_are_imported_idempotently_and_the_use_is_recorded(app, client, token):
    headers, admin = token
    first = client.post("/api/v1/interactions", json=[CALL], headers=headers)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["inserted"] == 1
    again = client.post("/api/v1/interactions", json=[CALL], headers=headers)
    assert again.get_json()["unchanged"] == 1 and _count(app, Interaction) == 1
    with app.app_context():
        assert db.session.scalar(select(ApiToken.last_used_at)) is not None
        record = db.session.scalars(select(ImportRecord).order_by(ImportRecord.id)).first()
        assert record.door == "api" and record.actor_label == "API token ACD 话单系统"
    assert "从未" not in admin.get("/admin/api-tokens").get_data(as_text=True)


def test_one_bad_row_refuses_the_whole_request(app, client, token):
    headers, _ = token
    bad = {**CALL, "interaction_id": "api-2", "agent_no": "NOBODY"}
    response = client.post("/api/v1/interactions", json=[CALL, bad], headers=headers)
    assert response.status_code == 422
    body = response.get_json()
    assert body["rejected"] == [
        {"row": 2, "reason": "agent_no 'NOBODY' is not a known employee number"}
    ]
    assert _count(app, Interaction) == 0


def test_the_rows_refused_are_listed_in_row_order(app, client, token):
    headers, _ = token
    bad = {**CALL, "interaction_id": "api-3", "agent_no": "NOBODY"}
    response = client.post("/api/v1/interactions", json=[CALL, CALL, bad], headers=headers)
    assert response.status_code == 422
    assert response.get_json()["rejected"] == [
        {"row": 2, "reason": "api-1 already appears in row 1 of this file"},
        {"row": 3, "reason": "agent_no 'NOBODY' is not a known employee number"},
    ]


def test_surveys_need_their_interaction(app, client, token):
    headers, _ = token
    client.post("/api/v1/interactions", json=[CALL], headers=headers)
    survey = {
        "survey_id": "s1",
        "interaction_id": "api-1",
        "csat": 5,
        "nps": 9,
        "submitted_at": "2026-11-03T12:00:00+08:00",
    }
    assert client.post("/api/v1/surveys", json=[survey], headers=headers).status_code == 200
    orphan = {**survey, "survey_id": "s2", "interaction_id": "nope"}
    assert client.post("/api/v1/surveys", json=[orphan], headers=headers).status_code == 422
    assert _count(app, Survey) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [({"not": "a list"}, 400), ([], 400), ([CALL] * 10_001, 413), (["text"], 422)],
)
def test_malformed_bodies_are_refused(app, client, token, body, status):
    headers, _ = token
    assert client.post("/api/v1/interactions", json=body, headers=headers).status_code == status
    assert _count(app, Interaction) == 0


def test_missing_wrong_and_revoked_tokens_are_refused(app, client, token):
    headers, admin = token
    assert client.post("/api/v1/interactions", json=[CALL]).status_code == 401
    wrong = {"Authorization": "Bearer pt_wrong"}
    assert client.post("/api/v1/interactions", json=[CALL], headers=wrong).status_code == 401
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    assert post(admin, f"/admin/api-tokens/{token_id}/revoke").status_code == 302
    refused = client.post("/api/v1/interactions", json=[CALL], headers=headers)
    assert refused.status_code == 401 and _count(app, Interaction) == 0


def test_api_needs_no_csrf_but_a_session_cookie_is_not_enough(app, token):
    _, admin = token  # logged in as admin, with cookies
    assert admin.post("/api/v1/interactions", json=[CALL]).status_code == 401


def test_openapi_describes_the_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/interactions", "/surveys"} <= set(doc["paths"])
    schema = doc["paths"]["/interactions"]["post"]["requestBody"]["content"]["application/json"]
    assert schema["schema"]["maxItems"] == 10000
    assert "interaction_id" in schema["schema"]["items"]["required"]


def test_nameless_token_is_refused(app, token):
    _, admin = token
    response = post(admin, "/admin/api-tokens", {"name": " "})
    assert response.status_code == 422 and "请为令牌命名" in response.get_data(as_text=True)


def test_lists_and_objects_are_refused_as_bad_values_naming_row_and_column(app, client, token):
    headers, _ = token
    rows = [
        {**CALL, "interaction_id": ["x"]},
        {**CALL, "interaction_id": "api-2", "queue": {"a": 1}},
        {**CALL, "interaction_id": "api-3"},
    ]
    response = client.post("/api/v1/interactions", json=rows, headers=headers)
    assert response.status_code == 422
    rejected = response.get_json()["rejected"]
    assert [r["row"] for r in rejected] == [1, 2]
    assert "interaction_id" in rejected[0]["reason"] and "queue" in rejected[1]["reason"]
    assert _count(app, Interaction) == 0
    survey = {"survey_id": "s1", "interaction_id": "api-1", "csat": [5]}
    survey["submitted_at"] = "2026-11-03T12:00:00+08:00"
    refused = client.post("/api/v1/surveys", json=[survey], headers=headers)
    assert refused.status_code == 422 and "csat" in refused.get_json()["rejected"][0]["reason"]


def test_numbers_and_booleans_are_still_taken_as_their_text(app, client, token):
    headers, _ = token
    row = {**CALL, "wrap_seconds": 30.5, "hold_seconds": 0, "transferred": True, "resolved": False}
    response = client.post("/api/v1/interactions", json=[row], headers=headers)
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        stored = db.session.scalar(select(Interaction))
        assert stored.transferred is True and stored.resolved is False


def test_an_item_that_is_not_an_object_is_named_before_the_columns(client, token):
    headers, _ = token
    response = client.post("/api/v1/interactions", json=[1, 2], headers=headers)
    assert response.status_code == 422
    assert response.get_json()["error"] == "Item 1 is not an object with the columns as keys."
    mixed = client.post("/api/v1/interactions", json=[CALL, "text"], headers=headers)
    assert mixed.get_json()["error"] == "Item 2 is not an object with the columns as keys."


def test_the_api_refusal_offers_no_valid_rows_only_import(client, token):
    headers, _ = token
    bad = {**CALL, "agent_no": "NOBODY"}
    error = client.post("/api/v1/interactions", json=[bad], headers=headers).get_json()["error"]
    assert "valid rows" not in error
    assert error.startswith("1 row(s) rejected, nothing imported.")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_authorization_scheme_is_case_insensitive(client, token, scheme):
    headers, _ = token
    plain = headers["Authorization"].split(" ", 1)[1]
    response = client.get("/api/v1/periods", headers={"Authorization": f"{scheme} {plain}"})
    assert response.status_code == 200


def _last_use(app):
    with app.app_context():
        return db.session.scalar(select(ApiToken.last_used_at))


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("post", "/api/v1/interactions", [{**CALL, "agent_no": "NOBODY"}], 422),
        ("post", "/api/v1/interactions", [1], 422),
        ("get", "/api/v1/periods", None, 200),
        ("get", "/api/v1/periods/2026-11/results", None, 404),
    ],
)
def test_every_authenticated_request_records_the_last_use(
    app, client, token, method, url, body, status
):
    headers, admin = token
    response = getattr(client, method)(url, json=body, headers=headers)
    assert response.status_code == status
    assert _last_use(app) is not None
    assert "从未" not in admin.get("/admin/api-tokens").get_data(as_text=True)


def test_the_last_use_is_written_at_most_once_a_minute(app, client, token):
    from datetime import timedelta

    from portal.db import utcnow

    headers, _ = token
    recent = utcnow() - timedelta(seconds=30)
    with app.app_context():
        db.session.execute(update(ApiToken).values(last_used_at=recent))
        db.session.commit()
    client.get("/api/v1/periods", headers=headers)
    assert _last_use(app) == recent
    old = utcnow() - timedelta(minutes=2)
    with app.app_context():
        db.session.execute(update(ApiToken).values(last_used_at=old))
        db.session.commit()
    client.get("/api/v1/periods", headers=headers)
    assert _last_use(app) > old + timedelta(minutes=1)


def test_a_reading_request_does_not_wait_for_an_imports_write_lock(app, client, token):
    """SQLite: an import holds the write lock for minutes; the last use waits for it briefly."""
    import sqlite3
    import time

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite:///"):
        pytest.skip("SQLite's write lock")
    headers, _ = token
    importing = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    importing.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        response = client.get("/api/v1/periods", headers=headers)
        assert response.status_code == 200 and time.monotonic() - started < 3
    finally:
        importing.execute("ROLLBACK")
        importing.close()
    assert _last_use(app) is None  # noted by the next request
    client.get("/api/v1/periods", headers=headers)
    assert _last_use(app) is not None
