"""Plans: the checks of every rule at its field, versions with a readable audit diff, the JSON
file of interfaces.md in and out, and provisional results exported as interfaces.md says."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Position, Role
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.metrics.models import QaEvaluation, SuppliedValue
from portal.scoring.models import Plan, PlanVersion
from portal.scoring.plans import PlanErrors, check, default_document, flatten
from portal.scoring.services import save_plan
from tests.conftest import answered_call


def phone(**changes) -> dict:
    doc = default_document("电话客服")
    doc.update(changes)
    return doc


def errors_of(doc) -> dict:
    with pytest.raises(PlanErrors) as caught:
        check(doc)
    return caught.value.errors


def test_the_seeded_plans_pass_their_own_checks():
    for position in ("电话客服", "技术支持", "社交媒体客服"):
        doc = check(default_document(position))
        assert sum(line["weight"] for line in doc["lines"]) == 100


def test_left_out_keys_take_the_defaults_of_scoring_md():
    doc = check({"position": "质检专席", "lines": [phone()["lines"][1] | {"weight": 100}]})
    assert (doc["period_kind"], doc["min_volume"], doc["service_star_count"]) == ("monthly", 50, 3)
    assert doc["award_min_final"] == 90 and doc["tiers"][1] == {"from": 60, "multiplier": 0.6}


def test_weights_that_do_not_add_up_to_100_are_refused_with_the_sum():
    doc = phone()
    doc["lines"][0]["weight"] = 39
    assert errors_of(doc) == {"weights": "The weights add up to 99; they must add up to 100."}


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ({"threshold": 360, "target": 420}, "lines.0.target", "target must be below"),  # aht
        ({"stretch": 380}, "lines.0.stretch", "at or below the target"),
        ({"metric": "nothing"}, "lines.0.metric", "Choose a metric"),
        ({"category": "speed"}, "lines.0.category", "quality, efficiency"),
        ({"weight": "forty"}, "lines.0.weight", "above 0"),
        ({"threshold": None}, "lines.0.threshold", "A number is needed"),
        ({"new_agent": {"threshold": 300, "target": 420}}, "lines.0.new_agent.target", "below"),
    ],
)
def test_a_broken_line_is_refused_at_its_field(line, field, message):
    doc = phone()
    doc["lines"][0].update(line)
    assert message in errors_of(doc)[field]


def test_higher_is_better_lines_need_threshold_below_target_below_stretch():
    doc = phone()
    doc["lines"][1].update(threshold=0.9, target=0.8)  # csat
    assert "above the threshold" in errors_of(doc)["lines.1.target"]


def test_a_metric_can_have_one_line_only():
    doc = phone()
    doc["lines"][3] = dict(doc["lines"][2])
    assert "already has a line" in errors_of(doc)["lines.3.metric"]


def test_scenarios_must_sum_to_100_and_never_overlap():
    peak = {"name": "peak", "from": "2026-11-01", "to": "2026-11-11"}
    good = phone(
        scenarios=[
            peak | {"weights": {"aht": 60, "csat": 20, "qa_score": 10, "fcr": 10}},
            {"name": "crisis", "from": "2026-11-12", "to": "2026-11-13", "weights": {}},
        ]
    )
    assert check(good)["scenarios"][0]["weights"]["aht"] == 60
    assert (
        "add up to 120"
        in errors_of(phone(scenarios=[peak | {"weights": {"aht": 60}}]))["scenarios.0.weights"]
    )
    overlapping = phone(
        scenarios=[
            peak | {"weights": {}},
            {"name": "crisis", "from": "2026-11-11", "to": "2026-11-20", "weights": {}},
        ]
    )
    assert "overlaps scenario 1" in errors_of(overlapping)["scenarios.1.from"]
    backwards = phone(scenarios=[{"name": "x", "from": "2026-11-05", "to": "2026-11-01"}])
    assert "ends before it starts" in errors_of(backwards)["scenarios.0.to"]
    unknown = phone(scenarios=[peak | {"weights": {"nps": 10}}])
    assert "no line" in errors_of(unknown)["scenarios.0.weights.nps"]


def test_tiers_must_rise():
    doc = phone(
        tiers=[
            {"from": 0, "multiplier": 0},
            {"from": 80, "multiplier": 1},
            {"from": 60, "multiplier": 0.6},
        ]
    )
    assert "lowest score up" in errors_of(doc)["tiers"]


def test_each_saved_change_is_a_new_version_with_a_readable_diff(ctx):
    first = save_plan(None, phone())
    assert first.number == 1 and db.session.scalar(select(func.count(Position.id))) == 1
    assert save_plan(None, phone()).id == first.id  # nothing changed: no new version
    changed = phone()
    changed["lines"][0]["weight"], changed["lines"][1]["weight"] = 45, 25
    second = save_plan(None, changed)
    assert second.number == 2 and second.plan_id == first.plan_id
    assert first.document["lines"][0]["weight"] == 40  # the old version is kept as it was
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "plan.save").order_by(AuditEntry.id.desc())
    ).first()
    assert entry.before["lines.aht.weight"] == 40 and entry.after["lines.aht.weight"] == 45
    assert entry.summary == "电话客服 v2"


def test_flatten_names_each_field_by_metric_and_scenario():
    doc = check(
        phone(
            scenarios=[
                {"name": "peak", "from": "2026-11-01", "to": "2026-11-02", "weights": {"aht": 40}}
            ]
        )
    )
    flat = flatten(doc)
    assert flat["lines.aht.new_agent.threshold"] == 480
    assert flat["scenarios.peak.dates"] == "2026-11-01…2026-11-02"
    assert flat["tiers.110"] == 2.0


def test_plans_import_and_export_round_trip(app, runner, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(phone(position="投诉专席")), encoding="utf-8")
    done = runner.invoke(args=["plans", "import", str(path)])
    assert done.exit_code == 0, done.output
    assert "投诉专席: version 1 in force." in done.output
    exported = runner.invoke(args=["plans", "export", "投诉专席"])
    assert json.loads(exported.output)["lines"][0]["metric"] == "aht"
    path.write_text(exported.output, encoding="utf-8")
    again = runner.invoke(args=["plans", "import", str(path)])
    assert "version 1 in force" in again.output  # the same plan: no new version
    assert json.loads(runner.invoke(args=["plans", "export"]).output)[0]["position"] == "投诉专席"


def test_a_bad_plan_file_names_every_broken_field_and_imports_nothing(app, runner, tmp_path):
    doc = phone(position="投诉专席")
    doc["lines"][0]["weight"] = 39
    doc["lines"][2]["target"] = 60
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = runner.invoke(args=["plans", "import", str(path)])
    assert result.exit_code == 1
    assert "lines.2.target: The target must be above the threshold." in result.output
    assert "weights: The weights add up to 99" in result.output
    assert "Traceback" not in result.output
    path.write_bytes(b"\xff\xfe not json")
    assert "is not a JSON file" in runner.invoke(args=["plans", "import", str(path)]).output
    assert runner.invoke(args=["plans", "export", "nobody"]).exit_code == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(Plan.id))) == 0
        assert db.session.scalar(select(func.count(PlanVersion.id))) == 0


# --- provisional results, exported -----------------------------------------------------------

SUPPLIED_PLAN = {
    "position": "知识专员",
    "min_volume": 0,
    "base_bonus": 800,
    "lines": [
        {
            "metric": "knowledge_contrib",
            "category": "development",
            "core": True,
            "weight": 50,
            "threshold": 2,
            "target": 5,
            "stretch": 10,
        },
        {
            "metric": "brand_sentiment",
            "category": "experience",
            "core": False,
            "weight": 50,
            "threshold": 60,
            "target": 75,
            "stretch": 85,
        },
    ],
}


@pytest.fixture
def scored(app, make_user):
    """A: kc 5 → 100, bs 85 → 120: W 110. B: kc 3.5 → 80, no bs (left out), one red line: 75.
    C: no data: shown, not scored. D: hired ten days before the month's end: a new agent."""
    with app.app_context():
        version = save_plan(None, SUPPLIED_PLAN)
        position_id = version.plan.position_id
        db.session.commit()
    people = {
        no: make_user({Role.AGENT}, agent_no=no, position=position_id) for no in ("A", "B", "C")
    }
    people["D"] = make_user(
        {Role.AGENT}, agent_no="D", position=position_id, hire_date=date(2026, 11, 20)
    )
    with app.app_context():
        for no, metric, value in [
            ("A", "knowledge_contrib", 5),
            ("A", "brand_sentiment", 85),
            ("B", "knowledge_contrib", 3.5),
            ("D", "knowledge_contrib", 2),
        ]:
            db.session.add(
                SuppliedValue(
                    agent_id=people[no].id, period_key="2026-11", metric=metric, value=value
                )
            )
        at = datetime(2026, 11, 3, 9, tzinfo=timezone(timedelta(hours=8)))
        call = answered_call("r1", people["B"].id, at)
        db.session.add(call)
        db.session.flush()
        db.session.add(
            QaEvaluation(
                source_id="e1",
                interaction_id=call.id,
                score=40,
                original_score=40,
                evaluated_at=at,
                red_line=True,
            )
        )
        db.session.commit()
    return people


def test_results_export_csv_follows_interfaces_md(runner, scored):
    out = runner.invoke(args=["results", "export", "--period", "2026-11"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert list(rows[0])[:16] == [
        "period",
        "agent_no",
        "name",
        "team",
        "position",
        "cohort",
        "weighted",
        "bonus",
        "deductions",
        "offset",
        "final",
        "gate_open",
        "eligible",
        "rank",
        "tier_multiplier",
        "status",
    ]
    assert list(rows[0])[16:] == ["score_knowledge_contrib", "score_brand_sentiment"]
    by_no = {r["agent_no"]: r for r in rows}
    assert (by_no["A"]["weighted"], by_no["A"]["final"], by_no["A"]["rank"]) == ("110", "110", "1")
    assert (by_no["A"]["tier_multiplier"], by_no["A"]["status"]) == ("2", "provisional")
    assert (by_no["B"]["weighted"], by_no["B"]["deductions"], by_no["B"]["final"]) == (
        "80",
        "5",
        "75",
    )
    assert (by_no["B"]["rank"], by_no["B"]["score_brand_sentiment"]) == ("2", "")
    assert (by_no["C"]["final"], by_no["C"]["eligible"], by_no["C"]["rank"]) == ("", "0", "")
    assert by_no["D"]["cohort"] == "知识专员/new" and by_no["D"]["rank"] == "1"
    assert by_no["A"]["cohort"] == "知识专员/regular" and by_no["A"]["gate_open"] == "1"


def test_results_export_json_lists_every_line_with_its_note(runner, scored):
    out = runner.invoke(args=["results", "export", "--period", "2026-11", "--format", "json"])
    rows = {r["agent_no"]: r for r in json.loads(out.output)}
    b_lines = {line["metric"]: line for line in rows["B"]["lines"]}
    assert b_lines["brand_sentiment"] == {
        "metric": "brand_sentiment",
        "category": "experience",
        "weight": 50,
        "value": None,
        "score": None,
        "included": False,
        "note": "no_value",
    }
    assert b_lines["knowledge_contrib"]["score"] == 80 and rows["B"]["eligible"] is True
    assert runner.invoke(args=["results", "export", "--period", "2026-13"]).exit_code == 1
