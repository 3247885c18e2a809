"""The JSON API: bearer tokens an admin manages, imports with the file rules, OpenAPI."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

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
