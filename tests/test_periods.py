"""Periods: created for every plan's kind, their close time, state, and what holds them back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal.accounts.models import Role, User
from portal.extensions import db
from portal.metrics.models import Interaction, UploadTask
from portal.metrics.periods import parse_period
from portal.periods import services
from portal.periods.models import PeriodRow
from portal.scoring.plans import default_document
from portal.scoring.services import save_plan
from tests.conftest import answered_call, login

TODAY = date(2026, 11, 23)


def _interaction(agent_id=None, day=date(2026, 9, 15), source="i1"):
    at = datetime(day.year, day.month, day.day, 9, tzinfo=timezone(timedelta(hours=8)))
    return answered_call(source, agent_id, at)


def test_close_time_is_the_end_of_the_period_plus_the_grace_hours(ctx):
    # 2026-11 ends at midnight in Shanghai (16:00 UTC on the 30th); 72 hours later.
    assert services.close_time(parse_period("2026-11")) == datetime(2026, 12, 3, 16, tzinfo=UTC)


def test_periods_are_created_from_the_first_data_to_one_ahead_once(ctx):
    save_plan(None, default_document("电话客服"))
    db.session.add(_interaction())
    db.session.flush()
    assert services.sync_periods(TODAY) == 4
    keys = db.session.scalars(select(PeriodRow.key).order_by(PeriodRow.first_day)).all()
    assert keys == ["2026-09", "2026-10", "2026-11", "2026-12"]
    assert services.sync_periods(TODAY) == 0
    weekly = default_document("技术支持") | {"period_kind": "weekly"}
    save_plan(None, weekly)
    assert services.sync_periods(TODAY) > 10  # the ISO weeks since mid-September


def test_state_follows_the_clock_then_the_close(ctx):
    row = services.ensure_period(parse_period("2026-11"))
    end = datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert services.state(row, end - timedelta(seconds=1)) == "open"
    assert services.state(row, end) == "grace"
    row.closing_at = end + timedelta(days=3)
    assert services.state(row, end + timedelta(days=3)) == "closing"
    row.closed_at = end + timedelta(days=3, minutes=1)
    assert services.state(row, end + timedelta(days=4)) == "closed"
    assert services.ensure_period(parse_period("2026-11")).id == row.id


def test_undecided_appeals_and_running_imports_hold_the_close_back(app, make_user):
    from portal.metrics.models import QaEvaluation
    from portal.qa.models import Appeal

    agent = make_user({Role.AGENT}, agent_no="A")
    with app.app_context():
        row = services.ensure_period(parse_period("2026-11"))
        assert not services.blockers(row).any
        call = _interaction(agent.id, date(2026, 11, 3))
        db.session.add(call)
        db.session.flush()
        evaluation = QaEvaluation(
            source_id="e",
            interaction_id=call.id,
            score=50,
            original_score=50,
            evaluated_at=datetime.now(UTC),
            released_at=datetime.now(UTC),
        )
        db.session.add(evaluation)
        db.session.flush()
        db.session.add(
            Appeal(
                evaluation_id=evaluation.id,
                agent_id=agent.id,
                due_at=datetime.now(UTC),
                score_before=50,
            )
        )
        db.session.add(
            UploadTask(
                token="t" * 32,
                action="import",
                user_id=agent.id,
                kind="interactions",
                filename="f.csv",
                status="running",
            )
        )
        db.session.flush()
        held = services.blockers(row)
        assert (held.appeals, held.imports) == (1, 1)
        december = services.ensure_period(parse_period("2026-12"))
        assert services.blockers(december).appeals == 0


def test_the_periods_page_shows_state_close_time_and_blockers(app, make_user):
    make_user({Role.ADMIN}, agent_no="admin")
    client = app.test_client()
    login(client, "admin")
    assert "还没有周期" in client.get("/admin/periods").get_data(True)
    with app.app_context():
        services.ensure_period(parse_period("2026-10"))
        db.session.commit()
    html = client.get("/admin/periods").get_data(True)
    assert 'id="period-2026-10"' in html and "宽限期" in html
    from tests.test_i18n import _english_phrases

    assert _english_phrases(html) == []


# --- the close ------------------------------------------------------------------------------


@pytest.fixture
def scored_month(app, make_user):
    """A phone plan and one agent with one November contact (so one result row)."""
    make_user({Role.ADMIN}, agent_no="admin")
    with app.app_context():
        position_id = save_plan(None, default_document("电话客服")).plan.position_id
        db.session.commit()
    agent = make_user({Role.AGENT}, agent_no="A", position=position_id)
    with app.app_context():
        db.session.add(_interaction(agent.id, date(2026, 11, 3)))
        from portal.metrics.stats import rebuild_day_stats

        rebuild_day_stats(date(2026, 11, 3), date(2026, 11, 3))
        db.session.commit()
    return agent


AFTER_CLOSE = datetime(2026, 12, 3, 16, tzinfo=UTC)


def test_the_close_freezes_results_once_and_tells_the_admins(app, scored_month):
    from portal.notifications.models import Notification
    from portal.periods.models import ResultRow, ResultsVersion

    with app.app_context():
        row = services.ensure_period(parse_period("2026-11"))
        db.session.commit()
        assert services.close_due_periods(AFTER_CLOSE - timedelta(seconds=1)) == "none due"
        assert services.close_due_periods(AFTER_CLOSE) == "closed: 1"
        assert services.close_due_periods(AFTER_CLOSE + timedelta(hours=1)) == "none due"
        row = db.session.get(PeriodRow, row.id)
        assert (row.results_version, services.state(row, AFTER_CLOSE)) == (1, "closed")
        [result] = db.session.scalars(select(ResultRow)).all()
        assert result.agent_id == scored_month.id and result.final is not None
        assert result.plan_version_id is not None
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 1
        kinds = db.session.scalars(select(Notification.kind)).all()
        assert kinds == ["period_closed"]


def test_a_second_process_finds_the_claim_and_a_crashed_close_is_redone(app, scored_month):
    from portal.periods.models import ResultsVersion

    with app.app_context():
        row = services.ensure_period(parse_period("2026-11"))
        row.closing_at = AFTER_CLOSE  # another process claimed it a moment ago
        db.session.commit()
        assert services.close_period(row, AFTER_CLOSE + timedelta(minutes=5)).status == "busy"
        # That process died: its transaction rolled back, only the claim remains.
        later = AFTER_CLOSE + services.STALE_CLOSE + timedelta(seconds=1)
        assert services.close_period(row, later).status == "closed"
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 1


def test_undecided_appeals_hold_the_close_unless_forced_with_a_reason(app, scored_month, runner):
    from portal.metrics.models import QaEvaluation
    from portal.qa.models import Appeal

    with app.app_context():
        call = db.session.scalar(select(Interaction))
        evaluation = QaEvaluation(
            source_id="e",
            interaction_id=call.id,
            score=50,
            original_score=50,
            evaluated_at=AFTER_CLOSE,
            released_at=AFTER_CLOSE,
        )
        db.session.add(evaluation)
        db.session.flush()
        reviewer = db.session.scalar(select(User).where(User.agent_no == "admin"))
        db.session.add(
            Appeal(
                evaluation_id=evaluation.id,
                agent_id=scored_month.id,
                due_at=AFTER_CLOSE,
                score_before=50,
                reviewer_id=reviewer.id,
            )
        )
        db.session.commit()
    held = runner.invoke(args=["periods", "close", "2026-11"])
    assert held.exit_code == 1 and "1 undecided appeal" in held.output
    assert runner.invoke(args=["periods", "close", "2026-11"]).exit_code == 1
    with app.app_context():
        from portal.notifications.models import Notification

        reminders = db.session.scalars(
            select(Notification).where(Notification.kind == "appeal_blocks_close")
        ).all()
        assert len(reminders) == 1  # two held attempts: the reviewer hears of it once a day
    forced = runner.invoke(args=["periods", "close", "2026-11", "--force", "--reason", "月底发薪"])
    assert forced.exit_code == 0, forced.output
    assert "results version 1" in forced.output
    again = runner.invoke(args=["periods", "close", "2026-11"])
    assert "already closed" in again.output
    assert runner.invoke(args=["periods", "close", "2026-13"]).exit_code == 1
    future = runner.invoke(args=["periods", "close", "2099-01"])
    assert future.exit_code == 1 and "has not begun" in future.output


def test_an_appeal_upheld_after_the_close_flags_a_revision_that_makes_a_new_version(
    app, scored_month, make_user
):
    from portal.metrics.models import QaEvaluation
    from portal.notifications.models import Notification
    from portal.periods.models import ResultRow, ResultsVersion
    from portal.qa import services as qa

    make_user({Role.QA_LEAD}, agent_no="QL")
    with app.app_context():
        call = db.session.scalar(select(Interaction))
        evaluation = QaEvaluation(
            source_id="e",
            interaction_id=call.id,
            score=50,
            original_score=50,
            evaluated_at=AFTER_CLOSE,
            released_at=AFTER_CLOSE - timedelta(days=5),
        )
        db.session.add(evaluation)
        from portal.metrics.stats import rebuild_day_stats

        rebuild_day_stats(date(2026, 11, 3), date(2026, 11, 3))
        db.session.commit()
        row = services.ensure_period(parse_period("2026-11"))
        db.session.commit()
        assert services.close_due_periods(AFTER_CLOSE) == "closed: 1"
        # An appeal filed in the window, decided after the close.
        agent = db.session.get(User, scored_month.id)
        appeal = qa.submit_appeal(
            agent,
            db.session.get(QaEvaluation, evaluation.id),
            [qa.AppealRequest(qa.WHOLE, "复核", 90)],
            AFTER_CLOSE - timedelta(days=1),
        )
        lead = db.session.scalar(
            select(type(scored_month)).where(type(scored_month).agent_no == "QL")
        )
        qa.decide_appeal(
            lead,
            appeal,
            [qa.ItemDecision(appeal.items[0].id, "upheld", "成立")],
            AFTER_CLOSE + timedelta(hours=1),
        )
        db.session.commit()
        out = services.close_due_periods(AFTER_CLOSE + timedelta(hours=2))
        assert out == "none due; 1 flagged for revision"
        assert services.close_due_periods(AFTER_CLOSE + timedelta(hours=3)) == "none due"
        assert db.session.get(PeriodRow, row.id).revision_pending
        assert "period_revision" in db.session.scalars(select(Notification.kind)).all()
    make_user({Role.ADMIN}, agent_no="boss")
    client = app.test_client()
    login(client, "boss")
    from tests.conftest import post

    assert post(client, f"/admin/periods/{row.id}/revise", {"reason": ""}).status_code == 422
    assert (
        post(client, f"/admin/periods/{row.id}/revise", {"reason": "申诉改判"}).status_code == 302
    )
    with app.app_context():
        assert [v.number for v in db.session.scalars(select(ResultsVersion))] == [1, 2]
        versions = db.session.scalars(select(ResultRow).order_by(ResultRow.version_id)).all()
        qa_line = [[ln for ln in r.lines if ln["metric"] == "qa_score"][0] for r in versions]
        assert [ln["value"] for ln in qa_line] == [50, 90]  # the old version stays as it was
        assert not db.session.get(PeriodRow, row.id).revision_pending


def test_results_export_reads_the_frozen_version_once_closed(app, scored_month, runner):
    import csv
    import io

    provisional = list(
        csv.DictReader(
            io.StringIO(runner.invoke(args=["results", "export", "--period", "2026-11"]).output)
        )
    )
    assert [r["status"] for r in provisional] == ["provisional"]
    assert runner.invoke(args=["periods", "close", "2026-11"]).exit_code == 0
    with app.app_context():  # data arriving after the close changes nothing frozen
        late = _interaction(scored_month.id, date(2026, 11, 4), source="late")
        late.talk_s = 900  # a long call: the provisional AHT would change
        db.session.add(late)
        from portal.metrics.stats import rebuild_day_stats

        rebuild_day_stats(date(2026, 11, 4), date(2026, 11, 4))
        db.session.commit()
    final = list(
        csv.DictReader(
            io.StringIO(runner.invoke(args=["results", "export", "--period", "2026-11"]).output)
        )
    )
    assert [r["status"] for r in final] == ["final"]
    assert final[0]["final"] == provisional[0]["final"]
    assert final[0]["score_aht"] == provisional[0]["score_aht"]
    with app.app_context():
        from portal.metrics.periods import parse_period as key
        from portal.scoring.services import all_results

        [now] = all_results(key("2026-11"))
        assert str(now.results[0].lines[0].score) != final[0]["score_aht"]  # it did move
    data = runner.invoke(args=["results", "export", "--period", "2026-11", "--format", "json"])
    import json

    assert json.loads(data.output)[0]["lines"][0]["metric"] == "aht"


def test_admins_close_now_or_force_with_a_reason_from_the_page(app, scored_month):
    from tests.conftest import post

    client = app.test_client()
    login(client, "admin")
    with app.app_context():
        row_id = services.ensure_period(parse_period("2026-11")).id
        db.session.commit()
    page = client.get("/admin/periods").get_data(True)
    assert 'id="period-close-2026-11"' in page and "立即结算" in page
    assert post(client, f"/admin/periods/{row_id}/close", {}).status_code == 302
    with app.app_context():
        assert db.session.get(PeriodRow, row_id).closed_at is None  # the scheduler closes it
    progress = client.get(f"/admin/periods/{row_id}/progress").get_data(True)
    assert "hx-trigger" in progress and "调度器" in progress  # polls while it waits
    with app.app_context():
        from portal.db import utcnow

        assert services.run_requested_closes(utcnow()) == 1
        row = db.session.get(PeriodRow, row_id)
        assert row.closed_at is not None and row.close_requested_at is None
    progress = client.get(f"/admin/periods/{row_id}/progress").get_data(True)
    assert "hx-trigger" not in progress and "已结束" in progress
    assert post(client, "/admin/periods/999/close", {}).status_code == 404
