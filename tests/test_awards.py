"""Awards (scoring.md §7), the close that nominates them and renders certificates, publishing
with points granted once, revoking, certificates and their public verification."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.accounts.models import Position, Role, User
from portal.awards import services as awards
from portal.awards.models import Award
from portal.extensions import db
from portal.ledger.models import LedgerIsAppendOnly, PointsEntry
from portal.ledger.services import balance
from portal.metrics.periods import parse_period
from portal.notifications.models import Notification
from portal.periods import services
from portal.periods.models import PeriodRow, ResultRow, ResultsVersion
from portal.scoring import engine
from portal.scoring.services import PlanResults
from tests.conftest import login, post

AFTER_CLOSE = datetime(2026, 12, 3, 16, tzinfo=UTC)
RULES = engine.Rules(lines=(), service_star_count=3, award_min_final=90.0)


def result(key, final, cohort="电话客服/regular", *, rank=1, gate=True, qa=0.9, fcr=0.8, n=200):
    return engine.Result(
        key=key,
        cohort=cohort,
        lines=(),
        weighted=final,
        gate_open=gate,
        gate_failed=() if gate else ("qa_score",),
        bonus_earned=0.0,
        bonus=0.0,
        deductions=0.0,
        offset=0.0,
        final=final,
        handled=n,
        eligible=rank is not None,
        tier_multiplier=1.0,
        bonus_amount=None,
        values={"qa_score": qa, "fcr": fcr},
        rank=rank,
    )


def plan(results, agents=None, rules=RULES, period="2026-11"):
    return PlanResults(
        position=None,
        version=None,
        period=parse_period(period),
        rules=rules,
        weighting=None,
        results=results,
        agents=agents or {},
        inputs={},
    )


def stars(results, red_lines=None, rules=RULES):
    return [
        (c.agent_id, c.rank)
        for c in awards.service_stars(plan(results, rules=rules), red_lines or {})
    ]


# --- scoring.md §7 rules, as tables -------------------------------------------------------------


def test_service_stars_are_the_top_three_of_each_cohort_by_final():
    regular = [result(i, 100 - i, rank=i) for i in range(1, 6)]
    new = [result(10, 95, "电话客服/new"), result(11, 91, "电话客服/new", rank=2)]
    assert stars(regular + new) == [(10, 1), (11, 2), (1, 1), (2, 2), (3, 3)]


@pytest.mark.parametrize(
    "excluded, why",
    [
        (result(1, 99, gate=False), "the quality gate is closed"),
        (result(1, 99, rank=None), "not eligible (too few handled): not ranked"),
        (result(1, 89.99), "below the plan's award minimum of 90"),
    ],
)
def test_a_service_star_needs_the_gate_a_rank_and_the_minimum_final(excluded, why):
    assert stars([excluded]) == [], why


def test_a_red_line_in_the_period_rules_out_a_service_star():
    assert stars([result(1, 99), result(2, 95, rank=2)], red_lines={1: 1}) == [(2, 2)]


def test_a_small_cohort_does_not_hand_a_star_to_a_weak_score():
    assert stars([result(1, 92), result(2, 80, rank=2), result(3, 70, rank=3)]) == [(1, 1)]


def test_ties_are_broken_by_qa_then_fcr_then_handled():
    tied = [
        result(1, 95, qa=0.90, fcr=0.9, n=100),
        result(2, 95, qa=0.95, fcr=0.5, n=100),
        result(3, 95, qa=0.90, fcr=0.9, n=300),
        result(4, 95, qa=0.90, fcr=0.8, n=900),
    ]
    one = engine.Rules(lines=(), service_star_count=1)
    two = engine.Rules(lines=(), service_star_count=2)
    three = engine.Rules(lines=(), service_star_count=3)
    assert stars(tied, rules=one) == [(2, 1)]
    assert stars(tied, rules=two) == [(2, 1), (3, 1)]
    assert stars(tied, rules=three) == [(2, 1), (3, 1), (1, 1)]


def test_agents_tied_on_everything_at_the_last_place_all_get_the_star():
    twins = [result(1, 97), result(2, 95, rank=2), result(3, 95, rank=2)]
    assert stars(twins, rules=engine.Rules(lines=(), service_star_count=2)) == [
        (1, 1),
        (2, 2),
        (3, 2),
    ]


def improved(found, previous, teams):
    return [(c.agent_id, c.rise) for c in awards.most_improved([plan(found)], previous, teams)]


def test_most_improved_is_the_largest_rise_per_team_of_at_least_five_points():
    found = [result(1, 90), result(2, 85, rank=2), result(3, 80, rank=3), result(4, 70, rank=4)]
    previous = {1: 88, 2: 75, 3: 74, 4: 50}
    teams = {1: 10, 2: 10, 3: 20, 4: 30}
    # team 10: agent 2 rose 10 (agent 1 only 2); team 20: agent 3 rose 6; team 30: 20.
    assert improved(found, previous, teams) == [(2, 10.0), (3, 6.0), (4, 20.0)]


@pytest.mark.parametrize(
    "found, previous, why",
    [
        ([result(1, 84.99)], {1: 80}, "a rise under 5 points"),
        ([result(1, 90, rank=None)], {1: 60}, "not ranked this period"),
        ([result(1, 90)], {}, "not ranked in the previous closed period"),
    ],
)
def test_most_improved_needs_both_periods_ranked_and_a_rise_of_five(found, previous, why):
    assert improved(found, previous, {1: 10}) == [], why


def test_equal_rises_are_broken_by_qa_then_fcr_then_handled_not_by_the_final():
    found = [result(1, 90, qa=0.8), result(2, 80, rank=2, qa=0.9)]
    assert improved(found, {1: 80, 2: 70}, {1: 10, 2: 10}) == [(2, 10.0)]


def test_equal_rises_are_broken_like_every_award_tie():
    found = [result(1, 90, qa=0.8), result(2, 90, qa=0.9)]
    assert improved(found, {1: 80, 2: 80}, {1: 10, 2: 10}) == [(2, 10.0)]


# --- the close, publishing, certificates ------------------------------------------------------


@pytest.fixture
def month(app, make_user, make_team, monkeypatch):
    """Four agents of one team with results of our choosing for 2026-11 (the close scores
    what all_results returns), a lead, an admin and an agent of another team."""
    admin = make_user({Role.ADMIN}, agent_no="admin", name="管理员")
    lead = make_user({Role.TEAM_LEAD}, agent_no="lead", name="组长")
    team = make_team("一组", leads=[lead])
    other_team = make_team("二组")
    with app.app_context():
        position = Position(name="电话客服")
        db.session.add(position)
        db.session.commit()
        position_id = position.id
    agents = [
        make_user({Role.AGENT}, agent_no=f"1000{i}", name=name, team=team, position=position_id)
        for i, name in enumerate(["张三", "李四", "王五", "赵六"], start=1)
    ]
    stranger = make_user({Role.AGENT}, agent_no="20001", name="钱七", team=other_team)
    finals = {agents[0].id: 98.0, agents[1].id: 95.0, agents[2].id: 93.0, agents[3].id: 70.0}
    state = {"finals": finals}

    def fake_results(period):
        from portal.scoring.models import Plan, PlanVersion

        found = sorted(state["finals"].items(), key=lambda kv: -kv[1])
        ranked = [result(agent_id, final, rank=i) for i, (agent_id, final) in enumerate(found, 1)]
        version = db.session.scalar(select(PlanVersion).limit(1))
        if version is None:
            plan_row = Plan(position_id=position_id, period_kind="monthly")
            db.session.add(plan_row)
            db.session.flush()
            version = PlanVersion(plan_id=plan_row.id, number=1, document={})
            db.session.add(version)
            db.session.flush()
        people = {a.id: db.session.get(User, a.id) for a in agents}
        found = plan(ranked, people, period=period.key)
        found.version = version
        return [found]

    monkeypatch.setattr(services, "all_results", fake_results)
    with app.app_context():
        services.ensure_period(parse_period("2026-11"))
        db.session.commit()
    return {
        "agents": agents,
        "lead": lead,
        "admin": admin,
        "stranger": stranger,
        "state": state,
    }


def _row() -> PeriodRow:
    return db.session.scalar(select(PeriodRow).where(PeriodRow.key == "2026-11"))


def _pdf_text(data: bytes) -> str:
    """The PDF's text without white space (the certificate spaces out its title)."""
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return "".join(text.split())


def test_the_close_nominates_renders_certificates_and_publishing_grants_points_once(
    app, month, runner
):
    zhang = month["agents"][0]
    with app.app_context():
        outcome = services.close_period(_row(), AFTER_CLOSE)
        assert outcome.status == "closed"
        nominated = db.session.scalars(select(Award).order_by(Award.rank)).all()
        assert [(a.agent.name, a.award_type.code, a.status) for a in nominated] == [
            ("张三", "service_star", "nominated"),
            ("李四", "service_star", "nominated"),
            ("王五", "service_star", "nominated"),
        ]
        assert all(a.pdf_path for a in nominated)  # rendered by the close
        row = _row()
        assert (row.close_step, row.close_done, row.close_total) == (None, 3, 3)
        assert db.session.scalar(select(func.count(PointsEntry.id))) == 0  # not before publish
    listed = runner.invoke(args=["awards", "list", "--period", "2026-11", "--format", "json"])
    rows = json.loads(listed.output)
    assert [r["status"] for r in rows] == ["nominated"] * 3
    first = next(r for r in rows if r["agent_no"] == zhang.agent_no)
    assert first["award"] == "service_star" and first["pdf_path"].startswith("/")
    with open(first["pdf_path"], "rb") as pdf:
        data = pdf.read()
    assert len(PdfReader(io.BytesIO(data)).pages) == 1  # one page, the frame included
    text = _pdf_text(data)
    assert "张三" in text and first["certificate_no"] in text and "服务之星" in text

    published = runner.invoke(args=["periods", "publish", "2026-11"])
    assert published.exit_code == 0, published.output
    assert "3 award(s)" in published.output
    again = runner.invoke(args=["periods", "publish", "2026-11"])
    assert again.exit_code == 1 and "already published" in again.output
    with app.app_context():
        assert balance(zhang.id) == 500
        assert db.session.scalar(select(func.count(PointsEntry.id))) == 3
        assert {a.status for a in db.session.scalars(select(Award))} == {"published"}
        kinds = db.session.scalars(
            select(Notification.kind).where(Notification.user_id == zhang.id)
        ).all()
        assert sorted(kinds) == ["award_published", "results_published"]
        assert _row().published_version == 1
    csv_out = runner.invoke(args=["awards", "list", "--period", "2026-11"]).output
    assert csv_out.splitlines()[0] == "award,agent_no,name,status,certificate_no,pdf_path"


def test_closing_a_closed_period_changes_nothing(app, month):
    with app.app_context():
        services.close_period(_row(), AFTER_CLOSE)
        before = db.session.scalar(select(func.count(Award.id)))
        outcome = services.close_period(_row(), AFTER_CLOSE + timedelta(days=1))
        assert outcome.status == "already"
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 1
        assert db.session.scalar(select(func.count(Award.id))) == before


def test_a_close_killed_while_rendering_certificates_resumes_without_duplicates(
    app, month, monkeypatch
):
    import portal.periods.services as period_services

    real = period_services.render_certificate
    calls = {"n": 0}

    def dies_on_the_second(award, now):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(award, now)

    monkeypatch.setattr(period_services, "render_certificate", dies_on_the_second)
    with app.app_context():
        with pytest.raises(KeyboardInterrupt):
            services.close_period(_row(), AFTER_CLOSE)
        db.session.rollback()
        row = _row()
        assert row.closed_at is None and row.close_step == "certificates"
        assert row.close_done == 1
        # Right away another process finds the claim alive; later it is stale and resumed.
        assert services.close_period(row, AFTER_CLOSE + timedelta(minutes=1)).status == "busy"
        later = AFTER_CLOSE + services.STALE_CLOSE + timedelta(minutes=1)
        assert services.close_period(_row(), later).status == "closed"
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 1
        assert db.session.scalar(select(func.count(ResultRow.id))) == 4
        assert db.session.scalar(select(func.count(Award.id))) == 3
        assert all(a.pdf_path for a in db.session.scalars(select(Award)))
        assert db.session.scalar(select(func.count(Notification.id))) == 1  # the admin, once


def test_a_stalled_close_taken_over_by_another_process_stops_without_finishing_twice(
    app, month, monkeypatch
):
    import portal.periods.services as period_services

    real = period_services.render_certificate
    outcomes = {}

    def stalls_while_another_takes_over(award, now):
        if "b" not in outcomes:  # process A stalls here; B finds its claim stale and finishes
            db.session.commit()  # (A holds no transaction while it stalls: SQLite's lock)

            def other():
                with app.app_context():
                    later = AFTER_CLOSE + services.STALE_CLOSE + timedelta(minutes=1)
                    outcomes["b"] = services.close_period(_row(), later).status
                    db.session.remove()

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        return real(award, now)

    monkeypatch.setattr(period_services, "render_certificate", stalls_while_another_takes_over)
    with app.app_context():
        outcomes["a"] = services.close_period(_row(), AFTER_CLOSE).status
        assert outcomes == {"b": "closed", "a": "busy"}
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 1
        assert db.session.scalar(select(func.count(Notification.id))) == 1
        from portal.audit.models import AuditEntry

        closes = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "period.close")
        ).all()
        assert closes == ["period.close"]


def test_a_close_killed_while_freezing_leaves_nothing_behind(app, month, monkeypatch):
    import portal.periods.services as period_services

    real = period_services.nominate_by_rules

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    with app.app_context():
        monkeypatch.setattr(period_services, "nominate_by_rules", dies)
        with pytest.raises(KeyboardInterrupt):
            services.close_period(_row(), AFTER_CLOSE)
        db.session.rollback()
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 0
        assert _row().close_step == "freezing"
        monkeypatch.setattr(period_services, "nominate_by_rules", real)
        later = AFTER_CLOSE + services.STALE_CLOSE + timedelta(minutes=1)
        assert services.close_period(_row(), later).status == "closed"
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 1
        assert db.session.scalar(select(func.count(Award.id))) == 3


def test_two_closers_at_once_produce_one_result_set(app, month):
    outcomes = []
    barrier = threading.Barrier(2)

    def closer():
        with app.app_context():
            barrier.wait()
            try:
                outcomes.append(services.close_period(_row(), AFTER_CLOSE).status)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=closer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) in (["busy", "closed"], ["already", "closed"])
    with app.app_context():
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 1
        assert db.session.scalar(select(func.count(ResultRow.id))) == 4
        assert db.session.scalar(select(func.count(Award.id))) == 3


def test_publishing_twice_at_once_grants_the_points_once(app, month):
    with app.app_context():
        services.close_period(_row(), AFTER_CLOSE)
    errors = []
    barrier = threading.Barrier(2)

    def publisher():
        with app.app_context():
            barrier.wait()
            try:
                services.publish_period(_row(), None, AFTER_CLOSE)
                db.session.commit()
            except Exception as exc:  # the loser: already published, or the write lock
                db.session.rollback()
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=publisher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(PointsEntry.id))) == 3
        assert db.session.scalar(select(func.sum(PointsEntry.points))) == 1500


def test_a_revision_renominates_undecided_awards_and_keeps_decided_ones(app, month):
    zhang, li, wang, zhao = month["agents"]
    with app.app_context():
        services.close_period(_row(), AFTER_CLOSE)
        admin = db.session.get(User, month["admin"].id)
        approved = db.session.scalar(select(Award).where(Award.agent_id == li.id))
        awards.decide(admin, approved, True, "", AFTER_CLOSE, published=False)
        db.session.commit()
        # After an upheld appeal: 王五 drops below 90, 赵六 rises to the top three.
        month["state"]["finals"].update({wang.id: 85.0, zhao.id: 96.0})
        services.revise_period(_row(), admin, "申诉改判", AFTER_CLOSE + timedelta(days=2))
        db.session.commit()
        status = {
            a.agent_id: (a.status, a.rank)
            for a in db.session.scalars(select(Award).where(Award.source == "rule"))
        }
        assert status[zhang.id] == ("nominated", 1)
        assert status[li.id][0] == "approved"  # decided: left as it was
        assert status[zhao.id] == ("nominated", 2)
        assert status[wang.id][0] == "rejected"
        assert _row().results_version == 2
        assert db.session.scalar(select(func.count(ResultsVersion.id))) == 2
        with pytest.raises(services.PeriodError):  # a double click: it saw version 1
            services.revise_period(_row(), admin, "再来", AFTER_CLOSE, seen=1)
        # A later version where 王五 qualifies again brings the set-aside nomination back.
        month["state"]["finals"].update({wang.id: 94.0, zhao.id: 60.0})
        services.revise_period(_row(), admin, "再次改判", AFTER_CLOSE, seen=2)
        db.session.commit()
        back = db.session.scalar(select(Award).where(Award.agent_id == wang.id))
        assert (back.status, back.results_version) == ("nominated", 3)
    client = app.test_client()
    login(client, "admin")
    page = client.get("/admin/awards?period=2026-11").get_data(True)
    assert "按第 3 版结果已不再符合评选规则" in page  # 赵六, set aside by version 3


def test_a_lead_nominates_a_team_member_with_a_citation_and_an_admin_decides(app, month):
    zhao, stranger = month["agents"][3], month["stranger"]
    with app.app_context():
        admin = db.session.get(User, month["admin"].id)
        kind = awards.define_award(admin, "金牌导师", "带教新人成绩突出", 200)
        db.session.commit()
        kind_id = kind.id
        row_id = _row().id
    client = app.test_client()
    login(client, "lead")
    page = client.get("/awards/nominate").get_data(True)
    assert "金牌导师" in page and "赵六" in page and "钱七" not in page
    form = {"period_id": row_id, "award_type_id": kind_id, "agent_id": zhao.id, "citation": ""}
    response = post(client, "/awards/nominate", form)
    assert response.status_code == 422 and "推荐理由" in response.get_data(True)
    response = post(client, "/awards/nominate", form | {"agent_id": stranger.id, "citation": "x"})
    assert response.status_code == 422 and "自己团队" in response.get_data(True)
    assert (
        post(client, "/awards/nominate", form | {"citation": "带教 3 名新人全部转正"}).status_code
        == 302
    )
    again = post(client, "/awards/nominate", form | {"citation": "再来一次"})
    assert again.status_code == 422 and "已被提名" in again.get_data(True)
    with app.app_context():
        nomination = db.session.scalar(select(Award).where(Award.award_type_id == kind_id))
        assert (nomination.source, nomination.citation) == ("lead", "带教 3 名新人全部转正")
        nomination_id = nomination.id
        services.close_period(_row(), AFTER_CLOSE)
    admin_client = app.test_client()
    login(admin_client, "admin")
    page = admin_client.get("/admin/awards?period=2026-11").get_data(True)
    assert "带教 3 名新人全部转正" in page and "组长" in page
    refused = post(admin_client, f"/admin/awards/{nomination_id}/decide", {"approve": "0"})
    assert refused.status_code == 422 and "驳回" in refused.get_data(True)
    assert (
        post(admin_client, f"/admin/awards/{nomination_id}/decide", {"approve": "1"}).status_code
        == 302
    )
    assert post(admin_client, f"/admin/periods/{row_id}/publish", {}).status_code == 302
    twice = post(admin_client, f"/admin/periods/{row_id}/publish", {})  # a double click
    assert twice.status_code == 409 and "已经发布" in twice.get_data(True)
    with app.app_context():
        assert db.session.get(Award, nomination_id).status == "published"
        assert balance(zhao.id) == 200


def test_a_rejected_nomination_is_not_published(app, month):
    with app.app_context():
        services.close_period(_row(), AFTER_CLOSE)
        admin = db.session.get(User, month["admin"].id)
        award = db.session.scalar(select(Award).where(Award.rank == 3))
        with pytest.raises(awards.AwardError):
            awards.decide(admin, award, False, " ", AFTER_CLOSE, published=False)
        awards.decide(admin, award, False, "服务投诉待查", AFTER_CLOSE, published=False)
        services.publish_period(_row(), admin, AFTER_CLOSE)
        db.session.commit()
        assert db.session.get(Award, award.id).status == "rejected"
        assert balance(award.agent_id) == 0


@pytest.fixture
def published(app, month):
    with app.app_context():
        services.close_period(_row(), AFTER_CLOSE)
        services.publish_period(_row(), None, AFTER_CLOSE)
        db.session.commit()
        star = db.session.scalar(select(Award).where(Award.rank == 1))
        return star.certificate_no, star.id


def test_certificates_download_for_the_holder_their_lead_and_admins_only(app, month, published):
    number, _award_id = published
    url = f"/certificates/{number}.pdf"
    for who, expected in [
        ("10001", 200),
        ("lead", 200),
        ("admin", 200),
        ("10002", 403),
        ("20001", 403),
    ]:
        client = app.test_client()
        login(client, who)
        response = client.get(url)
        assert response.status_code == expected, who
        if expected == 200:
            assert response.mimetype == "application/pdf"
            assert number in _pdf_text(response.data)
    client = app.test_client()
    login(client, "10001")
    assert client.get("/certificates/202611-NOSUCHNO.pdf").status_code == 404


def test_a_holder_cannot_download_before_publication(app, month):
    with app.app_context():
        services.close_period(_row(), AFTER_CLOSE)
        number = db.session.scalar(select(Award.certificate_no).where(Award.rank == 1))
    client = app.test_client()
    login(client, "10001")
    assert client.get(f"/certificates/{number}.pdf").status_code == 403
    page = client.get(f"/verify/{number}")
    assert page.status_code == 404  # not published: no such certificate yet


def test_verification_confirms_reports_unknown_and_revoked(app, month, published):
    number, award_id = published
    client = app.test_client()  # nobody logged in: the page is public
    page = client.get(f"/verify/{number}")
    assert page.status_code == 200
    text = page.get_data(True)
    assert "有效" in text and "张三" in text and "服务之星" in text and "2026-11" in text
    unknown = client.get("/verify/202611-AAAAAAAA")
    assert unknown.status_code == 404 and "不存在编号为 202611-AAAAAAAA 的证书" in unknown.get_data(
        True
    )

    admin = app.test_client()
    login(admin, "admin")
    assert post(admin, f"/admin/awards/{award_id}/revoke", {"reason": ""}).status_code == 422
    assert (
        post(admin, f"/admin/awards/{award_id}/revoke", {"reason": "数据造假"}).status_code == 302
    )
    revoked = client.get(f"/verify/{number}").get_data(True)
    assert "撤销" in revoked and "不再有效" in revoked
    holder = app.test_client()
    login(holder, "10001")
    assert "已撤销" in _pdf_text(holder.get(f"/certificates/{number}.pdf").data)
    with app.app_context():
        award = db.session.get(Award, award_id)
        assert (award.status, award.revoke_reason) == ("revoked", "数据造假")
        entries = db.session.scalars(
            select(PointsEntry)
            .where(PointsEntry.user_id == award.agent_id)
            .order_by(PointsEntry.id)
        ).all()
        assert [(e.source, e.points) for e in entries] == [("award", 500), ("award_revoked", -500)]
        assert balance(award.agent_id) == 0


def test_the_points_ledger_is_append_only(app, month, published):
    with app.app_context():
        entry = db.session.scalar(select(PointsEntry).limit(1))
        entry.points = 1_000_000
        with pytest.raises(LedgerIsAppendOnly):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(LedgerIsAppendOnly):
            db.session.delete(db.session.scalar(select(PointsEntry).limit(1)))
            db.session.flush()


def test_admins_download_every_certificate_of_a_period_as_a_zip(app, month, published):
    client = app.test_client()
    login(client, "admin")
    response = client.get("/admin/awards/2026-11/certificates.zip")
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert len(names) == 3 and all(n.startswith("service_star-") for n in names)
    assert client.get("/admin/awards/2030-01/certificates.zip").status_code == 404


def test_admins_define_custom_awards_with_checked_fields(app, month):
    client = app.test_client()
    login(client, "admin")
    assert post(client, "/admin/award-types", {"name": "", "points": "10"}).status_code == 422
    bad = post(client, "/admin/award-types", {"name": "微笑天使", "points": "-5"})
    assert bad.status_code == 422 and "积分" in bad.get_data(True)
    assert (
        post(client, "/admin/award-types", {"name": "微笑天使", "points": "100"}).status_code == 302
    )
    page = client.get("/admin/award-types").get_data(True)
    assert "微笑天使" in page
    assert client.get("/admin/awards?period=2099-13").status_code == 404  # mistyped key


def test_approving_after_a_revision_waits_for_that_versions_publication(app, month):
    zhao_id = month["agents"][3].id
    with app.app_context():
        services.close_period(_row(), AFTER_CLOSE)
        services.publish_period(_row(), None, AFTER_CLOSE)
        admin = db.session.get(User, month["admin"].id)
        month["state"]["finals"].update({zhao_id: 99.0})  # an appeal lifts 赵六 to the top
        services.revise_period(_row(), admin, "申诉改判", AFTER_CLOSE, seen=1)
        db.session.commit()
        award_id = db.session.scalar(select(Award.id).where(Award.agent_id == zhao_id))
    client = app.test_client()
    login(client, "admin")
    assert post(client, f"/admin/awards/{award_id}/decide", {"approve": "1"}).status_code == 302
    with app.app_context():
        assert db.session.get(Award, award_id).status == "approved"  # v2 is not published yet
        assert balance(zhao_id) == 0
        services.publish_period(_row(), None, AFTER_CLOSE)
        db.session.commit()
        assert db.session.get(Award, award_id).status == "published"
        assert balance(zhao_id) == 500


def test_the_scheduler_renders_certificates_still_missing(app, month, published):
    _number, award_id = published
    with app.app_context():
        admin = db.session.get(User, month["admin"].id)
        awards.revoke(admin, db.session.get(Award, award_id), "重复计分", AFTER_CLOSE)
        db.session.commit()
        assert db.session.get(Award, award_id).pdf_path is None
        assert services.render_pending_certificates(AFTER_CLOSE) == 1
        assert services.render_pending_certificates(AFTER_CLOSE) == 0  # nothing twice
        award = db.session.get(Award, award_id)
        from portal.awards.certificates import folder

        text = _pdf_text((folder() / award.pdf_path).read_bytes())
        assert "已撤销" in text and award.certificate_no in text
