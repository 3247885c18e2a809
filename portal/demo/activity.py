"""Demo activity: months of interactions, surveys, QA evaluations and supplied values.

Each agent gets traits (volume, handle time, first-contact resolution, satisfaction, QA
level) so that the people differ the way real teams do. Everything goes through the
regular import pipeline, exactly as a real file would.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.accounts.models import Role, User, UserRole
from portal.extensions import db
from portal.metrics.ingest import INTERACTION_COLUMNS, run_import
from portal.metrics.messages import shown

# position -> (queues, channel, contacts a day, mean handle seconds)
PROFILES = {
    "电话客服": (("售前热线", "售后热线"), "phone", (28, 45), (260, 420)),
    "技术支持": (("技术支持",), "phone", (12, 20), (420, 720)),
    "社交媒体客服": (("微博微信",), "social", (25, 40), (150, 300)),
}


@dataclass
class Traits:
    volume: int
    handle: float
    fcr: float
    csat: float
    transfer: float
    qa: float
    answer: float


def _traits(rng: random.Random, position: str) -> Traits:
    _, _, volume, handle = PROFILES.get(position, PROFILES["电话客服"])
    return Traits(
        volume=rng.randint(*volume),
        handle=rng.uniform(*handle),
        fcr=rng.uniform(0.62, 0.9),
        # Most agents meet the quality thresholds of the default plans; about one in seven
        # struggles, so the quality gate and coaching have something true to show.
        csat=rng.uniform(0.83, 0.97) if rng.random() > 0.15 else rng.uniform(0.74, 0.83),
        transfer=rng.uniform(0.02, 0.12),
        qa=rng.uniform(76, 96) if rng.random() > 0.15 else rng.uniform(66, 78),
        answer=rng.uniform(0.95, 0.995),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def generate(agents: list[User], first: date, last: date, tz: ZoneInfo, seed: int = 7):
    """CSV texts (interactions, surveys, qa, metric values) for `agents` over `first`..`last`.

    Nothing happens after `last`: a customer's call back, a survey answer or a QA evaluation
    that would come later has not happened yet, and is left out."""
    rng = random.Random(seed)
    until = datetime.combine(last + timedelta(days=1), time(0), tz)
    calls = io.StringIO()
    surveys = io.StringIO()
    evaluations = io.StringIO()
    values = io.StringIO()
    cw, sw, qw, vw = (
        csv.writer(f, lineterminator="\n") for f in (calls, surveys, evaluations, values)
    )
    cw.writerow(INTERACTION_COLUMNS)
    sw.writerow(["survey_id", "interaction_id", "csat", "nps", "submitted_at", "comment"])
    qw.writerow(
        ["evaluation_id", "interaction_id", "evaluator_no", "score", "evaluated_at", "red_line"]
    )
    vw.writerow(["agent_no", "period", "metric_code", "value"])
    qa_staff = [
        u.agent_no
        for u in db.session.scalars(
            select(User).where(
                User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.QA.value))
            )
        )
    ] or [None]
    comments = ["回复很耐心", "问题解决了,谢谢", "等待时间有点长", "态度很好", "还需要再打一次", ""]
    seq = 0
    for agent in agents:
        position = agent.position.name if agent.position else "电话客服"
        queues, channel, _, _ = PROFILES.get(position, PROFILES["电话客服"])
        t = _traits(rng, position)
        start = max(first, agent.hire_date or first)
        day = start
        while day <= last:
            weekend = day.weekday() >= 5
            count = max(0, int(rng.gauss(t.volume * (0.55 if weekend else 1), 4)))
            for _ in range(count):
                seq += 1
                iid = f"D{seq:07d}"
                moment = datetime.combine(day, time(8, 0), tz) + timedelta(
                    seconds=rng.randint(0, 13 * 3600)
                )
                queue = rng.choice(queues)
                wait = max(1.0, rng.expovariate(1 / 14))
                customer = f"C{rng.randint(1, 400000):06d}"
                if rng.random() > t.answer:  # rang at the agent, not picked up
                    cw.writerow(
                        [
                            iid,
                            channel,
                            queue,
                            agent.agent_no,
                            _iso(moment),
                            "",
                            _iso(moment + timedelta(seconds=wait + 15)),
                            "",
                            "",
                            customer,
                            "",
                            "",
                        ]
                    )
                    continue
                answered = moment + timedelta(seconds=wait)
                talk = max(30.0, rng.gauss(t.handle * 0.85, t.handle * 0.25))
                wrap = max(0.0, rng.gauss(t.handle * 0.15, 15))
                ended = answered + timedelta(seconds=talk)
                resolved = "" if rng.random() < 0.3 else ("1" if rng.random() < t.fcr else "0")
                cw.writerow(
                    [
                        iid,
                        channel,
                        queue,
                        agent.agent_no,
                        _iso(moment),
                        _iso(answered),
                        _iso(ended),
                        round(wrap),
                        rng.choice([0, 0, 0, 20, 45]),
                        customer,
                        "1" if rng.random() < t.transfer else "0",
                        resolved,
                    ]
                )
                if rng.random() > t.fcr:  # the customer comes back within a few days
                    seq += 1
                    back = ended + timedelta(hours=rng.uniform(1, 60))
                    b_wait = max(1.0, rng.expovariate(1 / 14))
                    b_talk = max(30.0, rng.gauss(t.handle, 60))
                    b_ended = back + timedelta(seconds=b_wait + b_talk)
                    if b_ended < until:
                        cw.writerow(
                            [
                                f"D{seq:07d}",
                                channel,
                                queue,
                                agent.agent_no,
                                _iso(back),
                                _iso(back + timedelta(seconds=b_wait)),
                                _iso(b_ended),
                                20,
                                0,
                                customer,
                                "0",
                                "1",
                            ]
                        )
                if rng.random() < 0.18:
                    happy = rng.random() < t.csat
                    csat = rng.choice([4, 5]) if happy else rng.choice([1, 2, 3])
                    nps = rng.choice([8, 9, 10, 10]) if happy else rng.randint(0, 7)
                    comment = rng.choice(comments)
                    submitted = ended + timedelta(hours=2)
                    if submitted < until:
                        sw.writerow([f"S{iid}", iid, csat, nps, _iso(submitted), comment])
                if rng.random() < 0.04:
                    score = max(0, min(100, round(rng.gauss(t.qa, 6))))
                    evaluator = rng.choice(qa_staff)
                    red_line = "1" if score < 55 and rng.random() < 0.5 else "0"
                    evaluated = ended + timedelta(days=1)
                    if evaluated < until:
                        qw.writerow([f"Q{iid}", iid, evaluator, score, _iso(evaluated), red_line])
            day += timedelta(days=1)
        month = date(first.year, first.month, 1)
        while month <= last:
            key = f"{month.year:04d}-{month.month:02d}"
            if position == "技术支持":
                vw.writerow([agent.agent_no, key, "knowledge_contrib", rng.randint(0, 12)])
            if position == "社交媒体客服":
                vw.writerow([agent.agent_no, key, "brand_sentiment", round(rng.uniform(62, 95), 1)])
                vw.writerow(
                    [agent.agent_no, key, "soothing_rate", round(rng.uniform(0.6, 0.95), 3)]
                )
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    # Callers who hung up in the queue before anyone answered.
    for day_offset in range((last - first).days + 1):
        day = first + timedelta(days=day_offset)
        for _ in range(rng.randint(15, 40)):
            seq += 1
            moment = datetime.combine(day, time(8, 0), tz) + timedelta(
                seconds=rng.randint(0, 13 * 3600)
            )
            waited = rng.choice([2, 3, 4, 8, 25, 40, 75, 120])
            cw.writerow(
                [
                    f"D{seq:07d}",
                    "phone",
                    rng.choice(("售前热线", "售后热线")),
                    "",
                    _iso(moment),
                    "",
                    _iso(moment + timedelta(seconds=waited)),
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
    return calls.getvalue(), surveys.getvalue(), evaluations.getvalue(), values.getvalue()


def seed_activity(today: date, tz: ZoneInfo, days: int | None = None) -> dict[str, int]:
    """Import demo activity up to yesterday: the last `days` days, or by default from the
    first day of the month two months ago (two whole months and the current one)."""
    last = today - timedelta(days=1)
    if days is None:
        month = today.month - 2
        year = today.year + (month - 1) // 12
        first = date(year, (month - 1) % 12 + 1, 1)
    else:
        first = today - timedelta(days=days)
    agents = db.session.scalars(
        select(User)
        .where(User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.AGENT.value)))
        .order_by(User.agent_no)
    ).all()
    counts = {}
    for kind, text in zip(
        ("interactions", "surveys", "qa", "metric-values"),
        generate(agents, first, last, tz),
        strict=True,
    ):
        record = run_import(
            kind, io.BytesIO(text.encode()), filename=f"demo-{kind}.csv", door="demo"
        )
        if record.status != "committed":
            raise RuntimeError(f"demo {kind} import refused: {shown(record.message)}")
        counts[kind] = record.inserted + record.updated
    return counts


def seed_qa_activity(now: datetime) -> dict[str, int]:
    """Portal QA evaluations of last week for the first agent of each phone team, through the
    rubric; agent 10001 has an open appeal and another agent's appeal is decided, so the QA
    and appeal screens have something true to show."""
    from portal.metrics.models import Interaction
    from portal.qa import services as qa

    evaluator = db.session.scalar(select(User).where(User.agent_no == "30001"))
    lead = db.session.scalar(select(User).where(User.agent_no == "30010"))
    made = appealed = 0
    for agent_no, appeal in (("10001", "open"), ("10011", "decided"), ("10002", None)):
        agent = db.session.scalar(select(User).where(User.agent_no == agent_no))
        rubric = qa.rubric_of(agent.position) if agent and agent.position else None
        if evaluator is None or rubric is None:
            continue
        calls = db.session.scalars(
            select(Interaction)
            .where(
                Interaction.agent_id == agent.id,
                Interaction.talk_s.is_not(None),
                Interaction.offered_s <= (now - timedelta(days=3)).timestamp(),
            )
            .order_by(Interaction.offered_s.desc())
            .limit(2)
        ).all()
        for n, call in enumerate(calls):
            levels = {
                i["code"]: i["levels"][n % 2]["points"] for i in rubric.current.document["items"]
            }
            scores = [qa.ItemScore(code, points=p, comment="") for code, p in levels.items()]
            evaluation = qa.save_evaluation(
                evaluator,
                call,
                rubric.current,
                scores,
                "抽检:整体流程规范,方案部分需加强。",
                now - timedelta(days=2),
            )
            qa.release_evaluation(evaluator, evaluation, now - timedelta(days=2))
            made += 1
            if appeal and n == 1:
                filed = qa.submit_appeal(
                    agent,
                    evaluation,
                    [
                        qa.AppealRequest(
                            "solution", "客户当次问题已解决,之后未再来电,方案应为完整。", 40
                        )
                    ],
                    now - timedelta(days=1),
                )
                appealed += 1
                if appeal == "decided" and lead is not None:
                    qa.decide_appeal(
                        lead,
                        filed,
                        [
                            qa.ItemDecision(
                                filed.items[0].id, "upheld", "复听录音,方案正确且一次解决。"
                            )
                        ],
                        now,
                    )
    return {"portal QA evaluations": made, "appeals": appealed}
