"""Every metric at agent, team and queue level against values computed by hand from metrics.md.

The scenario (Asia/Shanghai, FCR window 72 h, short abandon 5 s, service level 20 s):

  id   agent queue offered (local)        wait talk wrap customer notes
  i1   A     Q1    11-03 09:00:00          10   300  30  c1       repeat: i3 (72 h − 1 s later)
  i2   A     Q1    11-03 10:00:00 (naive)  30   200  20  c2       resolved = 0
  i3   A     Q1    11-06 09:05:09           5   100   0  c1
  i4   B     Q2    11-04 23:59:50          15   400   0  c3       transferred; no repeat:
  i5   B     Q2    11-08 00:06:46          25   300  60  c3         i5 is 72 h + 1 s later
  i6   B     Q2    11-05 12:00:00          40 unanswered            rang at B
  i7   -     Q1    11-05 12:00:00           3 abandoned             short abandon
  i8   -     Q1    11-05 12:00:00          30 abandoned
  i9   A     Q1    10-31 23:59:59           1    60   0           October
  i10  A     Q1    10-31 16:30:00Z = 11-01 00:30 local  2  60  0 c9  November
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from portal.accounts.models import Role
from portal.extensions import db
from portal.metrics import compute
from portal.metrics.models import Interaction
from portal.metrics.periods import parse_period

INTERACTIONS = """interaction_id,channel,queue,agent_no,offered_at,answered_at,ended_at,wrap_seconds,hold_seconds,customer_key,transferred,resolved
i1,phone,Q1,A,2026-11-03T09:00:00+08:00,2026-11-03T09:00:10+08:00,2026-11-03T09:05:10+08:00,30,0,c1,0,
i2,phone,Q1,A,2026-11-03 10:00:00,2026-11-03 10:00:30,2026-11-03 10:03:50,20,5,c2,0,0
i3,chat,Q1,A,2026-11-06T09:05:09+08:00,2026-11-06T09:05:14+08:00,2026-11-06T09:06:54+08:00,0,0,c1,0,1
i4,phone,Q2,B,2026-11-04T23:59:50+08:00,2026-11-05T00:00:05+08:00,2026-11-05T00:06:45+08:00,0,0,c3,1,
i5,phone,Q2,B,2026-11-08T00:06:46+08:00,2026-11-08T00:07:11+08:00,2026-11-08T00:12:11+08:00,60,0,c3,0,
i6,phone,Q2,B,2026-11-05T12:00:00+08:00,,2026-11-05T12:00:40+08:00,,,c4,,
i7,phone,Q1,,2026-11-05T12:00:00+08:00,,2026-11-05T12:00:03+08:00,,,,,
i8,phone,Q1,,2026-11-05T12:00:00+08:00,,2026-11-05T12:00:30+08:00,,,,,
i9,phone,Q1,A,2026-10-31T23:59:59+08:00,2026-11-01T00:00:00+08:00,2026-11-01T00:01:00+08:00,0,0,,0,
i10,phone,Q1,A,2026-10-31T16:30:00Z,2026-10-31T16:30:02Z,2026-10-31T16:31:02Z,0,0,c9,0,
"""
SURVEYS = """survey_id,interaction_id,csat,nps,submitted_at,comment
s1,i1,5,10,2026-11-03T12:00:00+08:00,很好
s2,i1,3,6,2026-11-04T12:00:00+08:00,
s3,i2,4,8,2026-11-03T12:00:00+08:00,<script>alert(1)</script>
s4,i4,2,0,2026-11-05T12:00:00+08:00,
s5,i6,5,,2026-11-05T13:00:00+08:00,rang unanswered: not counted
"""
QA = """evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line
e1,i1,QA1,80,2026-11-04T10:00:00+08:00,0
e2,i3,QA1,90,2026-11-07T10:00:00+08:00,0
e3,i4,QA1,70,2026-11-06T10:00:00+08:00,1
"""
VALUES = """agent_no,period,metric_code,value
A,2026-11,knowledge_contrib,3
B,2026-11,brand_sentiment,88
"""


@pytest.fixture
def scenario(app, runner, tmp_path, make_user, make_team):
    lead = make_user({Role.TEAM_LEAD}, agent_no="L1")
    one = make_team("一组", leads=[lead])
    two = make_team("二组")
    make_user({Role.AGENT}, agent_no="A", name="王芳", team=one)
    make_user({Role.AGENT}, agent_no="B", name="李娜", team=one)
    make_user({Role.AGENT}, agent_no="C", name="张伟", team=two)
    make_user({Role.QA}, agent_no="QA1")
    for kind, text in [
        ("interactions", INTERACTIONS),
        ("surveys", SURVEYS),
        ("qa", QA),
        ("metric-values", VALUES),
    ]:
        path = tmp_path / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(args=["import", kind, str(path)])
        assert result.exit_code == 0, result.output
    return tmp_path


def _export(runner, level: str, period: str = "2026-11", fmt: str = "csv"):
    result = runner.invoke(
        args=["metrics", "export", "--period", period, "--level", level, "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    if fmt == "json":
        return {row["key"]: row for row in json.loads(result.output)}
    return {row["key"]: row for row in csv.DictReader(io.StringIO(result.output))}


def test_agent_metrics_match_the_hand_computed_values(scenario, runner):
    rows = _export(runner, "agent")
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert list(a)[:4] == ["period", "level", "key", "name"]
    assert list(a)[4:] == list(compute.AGENT_CODES)
    assert a["name"] == "王芳" and a["period"] == "2026-11" and a["level"] == "agent"
    assert a["handled"] == "4"  # i1 i2 i3 i10; i9 is October's
    assert a["agent_answer_rate"] == "1"
    assert a["aht"] == "177.5"  # (330 + 220 + 100 + 60) / 4
    assert a["asa"] == "11.75"  # (10 + 30 + 5 + 2) / 4
    assert a["fcr"] == "0.5"  # i1 has a repeat, i2 resolved = 0
    assert a["transfer_rate"] == "0"
    assert a["csat"] == "0.6667"  # 5, 3, 4 → 2 of 3 at 4 or more
    assert a["nps"] == "0"  # 10, 6, 8 → 1 promoter − 1 detractor over 3
    assert a["qa_score"] == "85"
    assert a["resolved_per_hour"] == "10.1408"  # 2 / (710 s / 3600)
    assert a["knowledge_contrib"] == "3"
    assert a["training_completion"] == a["peer_score"] == a["brand_sentiment"] == ""

    assert b["handled"] == "2" and b["agent_answer_rate"] == "0.6667"  # i6 rang unanswered
    assert b["aht"] == "380" and b["asa"] == "20"
    assert b["fcr"] == "1"  # i5 came 72 h + 1 s after i4 ended: outside the window
    assert b["transfer_rate"] == "0.5"
    assert b["csat"] == "0" and b["nps"] == "-100"  # the survey of unanswered i6 is left out
    assert b["qa_score"] == "70" and b["brand_sentiment"] == "88"

    # No data is no value, never 0.
    assert all(c[code] == "" for code in compute.AGENT_CODES)


def test_team_metrics_pool_the_members_interactions(scenario, runner):
    rows = _export(runner, "team")
    one, two = rows["一组"], rows["二组"]
    assert list(one)[4:] == list(compute.POOLED_CODES)
    assert one["offered"] == "7" and one["handled"] == "6"
    assert one["answer_rate"] == "0.8571"  # 6 / 7
    assert one["abandon_rate"] == "0.1429"  # i6
    assert one["service_level"] == "0.5714"  # i1 i3 i10 i4 within 20 s
    assert one["asa"] == "14.5"  # (47 + 40) / 6
    assert one["aht"] == "245"  # (710 + 760) / 6, not the mean of the members' AHT
    assert one["fcr"] == "0.6667" and one["csat"] == "0.5" and one["nps"] == "-25"
    assert one["qa_score"] == "80"
    assert one["knowledge_contrib"] == "3" and one["brand_sentiment"] == "88"
    assert all(two[code] == "" for code in compute.POOLED_CODES)


def test_queue_metrics_leave_out_short_abandons(scenario, runner):
    rows = _export(runner, "queue")
    q1, q2 = rows["Q1"], rows["Q2"]
    assert q1["offered"] == "5"  # 6 interactions less i7, the short abandon
    assert q1["answer_rate"] == "0.8" and q1["abandon_rate"] == "0.2"
    assert q1["service_level"] == "0.6" and q1["asa"] == "11.75"
    assert q2["offered"] == "3" and q2["answer_rate"] == "0.6667"
    assert q2["abandon_rate"] == "0.3333" and q2["service_level"] == "0.3333"
    assert q2["asa"] == "20"


def test_interactions_belong_to_the_local_day_and_period_they_were_offered(scenario, app, runner):
    october = _export(runner, "agent", period="2026-10")
    assert october["A"]["handled"] == "1"  # i9: 23:59:59 local on 31 October
    with app.app_context():
        days = {i.source_id: i.offered_day for i in db.session.query(Interaction).all()}
        assert str(days["i4"]) == "2026-11-04"  # 23:59:50 local, answered after midnight
        assert str(days["i10"]) == "2026-11-01"  # 16:30 UTC is 00:30 in Shanghai
        assert str(days["i2"]) == "2026-11-03"  # naive: read in PORTAL_TIMEZONE
        agent = db.session.query(Interaction).filter_by(source_id="i1").one().agent
        daily = compute.agent_daily(parse_period("2026-11"), agent)
        assert {str(d): m.values["handled"] for d, m in daily.items()} == {
            "2026-11-01": 1,
            "2026-11-03": 2,
            "2026-11-06": 1,
        }


def test_json_export_carries_values_and_samples(scenario, runner):
    rows = _export(runner, "agent", fmt="json")
    a = rows["A"]
    assert a["period"] == "2026-11" and a["level"] == "agent" and a["name"] == "王芳"
    assert a["metrics"]["aht"] == 177.5 and a["metrics"]["csat"] == 0.6667
    assert a["metrics"]["peer_score"] is None
    assert a["samples"]["csat"] == 3 and a["samples"]["qa_score"] == 2
    assert a["samples"]["handled"] == 4
    assert rows["C"]["metrics"]["handled"] is None


def test_reimporting_the_same_files_changes_nothing(scenario, runner):
    before = [_export(runner, level) for level in ("agent", "team", "queue")]
    for kind in ("interactions", "surveys", "qa", "metric-values"):
        result = runner.invoke(args=["import", kind, str(scenario / f"{kind}.csv")])
        assert result.exit_code == 0
        assert "inserted: 0  updated: 0" in result.output, result.output
    assert [_export(runner, level) for level in ("agent", "team", "queue")] == before


def test_a_later_import_updates_metrics_of_earlier_days(scenario, runner, tmp_path):
    """A new contact from c2 within 72 h of i2 gives i2 a repeat: A's FCR drops."""
    path = tmp_path / "later.csv"
    path.write_text(
        "interaction_id,queue,agent_no,offered_at,answered_at,ended_at,customer_key\n"
        "i11,Q1,B,2026-11-04T10:00:00+08:00,2026-11-04T10:00:05+08:00,"
        "2026-11-04T10:01:05+08:00,c1\n",
        encoding="utf-8",
    )
    assert runner.invoke(args=["import", "interactions", str(path)]).exit_code == 0
    rows = _export(runner, "agent")
    # i11 (B) is a repeat for i1 as well, already counted; i3's c1 repeat i11 is before it.
    assert rows["A"]["fcr"] == "0.5"
    assert rows["B"]["handled"] == "3"
    path.write_text(
        "interaction_id,queue,agent_no,offered_at,answered_at,ended_at,customer_key\n"
        "i12,Q2,B,2026-11-09T09:00:00+08:00,2026-11-09T09:00:05+08:00,"
        "2026-11-09T09:01:05+08:00,c1\n",
        encoding="utf-8",
    )
    assert runner.invoke(args=["import", "interactions", str(path)]).exit_code == 0
    # i12 is within 72 h of i3 (ended 11-06 09:06:54): i3 now has a repeat.
    assert _export(runner, "agent")["A"]["fcr"] == "0.25"


def _import_text(runner, tmp_path, text: str, name: str = "more.csv", kind="interactions"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["import", kind, str(path)])
    assert result.exit_code == 0, result.output
    return result


def test_moving_a_contact_away_gives_the_earlier_one_its_fcr_back(scenario, runner, tmp_path):
    """i3 (c1) is i1's repeat, 72 h − 1 s after i1 ended. Sent again 2 s later and for
    agent B, it is outside i1's window: i1 counts as resolved, and A's daily sums lose i3."""
    assert _export(runner, "agent")["A"]["fcr"] == "0.5"
    moved = INTERACTIONS.splitlines()[3].replace("09:05:09", "09:05:11").replace(",A,", ",B,")
    assert moved.startswith("i3,")
    result = _import_text(runner, tmp_path, INTERACTIONS.splitlines()[0] + "\n" + moved + "\n")
    assert "inserted: 0  updated: 1" in result.output
    rows = _export(runner, "agent")
    # A: i1 resolved (no repeat now), i2 resolved = 0, i10 resolved.
    assert rows["A"]["handled"] == "3" and rows["A"]["fcr"] == "0.6667"
    assert rows["B"]["handled"] == "3"


def test_repeats_are_strictly_after_the_end_and_at_most_the_window_later(
    scenario, runner, tmp_path
):
    """Agent C, customers seen only here:
    x1 09:00–09:30 with x2 offered during it (09:10) and x3 a day later: x1 and x2 repeat;
    y1 with only an overlapping y2: neither repeats;
    z2 offered at the very second z1 ended: not a repeat;
    w2 offered exactly 72 h after w1 ended: a repeat."""
    header = INTERACTIONS.splitlines()[0]
    rows = [
        ("x1", "2026-11-10T09:00:00", "2026-11-10T09:00:00", "2026-11-10T09:30:00", "k1"),
        ("x2", "2026-11-10T09:10:00", "2026-11-10T09:10:00", "2026-11-10T09:12:00", "k1"),
        ("x3", "2026-11-11T09:00:00", "2026-11-11T09:00:00", "2026-11-11T09:01:00", "k1"),
        ("y1", "2026-11-12T09:00:00", "2026-11-12T09:00:00", "2026-11-12T09:30:00", "k2"),
        ("y2", "2026-11-12T09:10:00", "2026-11-12T09:10:00", "2026-11-12T09:12:00", "k2"),
        ("z1", "2026-11-14T09:00:00", "2026-11-14T09:00:00", "2026-11-14T10:00:00", "k3"),
        ("z2", "2026-11-14T10:00:00", "2026-11-14T10:00:00", "2026-11-14T10:05:00", "k3"),
        ("w1", "2026-11-20T09:00:00", "2026-11-20T09:00:00", "2026-11-20T10:00:00", "k4"),
        ("w2", "2026-11-23T10:00:00", "2026-11-23T10:00:00", "2026-11-23T10:05:00", "k4"),
    ]
    text = (
        header
        + "\n"
        + "".join(
            f"{i},phone,Q3,C,{o}+08:00,{a}+08:00,{e}+08:00,0,0,{k},0,\n" for i, o, a, e, k in rows
        )
    )
    _import_text(runner, tmp_path, text)
    with_repeats = {"x1", "x2", "w1"}
    assert _export(runner, "agent")["C"]["fcr"] == f"{(9 - len(with_repeats)) / 9:.4f}"
    with runner.app.app_context():
        from sqlalchemy import select

        from portal.metrics.models import InteractionRepeat

        stored = db.session.scalars(
            select(Interaction.source_id).join(
                InteractionRepeat, InteractionRepeat.interaction_id == Interaction.id
            )
        )
        assert set(stored) == with_repeats | {"i1"}


def test_an_id_twice_in_a_file_is_caught_across_batches(app, runner, tmp_path, monkeypatch):
    """The first attempt writes as if every row were new; the database's refusal of the
    second g1 sends the file through the careful path, which names the row."""
    from sqlalchemy import func, select

    from portal.metrics import ingest
    from portal.metrics.models import ImportRecord

    monkeypatch.setattr(ingest, "FAST_BATCH", 2)
    monkeypatch.setattr(ingest, "COPY_BATCH", 2)
    monkeypatch.setattr(ingest, "BATCH", 2)
    header = "interaction_id,offered_at,ended_at\n"
    body = "".join(
        f"{i},2026-11-03T09:0{n}:00+08:00,2026-11-03T09:0{n}:30+08:00\n"
        for n, i in enumerate(["g1", "g2", "g3", "g1", "g4"])
    )
    path = tmp_path / "twice.csv"
    path.write_text(header + body, encoding="utf-8")
    refused = runner.invoke(args=["import", "interactions", str(path)])
    assert refused.exit_code == 1
    assert "Row 5: g1 already appears in row 2 of this file" in refused.output
    kept = runner.invoke(args=["import", "interactions", str(path), "--valid-only"])
    assert kept.exit_code == 0
    assert "inserted: 4  updated: 0  unchanged: 0  rejected: 1" in kept.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Interaction.id))) == 4
        # One record per run: the first attempt's own record went with it.
        statuses = db.session.scalars(select(ImportRecord.status).order_by(ImportRecord.id))
        assert list(statuses) == ["rejected", "committed"]


def test_daily_sums_kept_by_imports_equal_a_full_rebuild(scenario, app, runner, tmp_path):
    """New interactions are added to the days' sums (they have no ratings yet); changed ones
    rebuild theirs. Either way the sums must be what recomputing everything gives."""
    from sqlalchemy import select

    from portal.metrics import stats
    from portal.metrics.models import DayStats

    header = INTERACTIONS.splitlines()[0]
    _import_text(  # new contacts on days and queues that already have sums, and repeats
        runner,
        tmp_path,
        header + "\n"
        "n1,phone,Q1,A,2026-11-03T11:00:00+08:00,2026-11-03T11:00:04+08:00,"
        "2026-11-03T11:02:00+08:00,5,0,c2,0,1\n"
        "n2,chat,Q2,B,2026-11-05T12:30:00+08:00,,2026-11-05T12:30:02+08:00,,,,,\n"
        "n3,phone,Q9,,2026-11-20T08:00:00+08:00,,2026-11-20T08:00:30+08:00,,,,,\n"
        # c3 calls C a day after i5 (B's, 11-08, a first-contact resolution until now): B's
        # 11-08 is a day this import does not touch, whose sums must change all the same.
        "n4,phone,Q2,C,2026-11-09T10:00:00+08:00,2026-11-09T10:00:05+08:00,"
        "2026-11-09T10:01:00+08:00,0,0,c3,0,1\n",
    )
    assert _export(runner, "agent")["B"]["fcr"] == "0.5"  # i4 still, i5 no longer
    _import_text(  # a changed one: i4 moves to another agent and queue
        runner,
        tmp_path,
        header + "\n" + INTERACTIONS.splitlines()[4].replace(",Q2,B,", ",Q3,A,") + "\n",
        name="changed.csv",
    )

    def sums():
        rows = db.session.execute(select(DayStats)).scalars()
        return sorted(
            (r.day, r.agent_id or 0, r.queue, *(round(getattr(r, c), 6) for c in stats.SUM_COLUMNS))
            for r in rows
        )

    with app.app_context():
        kept = sums()
        stats.rebuild_all()
        assert kept == sums()
        db.session.rollback()


def test_a_rating_moved_to_another_interaction_leaves_the_old_day(
    scenario, app, runner, tmp_path, monkeypatch
):
    """A survey or evaluation sent again naming another interaction: the day it rated before
    loses it (B's i4 was rated by s4 and e3; both now rate A's i2). The old interactions are
    looked up a few at a time (here one), however many moved."""
    from sqlalchemy import select

    from portal.metrics import stats
    from portal.metrics.models import DayStats

    def kept_sums_are_rebuilt_sums() -> bool:
        def sums():
            rows = db.session.scalars(select(DayStats))
            columns = stats.SUM_COLUMNS
            return sorted(
                (r.day, r.agent_id or 0, r.queue, *map(r.__getattribute__, columns)) for r in rows
            )

        with app.app_context():
            kept = sums()
            stats.rebuild_all()
            rebuilt = sums()
            db.session.rollback()
        return kept == rebuilt

    monkeypatch.setattr(stats, "IDS_AT_A_TIME", 1)
    _import_text(
        runner,
        tmp_path,
        "survey_id,interaction_id,csat,nps,submitted_at,comment\n"
        "s3,i3,4,8,2026-11-03T12:00:00+08:00,\n"  # A's i2 → A's i3, three days later
        "s4,i2,2,0,2026-11-05T12:00:00+08:00,\n",
        kind="surveys",
    )
    assert _export(runner, "agent")["B"]["csat"] == ""  # i6's survey never counted
    assert kept_sums_are_rebuilt_sums()
    _import_text(
        runner,
        tmp_path,
        "evaluation_id,interaction_id,evaluator_no,score,evaluated_at,red_line\n"
        "e3,i2,QA1,70,2026-11-06T10:00:00+08:00,1\n",
        kind="qa",
        name="qa.csv",
    )
    b = _export(runner, "agent")["B"]
    assert b["csat"] == b["nps"] == b["qa_score"] == ""
    assert kept_sums_are_rebuilt_sums()


def test_a_rebuild_after_the_time_zone_changed_gives_every_interaction_its_new_day(
    scenario, app, runner, monkeypatch
):
    """Interactions keep their instants; `flask metrics rebuild` after PORTAL_TIMEZONE changed
    gives each the local day of the new zone, and every metric follows."""
    from sqlalchemy import select

    monkeypatch.setitem(app.config, "PORTAL_TIMEZONE", "UTC")
    result = runner.invoke(args=["metrics", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "2 interaction(s) moved to another day" in result.output  # i5 and i10
    with app.app_context():
        days = dict(
            db.session.execute(select(Interaction.source_id, Interaction.offered_day)).all()
        )
    assert str(days["i10"]) == "2026-10-31"  # 16:30 UTC; in Shanghai 00:30 the next day
    assert str(days["i5"]) == "2026-11-07"  # 00:06 in Shanghai, 16:06 the day before in UTC
    assert str(days["i2"]) == "2026-11-03"  # naive 10:00 in Shanghai: 02:00 UTC, same day
    assert str(days["i9"]) == "2026-10-31" and str(days["i4"]) == "2026-11-04"
    assert _export(runner, "agent")["A"]["handled"] == "3"  # i10 is October's now
    assert _export(runner, "agent", period="2026-10")["A"]["handled"] == "2"  # i9 and i10
    again = runner.invoke(args=["metrics", "rebuild"])
    assert "0 interaction(s) moved to another day" in again.output


def test_local_days_of_a_rebuild_are_the_importers_across_daylight_saving_changes(
    app, runner, tmp_path, monkeypatch
):
    """Havana skips its midnight on 8 March 2026 (00:00 → 01:00) and has two on 1 November
    (01:00 → 00:00): times around both, imported there, then re-dated from another zone back
    to Havana, land on the importer's days."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    monkeypatch.setitem(app.config, "PORTAL_TIMEZONE", "America/Havana")
    instants = [1772946000 + d for d in (-3601, -1, 0, 1, 3599, 3600)]
    instants += [1793505600 + d for d in (-1, 0, 3599, 3600, 3601, 89999, 90000)]
    rows = [
        f"h{n},phone,Q1,,{datetime.fromtimestamp(s, UTC).isoformat()},,"
        f"{datetime.fromtimestamp(s + 10, UTC).isoformat()},,,,,"
        for n, s in enumerate(instants)
    ]
    _import_text(runner, tmp_path, INTERACTIONS.splitlines()[0] + "\n" + "\n".join(rows) + "\n")

    def days():
        with app.app_context():
            return dict(
                db.session.execute(select(Interaction.source_id, Interaction.offered_day)).all()
            )

    imported = days()
    assert {str(imported["h1"]), str(imported["h2"])} == {"2026-03-07", "2026-03-08"}
    monkeypatch.setitem(app.config, "PORTAL_TIMEZONE", "Asia/Tokyo")
    assert runner.invoke(args=["metrics", "rebuild"]).exit_code == 0
    assert days() != imported
    monkeypatch.setitem(app.config, "PORTAL_TIMEZONE", "America/Havana")
    assert runner.invoke(args=["metrics", "rebuild"]).exit_code == 0
    assert days() == imported
