"""The plan editor: checked at every field as the admin types, refused at the field on save,
each saved change a new version."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role
from portal.extensions import db
from portal.scoring.models import Plan, PlanVersion
from portal.scoring.plans import default_document
from tests.conftest import csrf_token, login


@pytest.fixture
def admin(app, make_user, make_position):
    make_user({Role.ADMIN}, agent_no="admin")
    position = make_position("电话客服")
    client = app.test_client()
    login(client, "admin")
    return client, position


def form_of(doc: dict) -> dict:
    """The editor's fields for a plan document, as the browser would send them."""
    form = {k: str(doc[k]) for k in ("period_kind", "min_volume", "base_bonus")}
    form |= {k: str(doc[k]) for k in ("service_star_count", "award_min_final")}
    for i, line in enumerate(doc["lines"]):
        at = f"lines-{i}-"
        form |= {at + k: str(line[k]) for k in ("metric", "category", "weight", "threshold")}
        form |= {at + "target": str(line["target"]), at + "min_sample": str(line["min_sample"])}
        form[at + "stretch"] = "" if line.get("stretch") is None else str(line["stretch"])
        if line["core"]:
            form[at + "core"] = "1"
        for k in ("threshold", "target", "stretch"):
            form[f"{at}new-{k}"] = str((line.get("new_agent") or {}).get(k) or "")
    blank = len(doc["lines"])
    form |= {f"lines-{blank}-metric": "", f"lines-{blank}-weight": ""}
    for j, s in enumerate(doc.get("scenarios", [])):
        at = f"scenarios-{j}-"
        form |= {at + "name": s["name"], at + "from": s["from"], at + "to": s["to"]}
        form |= {f"{at}w-{m}": str(w) for m, w in s["weights"].items()}
    for t, tier in enumerate(doc["tiers"]):
        form |= {
            f"tiers-{t}-from": str(tier["from"]),
            f"tiers-{t}-multiplier": str(tier["multiplier"]),
        }
    return form


def _created(app, client, position) -> int:
    response = client.post(f"/plans/new/{position.id}", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    with app.app_context():
        return db.session.scalar(select(Plan.id).where(Plan.position_id == position.id))


def _post(client, url, form):
    return client.post(url, data={**form, "csrf_token": csrf_token(client)})


def test_a_position_without_plan_gets_the_default_one_to_edit(app, admin):
    client, position = admin
    listing = client.get("/plans").get_data(True)
    assert "从默认方案创建" in listing
    plan_id = _created(app, client, position)
    page = client.get(f"/plans/{plan_id}/edit").get_data(True)
    assert 'id="plans-lines-0-weight" value="40"' in page
    assert f'hx-post="/plans/{plan_id}/check"' in page
    assert _created(app, client, position) == plan_id  # a second click creates nothing


def test_checking_as_you_type_puts_each_message_at_its_field(app, admin):
    client, position = admin
    plan_id = _created(app, client, position)
    doc = default_document("电话客服")
    doc["lines"][0]["weight"] = 39
    doc["lines"][0]["target"] = 430  # aht: lower is better, so the target must be below 420
    html = _post(client, f"/plans/{plan_id}/check", form_of(doc)).get_data(True)
    assert re.search(r'id="err-weights" hx-swap-oob="true">权重合计为 99,必须等于 100。<', html)
    assert re.search(r'id="err-lines-0-target" hx-swap-oob="true">该指标越低越好', html)
    assert re.search(r'id="err-lines-1-weight" hx-swap-oob="true"><', html)  # fine: emptied
    assert re.search(r'id="plans-weight-sum" hx-swap-oob="true">99<', html)
    fixed = default_document("电话客服")
    html = _post(client, f"/plans/{plan_id}/check", form_of(fixed)).get_data(True)
    assert re.search(r'id="err-weights" hx-swap-oob="true"><', html)
    assert "必须" not in html


def test_saving_a_broken_plan_is_refused_at_the_field_then_100_saves(app, admin):
    client, position = admin
    plan_id = _created(app, client, position)
    doc = default_document("电话客服")
    doc["lines"][0]["weight"] = 39
    refused = _post(client, f"/plans/{plan_id}/edit", form_of(doc))
    assert refused.status_code == 422
    html = refused.get_data(True)
    assert 'id="plans-refused"' in html and "权重合计为 99,必须等于 100。" in html
    assert 'id="plans-lines-0-weight" value="39"' in html  # what was typed is kept
    doc["lines"][0]["weight"], doc["lines"][1]["weight"] = 45, 25
    saved = _post(client, f"/plans/{plan_id}/edit", form_of(doc) | {"note": "旺季前调整"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("saved=2")
    detail = client.get(saved.headers["Location"]).get_data(True)
    assert 'id="plans-saved"' in detail and "旺季前调整" in detail
    with app.app_context():
        versions = db.session.scalars(select(PlanVersion).order_by(PlanVersion.number)).all()
        assert [v.number for v in versions] == [1, 2]
        assert [line["weight"] for line in versions[1].document["lines"]] == [45, 25, 15, 15]


def test_a_new_line_and_a_scenario_are_added_through_the_blank_rows(app, admin):
    client, position = admin
    plan_id = _created(app, client, position)
    doc = default_document("电话客服")
    doc["lines"][0]["weight"] = 30
    doc["lines"].append(
        {
            "metric": "nps",
            "category": "experience",
            "core": False,
            "weight": 10,
            "threshold": 10,
            "target": 30,
            "stretch": 50,
            "min_sample": 5,
        }
    )
    doc["scenarios"] = [
        {
            "name": "peak",
            "from": "2026-11-01",
            "to": "2026-11-11",
            "weights": {"aht": 50, "csat": 20, "qa_score": 10, "fcr": 10, "nps": 10},
        },
        {"name": "crisis", "from": "2026-11-10", "to": "2026-11-12", "weights": {}},
    ]
    html = _post(client, f"/plans/{plan_id}/check", form_of(doc)).get_data(True)
    assert re.search(
        r'id="err-scenarios-1-from" hx-swap-oob="true">该场景与第 1 个场景日期重叠', html
    )
    doc["scenarios"][1].update({"from": "2026-11-20", "to": "2026-11-21"})
    saved = _post(client, f"/plans/{plan_id}/edit", form_of(doc))
    assert saved.status_code == 302
    with app.app_context():
        current = db.session.get(Plan, plan_id).current.document
        assert [line["metric"] for line in current["lines"]][-1] == "nps"
        assert current["scenarios"][0]["weights"]["aht"] == 50
        assert db.session.scalar(select(func.count(PlanVersion.id))) == 2


def test_an_unknown_plan_is_404(admin):
    client, _ = admin
    assert client.get("/plans/999/edit").status_code == 404
    assert client.post("/plans/new/999", data={"csrf_token": csrf_token(client)}).status_code == 404


def test_saving_the_same_plan_says_nothing_changed(app, admin):
    client, position = admin
    plan_id = _created(app, client, position)
    same = _post(client, f"/plans/{plan_id}/edit", form_of(default_document("电话客服")))
    assert same.headers["Location"].endswith("unchanged=1")
    assert "没有改动:第 1 版继续有效" in client.get(same.headers["Location"]).get_data(True)


def test_plan_screens_are_chinese_with_no_english_left(app, admin):
    from tests.test_i18n import _english_phrases

    client, position = admin
    assert _english_phrases(client.get("/plans").get_data(True)) == []
    plan_id = _created(app, client, position)
    for url in ("/plans", f"/plans/{plan_id}", f"/plans/{plan_id}/edit"):
        assert _english_phrases(client.get(url).get_data(True)) == [], url
