"""The permission matrix: every route, the roles allowed, checked over HTTP.

Adding a route without adding it here fails `test_every_route_is_in_the_matrix`.
"""

from __future__ import annotations

import pytest
from flask import Blueprint

from portal import create_app
from portal.accounts.models import Role
from portal.api.views import API_ACCESS
from portal.web.auth import PUBLIC, endpoint_access
from tests.conftest import csrf_token, login

A, TL, QA, QL, AD = Role.AGENT, Role.TEAM_LEAD, Role.QA, Role.QA_LEAD, Role.ADMIN
EVERYONE = frozenset(Role)
ADMIN = frozenset({AD})
API = API_ACCESS

# endpoint -> roles allowed (PUBLIC: no login needed)
MATRIX: dict[str, frozenset[Role] | str] = {
    "static": PUBLIC,
    "system.healthz": PUBLIC,
    "accounts.login": PUBLIC,
    "accounts.language": PUBLIC,
    "home.index": EVERYONE,
    "accounts.logout": EVERYONE,
    "accounts.password": EVERYONE,
    "accounts.user_detail": EVERYONE,  # object rule: self, own team's lead, admin
    "accounts.team_detail": frozenset({TL, AD}),  # object rule: the team's leads, admin
    "accounts.user_list": ADMIN,
    "accounts.user_create": ADMIN,
    "accounts.user_edit": ADMIN,
    "accounts.user_set_active": ADMIN,
    "accounts.user_reset_password": ADMIN,
    "accounts.team_list": ADMIN,
    "accounts.team_edit": ADMIN,
    "accounts.position_list": ADMIN,
    "accounts.position_edit": ADMIN,
    "audit.audit_list": ADMIN,
    "system.job_list": ADMIN,
    "system.settings_edit": ADMIN,
    "leaderboards.board": EVERYONE,  # shows what the viewer may see of the period
    "leaderboards.awards_wall": EVERYONE,  # the PDF link only for holder, their lead, admins
    "metrics.my_metrics": EVERYONE,
    "metrics.agent_metrics": EVERYONE,  # object rule: as accounts.user_detail
    "metrics.team_metrics": frozenset({TL, AD}),  # object rule: the team's leads, admin
    "metrics.center_metrics": ADMIN,
    "scoring.my_score": EVERYONE,
    "scoring.agent_score": EVERYONE,  # object rule: self, own team's lead, admin
    "scoring.explain": EVERYONE,  # object rule: as scoring.agent_score
    "scoring.simulate": EVERYONE,  # object rule: as scoring.agent_score
    "scoring.heatmap": frozenset({TL, AD}),  # object rule: the team's leads, admin
    "scoring.results_download": frozenset({TL, AD}),  # rows: a lead's teams; admins all
    "plans.plan_list": ADMIN,
    "notifications.bell": EVERYONE,
    "notifications.notification_list": EVERYONE,
    "notifications.notification_open": EVERYONE,  # object rule: one's own only (404)
    "notifications.notification_read_all": EVERYONE,
    "alerts.rule_list": ADMIN,
    "periods.period_list": ADMIN,
    "periods.period_revise": ADMIN,
    "periods.period_close": ADMIN,
    "period_reports.report": ADMIN,  # a closed period's (404 otherwise): tests/test_period_report
    "period_reports.report_pdf": ADMIN,  # a file, or a page waiting for the scheduler's render
    "period_reports.report_pdf_progress": ADMIN,
    "period_reports.report_pdf_retry": ADMIN,
    "period_reports.results_file": ADMIN,
    "periods.period_progress": ADMIN,
    "periods.period_publish": ADMIN,
    "awards.certificate_pdf": EVERYONE,  # holder (published), their lead, admins: per object
    "awards.verify": PUBLIC,
    "awards.certificates_zip": ADMIN,
    "awards.award_admin": ADMIN,
    "awards.award_decide": ADMIN,
    "awards.award_revoke": ADMIN,
    "awards.award_types": ADMIN,
    "awards.award_type_create": ADMIN,
    "awards.award_type_update": ADMIN,
    "awards.nominate_form": frozenset({TL, AD}),
    "awards.nominate": frozenset({TL, AD}),
    "qa.evaluation_list": EVERYONE,  # lists what the viewer may see
    "qa.evaluation_detail": EVERYONE,  # object rule: QA staff, admins, the agent and lead
    "qa.evaluation_release": frozenset({QA, QL}),
    "qa.appeal_submit": EVERYONE,  # object rule: the interaction's agent only
    "qa.score_find": frozenset({QA, QL}),
    "qa.score_form": frozenset({QA, QL}),
    "qa.score_save": frozenset({QA, QL}),
    "qa.appeal_detail": EVERYONE,  # object rule: the agent, their lead, QA leads, evaluator
    "qa.appeal_review": frozenset({QL, AD}),  # object rule: never the evaluator
    "qa.appeal_decide": frozenset({QL, AD}),  # object rule: never the evaluator
    "qa.appeal_withdraw": EVERYONE,  # object rule: the agent who filed it
    "qa.appeal_dashboard": frozenset({QL, AD}),
    "qa.rubric_list": frozenset({QL, AD}),
    "qa.rubric_create": frozenset({QL, AD}),
    "qa.rubric_edit": frozenset({QL, AD}),
    "alerts.rule_create": ADMIN,
    "alerts.rule_set_active": ADMIN,
    "alerts.plan_list": EVERYONE,  # lists what the viewer may see
    "alerts.plan_detail": EVERYONE,  # object rule: the agent, their lead, admin
    "alerts.plan_note": EVERYONE,  # object rule: the agent's lead, admin
    "alerts.plan_close": EVERYONE,  # object rule: the agent's lead, admin
    "plans.plan_create": ADMIN,
    "plans.plan_detail": ADMIN,
    "plans.plan_edit": ADMIN,
    "plans.plan_check": ADMIN,
    "plans.plan_save": ADMIN,
    "api_tokens.token_list": ADMIN,
    "imports.import_list": ADMIN,
    "imports.import_preview": ADMIN,
    "imports.import_commit": ADMIN,
    "imports.import_detail": ADMIN,
    "imports.import_task": ADMIN,
    "api_tokens.token_revoke": ADMIN,
    "api.openapi": PUBLIC,
    "api.post_interactions": API,  # bearer token, never a login (tests/test_api.py)
    "api.post_surveys": API,
    "api.period_list": API,
    "api.period_results": API,  # published results only (tests/test_period_results.py)
}


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - MATRIX.keys() == set(), "routes missing from the permission matrix"
    assert MATRIX.keys() - endpoints == set(), "matrix lists routes that no longer exist"


def test_every_view_declares_its_access(app):
    with app.test_request_context():
        for endpoint, expected in MATRIX.items():
            declared = endpoint_access(endpoint)
            assert declared is not None, f"{endpoint} declares no access rule"
            assert (declared == PUBLIC) == (expected == PUBLIC), endpoint
            assert (declared == API) == (expected == API), endpoint


def test_a_view_without_declared_access_is_refused(app, client, make_user):
    """A route someone forgets to protect fails closed."""
    bp = Blueprint("forgotten", __name__)
    bp.add_url_rule("/forgotten", "forgotten", lambda: "secret")
    fresh = create_app({**app.config})
    fresh.register_blueprint(bp)
    fresh_client = fresh.test_client()
    make_user({AD}, agent_no="boss")
    login(fresh_client, "boss")
    response = fresh_client.get("/forgotten")
    assert response.status_code == 403
    assert b"secret" not in response.data


@pytest.fixture
def world(make_user, make_team):
    """One user per role; the lead leads the team of the agent."""
    lead = make_user({TL}, agent_no="lead")
    team = make_team("一组", leads=[lead])
    users = {
        A: make_user({A}, agent_no="agent", team=team),
        TL: lead,
        QA: make_user({QA}, agent_no="qa"),
        QL: make_user({QL}, agent_no="qalead"),
        AD: make_user({AD}, agent_no="admin"),
    }
    return users, team


def _url(endpoint: str, me, team) -> str | None:
    """A concrete URL for an endpoint, pointing at objects the requester may see."""
    return {
        "home.index": "/",
        "accounts.login": "/login",
        "accounts.password": "/account/password",
        "accounts.user_detail": f"/users/{me.id}",
        "accounts.team_detail": f"/teams/{team.id}",
        "accounts.user_list": "/users",
        "accounts.user_create": "/users/new",
        "accounts.user_edit": f"/users/{me.id}/edit",
        "accounts.team_list": "/teams",
        "accounts.team_edit": f"/teams/{team.id}/edit",
        "accounts.position_list": "/positions",
        "accounts.position_edit": "/positions/new",
        "audit.audit_list": "/admin/audit",
        "system.job_list": "/admin/jobs",
        "system.settings_edit": "/admin/settings",
        "leaderboards.board": "/leaderboards",
        "leaderboards.awards_wall": "/awards/wall",
        "system.healthz": "/healthz",
        "metrics.agent_metrics": f"/metrics/agents/{me.id}",
        "metrics.team_metrics": f"/metrics/teams/{team.id}",
        "metrics.center_metrics": "/metrics/center",
        "scoring.agent_score": f"/scores/agents/{me.id}",
        "scoring.explain": f"/scores/agents/{me.id}/explain",
        "scoring.simulate": f"/scores/agents/{me.id}/simulate",
        "scoring.heatmap": f"/scores/teams/{team.id}/heatmap",
        "plans.plan_list": "/plans",
        "scoring.results_download": "/scores/export?period=2026-11&format=csv",
        "notifications.bell": "/notifications/bell",
        "notifications.notification_list": "/notifications",
        "alerts.rule_list": "/alerts/rules",
        "qa.evaluation_list": "/qa/evaluations",
        "periods.period_list": "/admin/periods",
        "awards.award_admin": "/admin/awards",
        "awards.award_types": "/admin/award-types",
        "awards.nominate_form": "/awards/nominate",
        "qa.score_find": "/qa/score",
        "qa.appeal_dashboard": "/qa/appeals",
        "qa.rubric_list": "/qa/rubrics",
        "alerts.plan_list": "/improvement-plans",
        "api_tokens.token_list": "/admin/api-tokens",
        "imports.import_list": "/imports",
        "api.openapi": "/api/v1/openapi.json",
    }.get(endpoint)


GET_ENDPOINTS = [e for e in MATRIX if e != "static" and MATRIX[e] != API]
POST_ONLY = {
    "accounts.logout": "/logout",
    "accounts.language": "/account/language",
    "accounts.user_set_active": "/users/{other}/active",
    "accounts.user_reset_password": "/users/{other}/reset-password",
    "api_tokens.token_revoke": "/admin/api-tokens/1/revoke",
    "imports.import_preview": "/imports/preview",
    "imports.import_commit": "/imports/commit",
    "plans.plan_create": "/plans/new/1",
    "plans.plan_check": "/plans/1/check",
    "plans.plan_save": "/plans/1/edit",
    "alerts.rule_create": "/alerts/rules",
    "qa.evaluation_release": "/qa/evaluations/1/release",
    "periods.period_revise": "/admin/periods/1/revise",
    "periods.period_close": "/admin/periods/1/close",
    "periods.period_publish": "/admin/periods/1/publish",
    "period_reports.report_pdf_retry": "/admin/periods/2026-11/report-pdf/retry",
    "awards.award_decide": "/admin/awards/1/decide",
    "awards.award_revoke": "/admin/awards/1/revoke",
    "awards.award_type_create": "/admin/award-types",
    "awards.award_type_update": "/admin/award-types/1",
    "awards.nominate": "/awards/nominate",
    "qa.score_save": "/qa/score/1",
    "qa.appeal_review": "/qa/appeals/1/review",
    "qa.appeal_decide": "/qa/appeals/1/decide",
    "qa.rubric_create": "/qa/rubrics/new/1",
    "alerts.rule_set_active": "/alerts/rules/1/active",
}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_get_routes_answer_each_role_as_the_matrix_says(app, world, role):
    users, team = world
    client = app.test_client()
    me = users[role]
    login(client, me.agent_no)
    for endpoint in GET_ENDPOINTS:
        url = _url(endpoint, me, team)
        if url is None:
            continue
        response = client.get(url)
        allowed = MATRIX[endpoint] == PUBLIC or role in MATRIX[endpoint]
        if endpoint == "accounts.login":
            assert response.status_code == 302  # logged in: sent home
        elif allowed:
            assert response.status_code == 200, (endpoint, role, response.status_code)
        else:
            assert response.status_code == 403, (endpoint, role, response.status_code)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_post_only_routes_refuse_roles_outside_the_matrix(app, world, role):
    users, team = world
    client = app.test_client()
    login(client, users[role].agent_no)
    other = users[A] if role != A else users[QA]
    for endpoint, template in POST_ONLY.items():
        allowed = MATRIX[endpoint] == PUBLIC or role in MATRIX[endpoint]
        if allowed:
            continue
        response = client.post(
            template.format(other=other.id), data={"csrf_token": csrf_token(client)}
        )
        assert response.status_code == 403, (endpoint, role)


def test_anonymous_visitors_are_sent_to_login(app, world):
    users, team = world
    client = app.test_client()
    for endpoint in GET_ENDPOINTS:
        if MATRIX[endpoint] == PUBLIC:
            continue
        url = _url(endpoint, users[AD], team)
        if url is None:
            continue
        response = client.get(url)
        assert response.status_code == 302, endpoint
        assert "/login" in response.headers["Location"], endpoint
