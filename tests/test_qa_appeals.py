"""QA evaluations against rubrics and appeals: the state machine, the window, the reviewer
rule, double submits, withdrawal, escalation once, and the score flowing downstream."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role, User
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.metrics.models import DayStats, Interaction, QaEvaluation
from portal.notifications.models import Notification
from portal.qa import services as qa
from portal.qa.models import Appeal, AppealEvent, EvaluationItem
from tests.conftest import answered_call

RELEASED = datetime(2026, 11, 4, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
GOOD = {"greeting": 10, "needs": 20, "solution": 20, "empathy": 10, "process": 10}  # 70


@pytest.fixture
def world(app, make_user, make_team, make_position):
    position = make_position("电话客服")
    lead = make_user({Role.TEAM_LEAD}, agent_no="L")
    team = make_team("一组", leads=[lead])
    people = {
        "agent": make_user({Role.AGENT}, agent_no="A", team=team, position=position),
        "other": make_user({Role.AGENT}, agent_no="B", team=team, position=position),
        "qa": make_user({Role.QA}, agent_no="Q"),
        "ql1": make_user({Role.QA, Role.QA_LEAD}, agent_no="QL1"),
        "ql2": make_user({Role.QA_LEAD}, agent_no="QL2"),
        "admin": make_user({Role.ADMIN}, agent_no="admin"),
        "lead": lead,
    }
    with app.app_context():
        version = qa.save_rubric(None, db.session.merge(position), qa.DEFAULT_RUBRIC)
        at = datetime(2026, 11, 3, 9, tzinfo=timezone(timedelta(hours=8)))
        call = answered_call("c1", people["agent"].id, at)
        db.session.add(call)
        db.session.commit()
        ids = {"version": version.id, "interaction": call.id}
    return people, ids


def _user(key, people):
    return db.session.get(User, people[key].id)


def _evaluate(app, world, evaluator="qa", points=GOOD, violated=(), release=True) -> int:
    people, ids = world
    with app.app_context():
        from portal.qa.models import RubricVersion

        scores = [qa.ItemScore(code, points=p) for code, p in points.items()]
        scores += [qa.ItemScore(code, violated=True) for code in violated]
        evaluation = qa.save_evaluation(
            _user(evaluator, people),
            db.session.get(Interaction, ids["interaction"]),
            db.session.get(RubricVersion, ids["version"]),
            scores,
            "",
            RELEASED,
        )
        if release:
            qa.release_evaluation(_user(evaluator, people), evaluation, RELEASED)
        db.session.commit()
        return evaluation.id


def _appeal(
    app, world, evaluation_id, when=RELEASED + timedelta(days=1), code="solution", proposed=40
) -> int:
    people, _ = world
    with app.app_context():
        appeal = qa.submit_appeal(
            _user("agent", people),
            db.session.get(QaEvaluation, evaluation_id),
            [qa.AppealRequest(code, "方案其实正确,客户未再来电", proposed)],
            when,
        )
        db.session.commit()
        return appeal.id


def _sum_qa(app) -> tuple[int, float]:
    with app.app_context():
        row = db.session.execute(select(func.sum(DayStats.n_qa), func.sum(DayStats.sum_qa))).one()
        return (row[0] or 0, row[1] or 0)


def test_the_default_rubric_passes_and_bad_ones_are_refused(ctx):
    assert sum(i["max_points"] for i in qa.check_rubric(qa.DEFAULT_RUBRIC)["items"]) == 100
    short = {"items": qa.DEFAULT_RUBRIC["items"][:2]}
    with pytest.raises(qa.QaError, match="必须等于 100"):
        qa.check_rubric(short)
    unanchored = {
        "items": [
            {
                "code": "x",
                "title": "x",
                "max_points": 100,
                "levels": [{"points": 100, "anchor": ""}, {"points": 0, "anchor": "0"}],
            }
        ]
    }
    with pytest.raises(qa.QaError, match="评分说明"):
        qa.check_rubric(unanchored)


def test_saving_twice_keeps_one_draft_which_counts_only_once_released(app, world):
    first = _evaluate(app, world, release=False)
    again = _evaluate(app, world, points={**GOOD, "solution": 40}, release=False)
    assert first == again
    with app.app_context():
        assert db.session.scalar(select(func.count(QaEvaluation.id))) == 1
        assert db.session.get(QaEvaluation, first).score == 90
    assert _sum_qa(app) == (0, 0)  # a draft is not a score
    with app.app_context():
        people, _ = world
        qa.release_evaluation(_user("qa", people), db.session.get(QaEvaluation, first), RELEASED)
        db.session.commit()
        told = db.session.scalars(select(Notification.kind)).all()
        assert told == ["evaluation_released"]
    assert _sum_qa(app) == (1, 90)
    with pytest.raises(qa.QaError, match="已发布"):
        _evaluate(app, world)


def test_a_score_off_the_levels_and_a_non_qa_evaluator_are_refused(app, world):
    with pytest.raises(qa.QaError, match="解决方案准确性"):
        _evaluate(app, world, points={**GOOD, "solution": 33})
    with pytest.raises(qa.QaError):
        _evaluate(app, world, evaluator="agent")


def test_the_window_accepts_the_last_moment_and_refuses_one_second_later(app, world):
    evaluation = _evaluate(app, world)
    with pytest.raises(qa.QaError, match="申诉期已于"):
        _appeal(app, world, evaluation, when=RELEASED + timedelta(days=7, seconds=1))
    assert _appeal(app, world, evaluation, when=RELEASED + timedelta(days=7))


def test_a_double_submit_makes_one_appeal_and_only_the_agent_may_appeal(app, world):
    evaluation = _evaluate(app, world)
    assert _appeal(app, world, evaluation) == _appeal(app, world, evaluation)
    with app.app_context():
        assert db.session.scalar(select(func.count(Appeal.id))) == 1
        people, _ = world
        with pytest.raises(qa.QaError, match="只有该话单的坐席本人"):
            qa.submit_appeal(
                _user("other", people),
                db.session.get(QaEvaluation, evaluation),
                [qa.AppealRequest("solution", "x", 40)],
                RELEASED,
            )


def test_the_reviewer_is_never_the_evaluator_and_a_qa_cannot_decide(app, world):
    people, _ = world
    evaluation = _evaluate(app, world, evaluator="ql1")
    appeal_id = _appeal(app, world, evaluation)
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        assert appeal.reviewer_id == people["ql2"].id  # QL1 made the evaluation
        item = appeal.items[0]
        decisions = [qa.ItemDecision(item.id, "upheld", "录音证实方案正确")]
        for who, message in (("ql1", "该评分由您作出"), ("qa", "只有质检主管")):
            with pytest.raises(qa.QaError, match=message):
                qa.decide_appeal(_user(who, people), appeal, decisions, RELEASED)
        with pytest.raises(qa.QaError, match="理由"):
            qa.decide_appeal(
                _user("ql2", people), appeal, [qa.ItemDecision(item.id, "upheld", " ")], RELEASED
            )


def test_an_upheld_item_changes_the_score_keeps_the_original_and_flows_downstream(app, world):
    people, _ = world
    evaluation = _evaluate(app, world)
    assert _sum_qa(app) == (1, 70)
    # aht 300 s → 120, fcr 100% → 120, qa 70 → 60 (csat: no data): (40·120 + 15·120 + 15·60) / 70
    assert _provisional_final(app, people) == 107.14
    appeal_id = _appeal(app, world, evaluation)
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        qa.start_review(_user("ql1", people), appeal, RELEASED + timedelta(days=2))
        qa.decide_appeal(
            _user("ql1", people),
            appeal,
            [qa.ItemDecision(appeal.items[0].id, "upheld", "录音证实方案正确")],
            RELEASED + timedelta(days=2),
        )
        db.session.commit()
        appeal = db.session.get(Appeal, appeal_id)
        assert (appeal.status, appeal.score_before, appeal.score_after) == ("upheld", 70, 90)
        scored = db.session.get(QaEvaluation, evaluation)
        assert (scored.score, scored.original_score) == (90, 70)
        item = db.session.scalar(select(EvaluationItem).where(EvaluationItem.code == "solution"))
        assert (item.points, item.original_points) == (40, 20)
        kinds = [e.kind for e in db.session.scalars(select(AppealEvent).order_by(AppealEvent.id))]
        assert kinds == ["submitted", "in_review", "decided"]
        actions = set(db.session.scalars(select(AuditEntry.action)))
        assert {"appeal.submit", "appeal.review", "appeal.decide"} <= actions
        told = db.session.scalars(
            select(Notification.user_id).where(Notification.kind == "appeal_decided")
        ).all()
        assert sorted(told) == sorted([people["agent"].id, people["qa"].id])
    assert _sum_qa(app) == (1, 90)  # qa_score follows at once
    assert _provisional_final(app, people) == 117.86  # qa 90 → 110: the result follows too


def _provisional_final(app, people) -> float:
    from portal.metrics.periods import parse_period
    from portal.scoring.plans import default_document
    from portal.scoring.services import plan_results, save_plan

    with app.app_context():
        version = save_plan(None, default_document("电话客服"))
        found = plan_results(version.plan.position, parse_period("2026-11"))
        db.session.rollback()
        return found.result_of(people["agent"].id).final_shown


def test_a_red_line_upheld_on_appeal_removes_the_deduction(app, world):
    from portal.accounts.models import Position
    from portal.metrics.periods import parse_period
    from portal.scoring.services import red_line_counts

    people, _ = world
    evaluation = _evaluate(app, world, violated=("privacy",))
    with app.app_context():
        assert red_line_counts(parse_period("2026-11"), [people["agent"].id]) == {
            people["agent"].id: 1
        }
    appeal_id = _appeal(app, world, evaluation, code="privacy", proposed=0)
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        with pytest.raises(qa.QaError, match="红线"):
            qa.decide_appeal(
                _user("ql2", people),
                appeal,
                [qa.ItemDecision(appeal.items[0].id, "partial", "一半", 0.5)],
                RELEASED,
            )
        qa.decide_appeal(
            _user("ql2", people),
            appeal,
            [qa.ItemDecision(appeal.items[0].id, "upheld", "已核身,未泄露")],
            RELEASED,
        )
        db.session.commit()
        assert red_line_counts(parse_period("2026-11"), [people["agent"].id]) == {}
        assert db.session.scalar(select(Position.id))


def test_partial_decisions_lie_between_and_mixed_outcomes_are_partially_upheld(app, world):
    people, _ = world
    evaluation = _evaluate(app, world)
    with app.app_context():
        appeal = qa.submit_appeal(
            _user("agent", people),
            db.session.get(QaEvaluation, evaluation),
            [qa.AppealRequest("solution", "正确", 40), qa.AppealRequest("empathy", "有安抚", 20)],
            RELEASED,
        )
        first, second = appeal.items
        with pytest.raises(qa.QaError, match="介于"):
            qa.decide_appeal(
                _user("ql2", people),
                appeal,
                [
                    qa.ItemDecision(first.id, "partial", "部分", 40),
                    qa.ItemDecision(second.id, "rejected", "语气生硬"),
                ],
                RELEASED,
            )
        qa.decide_appeal(
            _user("ql2", people),
            appeal,
            [
                qa.ItemDecision(first.id, "partial", "部分正确", 30),
                qa.ItemDecision(second.id, "rejected", "语气生硬"),
            ],
            RELEASED,
        )
        db.session.commit()
        assert db.session.get(Appeal, appeal.id).status == "partially_upheld"
        assert db.session.get(QaEvaluation, evaluation).score == 80


def test_withdrawal_by_the_agent_only_then_a_new_appeal_may_follow(app, world):
    people, _ = world
    evaluation = _evaluate(app, world)
    appeal_id = _appeal(app, world, evaluation)
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        with pytest.raises(qa.QaError):
            qa.withdraw_appeal(_user("other", people), appeal, RELEASED)
        qa.withdraw_appeal(_user("agent", people), appeal, RELEASED)
        db.session.commit()
        assert db.session.get(Appeal, appeal_id).status == "withdrawn"
        with pytest.raises(qa.QaError, match="已处理或已撤回"):
            qa.decide_appeal(_user("ql2", people), appeal, [], RELEASED)
    assert _appeal(app, world, evaluation) != appeal_id


def test_reminded_once_before_the_deadline_and_escalated_once_after(app, world):
    people, _ = world
    evaluation = _evaluate(app, world)
    appeal_id = _appeal(app, world, evaluation, when=RELEASED)
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        # Submitted Wednesday 10:00 (Shanghai): due three working days later, Monday 10:00.
        assert appeal.due_at == datetime(2026, 11, 9, 2, 0, tzinfo=UTC)
        first_reviewer = appeal.reviewer_id
        assert (
            qa.remind_and_escalate(appeal.due_at - timedelta(hours=30)) == "reminded 0, escalated 0"
        )
        assert (
            qa.remind_and_escalate(appeal.due_at - timedelta(hours=2)) == "reminded 1, escalated 0"
        )
        assert (
            qa.remind_and_escalate(appeal.due_at - timedelta(hours=1)) == "reminded 0, escalated 0"
        )
        assert (
            qa.remind_and_escalate(appeal.due_at + timedelta(seconds=1))
            == "reminded 0, escalated 1"
        )
        assert (
            qa.remind_and_escalate(appeal.due_at + timedelta(days=2)) == "reminded 0, escalated 0"
        )
        db.session.commit()
        appeal = db.session.get(Appeal, appeal_id)
        assert appeal.reviewer_id not in (first_reviewer, people["qa"].id)
        kinds = db.session.scalars(
            select(Notification.kind)
            .where(Notification.kind.like("appeal_%"))
            .order_by(Notification.id)
        ).all()
        assert kinds == ["appeal_assigned", "appeal_reminder", "appeal_escalated"]


def test_the_close_blocker_lists_a_periods_undecided_appeals(app, world):
    people, _ = world
    evaluation = _evaluate(app, world)
    appeal_id = _appeal(app, world, evaluation)
    with app.app_context():
        nov = (date(2026, 11, 1), date(2026, 11, 30))
        assert [a.id for a in qa.undecided_appeals(*nov)] == [appeal_id]
        assert qa.undecided_appeals(date(2026, 12, 1), date(2026, 12, 31)) == []
        assert qa.remind_blocking_reviewers(*nov, "2026-11") == 1
        appeal = db.session.get(Appeal, appeal_id)
        qa.decide_appeal(
            _user("ql2", people),
            appeal,
            [qa.ItemDecision(appeal.items[0].id, "rejected", "维持")],
            RELEASED,
        )
        db.session.commit()
        assert qa.undecided_appeals(*nov) == []


def test_an_imported_evaluation_is_appealed_as_a_whole(app, world):
    people, ids = world
    with app.app_context():
        imported = QaEvaluation(
            source_id="E1",
            interaction_id=ids["interaction"],
            evaluator_id=people["qa"].id,
            score=60,
            original_score=60,
            evaluated_at=RELEASED,
            released_at=RELEASED,
            status="released",
        )
        db.session.add(imported)
        db.session.commit()
        evaluation_id = imported.id
    with pytest.raises(qa.QaError, match="不能在此申诉"):
        _appeal(app, world, evaluation_id, code="solution")
    appeal_id = _appeal(app, world, evaluation_id, code=qa.WHOLE, proposed=75)
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        qa.decide_appeal(
            _user("ql2", people),
            appeal,
            [qa.ItemDecision(appeal.items[0].id, "upheld", "复核成立")],
            RELEASED,
        )
        db.session.commit()
        assert db.session.get(QaEvaluation, evaluation_id).score == 75


def test_reimporting_an_evaluation_keeps_the_score_an_appeal_changed(app, world, runner, tmp_path):
    people, ids = world
    path = tmp_path / "qa.csv"
    header = "evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line\n"
    path.write_text(header + "E9,c1,Q,60,2026-11-04T10:00:00+08:00,0\n", encoding="utf-8")
    assert runner.invoke(args=["import", "qa", str(path)]).exit_code == 0
    with app.app_context():
        evaluation_id = db.session.scalar(
            select(QaEvaluation.id).where(QaEvaluation.source_id == "E9")
        )
    when = datetime(2026, 11, 5, tzinfo=UTC)
    appeal_id = _appeal(app, world, evaluation_id, when=when, code=qa.WHOLE, proposed=75)
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        qa.decide_appeal(
            _user("ql2", people),
            appeal,
            [qa.ItemDecision(appeal.items[0].id, "upheld", "复核成立")],
            when,
        )
        db.session.commit()
    assert runner.invoke(args=["import", "qa", str(path)]).exit_code == 0  # the same file again
    with app.app_context():
        assert db.session.get(QaEvaluation, evaluation_id).score == 75
    path.write_text(header + "E9,c1,Q,80,2026-11-04T10:00:00+08:00,0\n", encoding="utf-8")
    assert runner.invoke(args=["import", "qa", str(path)]).exit_code == 0  # re-scored at source
    with app.app_context():
        scored = db.session.get(QaEvaluation, evaluation_id)
        assert (scored.score, scored.original_score) == (80, 80)
