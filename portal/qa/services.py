"""QA evaluations against rubrics, and appeals that are fair, fast and leave a trail.

State of an appeal: submitted → in_review → upheld / partially_upheld / rejected, or withdrawn
by the agent while open. The reviewer is a QA lead who did not make the evaluation (an admin
when no such QA lead exists or after an escalation). Every step is an AppealEvent (the
appeal's timeline), an audit entry, and a notification to the people concerned.
"""

from __future__ import annotations

import copy
import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal.accounts.models import Position, Role, User
from portal.accounts.services import active_with_role, can_view_user
from portal.audit.services import record
from portal.extensions import db
from portal.metrics import stats
from portal.metrics.models import Interaction, QaEvaluation
from portal.notifications.services import notify
from portal.qa.models import (
    OPEN_APPEAL_STATES,
    Appeal,
    AppealEvent,
    AppealItem,
    EvaluationItem,
    Rubric,
    RubricVersion,
)

WHOLE = "score"  # the appeal item of an imported evaluation (scored as a whole)


class QaError(ValueError):
    """A request that breaks a QA or appeal rule: the message, and the field it concerns."""

    def __init__(self, message, field: str = ""):
        super().__init__(str(message))
        self.message, self.field = message, field


# --- rubrics --------------------------------------------------------------------------------

DEFAULT_RUBRIC = {
    "items": [
        {
            "code": "greeting",
            "title": "开场与礼貌用语",
            "max_points": 10,
            "levels": [
                {"points": 10, "anchor": "标准开场白、自报工号,全程使用礼貌用语"},
                {"points": 5, "anchor": "开场或结束语不完整,礼貌用语偶有遗漏"},
                {"points": 0, "anchor": "无开场白或出现不耐烦、生硬的表达"},
            ],
        },
        {
            "code": "needs",
            "title": "需求识别",
            "max_points": 20,
            "levels": [
                {"points": 20, "anchor": "主动提问,准确复述客户诉求"},
                {"points": 10, "anchor": "经客户多次说明后才理解诉求"},
                {"points": 0, "anchor": "误解诉求,答非所问"},
            ],
        },
        {
            "code": "solution",
            "title": "解决方案准确性",
            "max_points": 40,
            "levels": [
                {"points": 40, "anchor": "方案正确完整,一次解决"},
                {"points": 20, "anchor": "方案基本正确但有遗漏,需客户再次来电"},
                {"points": 0, "anchor": "方案错误或未给出方案"},
            ],
        },
        {
            "code": "empathy",
            "title": "沟通与情绪安抚",
            "max_points": 20,
            "levels": [
                {"points": 20, "anchor": "共情表达到位,客户情绪平稳"},
                {"points": 10, "anchor": "有安抚但流于形式"},
                {"points": 0, "anchor": "与客户争执或激化情绪"},
            ],
        },
        {
            "code": "process",
            "title": "流程与记录规范",
            "max_points": 10,
            "levels": [
                {"points": 10, "anchor": "核身、记录、小结完整规范"},
                {"points": 5, "anchor": "记录或小结不完整"},
                {"points": 0, "anchor": "未核身或未记录"},
            ],
        },
    ],
    "red_lines": [
        {
            "code": "privacy",
            "title": "泄露客户隐私",
            "anchor": "未核身即透露或泄露客户信息",
            "points": 5,
        },
        {
            "code": "abuse",
            "title": "辱骂或威胁客户",
            "anchor": "出现辱骂、威胁或歧视性语言",
            "points": 5,
        },
    ],
}


def check_rubric(document: dict) -> dict:
    """A checked rubric document: items with levels whose top level is the item's maximum,
    maximums adding up to 100, unique codes; red lines with their deduction."""
    doc = copy.deepcopy(document)
    items, red_lines = doc.get("items") or [], doc.get("red_lines") or []
    codes = [i.get("code") for i in [*items, *red_lines]]
    if not items:
        raise QaError(_l("A rubric needs at least one scored item."), "items")
    if len(set(codes)) != len(codes) or not all(codes) or WHOLE in codes:
        raise QaError(_l("Each item needs its own code."), "items")
    for item in items:
        levels = item.get("levels") or []
        points = sorted({float(level["points"]) for level in levels}, reverse=True)
        if not levels or points[0] != float(item.get("max_points", -1)) or points[-1] < 0:
            raise QaError(
                _l(
                    "Item %(code)s: its levels must run from 0 up to its maximum.",
                    code=item["code"],
                ),
                "items",
            )
        if not all(str(level.get("anchor") or "").strip() for level in levels):
            raise QaError(
                _l("Item %(code)s: each level needs its written anchor.", code=item["code"]),
                "items",
            )
    if abs(sum(float(i["max_points"]) for i in items) - 100) > 1e-9:
        raise QaError(_l("The items' maximum points must add up to 100."), "items")
    doc["items"], doc["red_lines"] = items, red_lines
    return doc


def rubric_of(position: Position) -> Rubric | None:
    return db.session.scalar(select(Rubric).where(Rubric.position_id == position.id))


def save_rubric(actor: User | None, position: Position, document: dict) -> RubricVersion:
    """Make `document` the position's rubric from now on, as a new version."""
    doc = check_rubric(document)
    rubric = rubric_of(position)
    if rubric is None:
        rubric = Rubric(position_id=position.id)
        db.session.add(rubric)
        db.session.flush()
    current = rubric.current
    if current is not None and current.document == doc:
        return current
    version = RubricVersion(
        rubric_id=rubric.id,
        number=(current.number if current else 0) + 1,
        document=doc,
        created_by_id=actor.id if actor else None,
    )
    db.session.add(version)
    db.session.flush()
    record(actor, "rubric.save", "rubric", rubric.id, summary=f"{position.name} v{version.number}")
    return version


# --- evaluations ----------------------------------------------------------------------------


def can_view_evaluation(viewer: User, evaluation: QaEvaluation) -> bool:
    """QA staff and admins see every evaluation; the agent and their lead see released ones."""
    if viewer.has_role(Role.QA) or viewer.has_role(Role.QA_LEAD) or viewer.has_role(Role.ADMIN):
        return True
    agent = evaluation.interaction.agent
    return evaluation.status == "released" and agent is not None and can_view_user(viewer, agent)


@dataclass
class ItemScore:
    code: str
    points: float | None = None  # scored items
    violated: bool | None = None  # red-line items
    comment: str = ""


def save_evaluation(
    evaluator: User,
    interaction: Interaction,
    version: RubricVersion,
    scores: list[ItemScore],
    comment: str,
    now: datetime,
) -> QaEvaluation:
    """Score `interaction` item by item. Saving again updates the same draft; a released
    evaluation changes only through an appeal."""
    if not (evaluator.has_role(Role.QA) or evaluator.has_role(Role.QA_LEAD)):
        raise QaError(_l("Only QA staff score interactions."))
    if interaction.agent_id is None or not interaction.answered:
        raise QaError(_l("Only answered interactions of an agent can be scored."))
    given = {s.code: s for s in scores}
    for item in version.document["items"]:
        score = given.get(item["code"])
        allowed = {float(level["points"]) for level in item["levels"]}
        if score is None or score.points is None or float(score.points) not in allowed:
            raise QaError(
                _l("Choose one of the levels for %(title)s.", title=item["title"]), item["code"]
            )
    evaluation = db.session.scalar(
        select(QaEvaluation).where(
            QaEvaluation.interaction_id == interaction.id,
            QaEvaluation.evaluator_id == evaluator.id,
            QaEvaluation.rubric_version_id.is_not(None),
        )
    )
    if evaluation is not None and evaluation.status == "released":
        raise QaError(_l("This evaluation is released; it changes only through an appeal."))
    total = sum(float(given[i["code"]].points) for i in version.document["items"])
    red_line = any(
        bool(given.get(r["code"], ItemScore(r["code"])).violated)
        for r in version.document["red_lines"]
    )
    if evaluation is None:
        evaluation = QaEvaluation(
            source_id=f"portal-{uuid.uuid4().hex}",
            interaction_id=interaction.id,
            evaluator_id=evaluator.id,
            status="draft",
        )
        db.session.add(evaluation)
    evaluation.rubric_version_id = version.id
    evaluation.score = evaluation.original_score = total
    evaluation.red_line = red_line
    evaluation.evaluated_at = now
    evaluation.comment = comment.strip()[:4000]
    db.session.flush()
    existing = {
        i.code: i
        for i in db.session.scalars(
            select(EvaluationItem).where(EvaluationItem.evaluation_id == evaluation.id)
        )
    }
    for item in [*version.document["items"], *version.document["red_lines"]]:
        score = given.get(item["code"], ItemScore(item["code"]))
        row = existing.get(item["code"]) or EvaluationItem(
            evaluation_id=evaluation.id, code=item["code"]
        )
        if "levels" in item:
            row.points = row.original_points = float(score.points)
        else:
            row.violated = row.original_violated = bool(score.violated)
        row.comment = score.comment.strip()[:2000]
        db.session.add(row)
    db.session.flush()
    return evaluation


def release_evaluation(actor: User, evaluation: QaEvaluation, now: datetime) -> None:
    """Show the evaluation to the agent (and count it), opening the appeal window."""
    if evaluation.status == "released":
        return
    if actor.id != evaluation.evaluator_id and not actor.has_role(Role.QA_LEAD):
        raise QaError(_l("Only the evaluator or a QA lead releases an evaluation."))
    evaluation.status, evaluation.released_at = "released", now
    db.session.flush()
    _refresh_metrics(evaluation)
    interaction = evaluation.interaction
    record(
        actor,
        "qa_evaluation.release",
        "qa_evaluation",
        evaluation.id,
        summary=f"{interaction.source_id}: {evaluation.score:g}",
    )
    notify(
        interaction.agent,
        "evaluation_released",
        {"interaction": interaction.source_id, "score": f"{evaluation.score:g}"},
        evaluation_path(evaluation),
    )


def evaluation_path(evaluation: QaEvaluation) -> str:
    return f"/qa/evaluations/{evaluation.id}"


def appeal_path(appeal: Appeal) -> str:
    return f"/qa/appeals/{appeal.id}"


def _refresh_metrics(evaluation: QaEvaluation) -> None:
    """qa_score and red-line deductions follow at once: redo the day's sums of its agent."""
    interaction = evaluation.interaction
    day = interaction.offered_day
    stats.rebuild_day_stats(day, day, {interaction.agent_id})


# --- appeals --------------------------------------------------------------------------------


def appeal_deadline(evaluation: QaEvaluation) -> datetime | None:
    """The last moment an appeal is accepted: APPEAL_WINDOW_DAYS after release."""
    if evaluation.released_at is None:
        return None
    return evaluation.released_at + timedelta(days=current_app.config["APPEAL_WINDOW_DAYS"])


def add_working_days(start: datetime, days: int) -> datetime:
    """`days` working days (Monday to Friday, in PORTAL_TIMEZONE) after `start`."""
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    moment = start.astimezone(tz)
    while days:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment


def open_appeal(evaluation: QaEvaluation) -> Appeal | None:
    return db.session.scalar(
        select(Appeal).where(
            Appeal.evaluation_id == evaluation.id, Appeal.status.in_(OPEN_APPEAL_STATES)
        )
    )


@dataclass
class AppealRequest:
    code: str  # a rubric item, or WHOLE for an imported evaluation
    reason: str
    proposed: float  # the points (or score) believed right; red lines: 0 = not violated


def _item_bounds(evaluation: QaEvaluation, code: str) -> tuple[float, float, float] | None:
    """(current, lowest, highest) of an appealable item, None if it is not one."""
    if evaluation.rubric_version_id is None:
        return (evaluation.score, 0.0, 100.0) if code == WHOLE else None
    version = db.session.get(RubricVersion, evaluation.rubric_version_id)
    item = version.item(code)
    row = db.session.scalar(
        select(EvaluationItem).where(
            EvaluationItem.evaluation_id == evaluation.id, EvaluationItem.code == code
        )
    )
    if item is None or row is None:
        return None
    if "levels" in item:
        return row.points, 0.0, float(item["max_points"])
    return (1.0 if row.violated else 0.0), 0.0, 1.0


def submit_appeal(
    agent: User, evaluation: QaEvaluation, requests: list[AppealRequest], now: datetime
) -> Appeal:
    """File an appeal. A second submit of the same (a double click) returns the open one."""
    interaction = evaluation.interaction
    if interaction.agent_id != agent.id:
        raise QaError(_l("Only the agent of the interaction can appeal its evaluation."))
    if evaluation.status != "released":
        raise QaError(_l("This evaluation is not released yet."))
    existing = open_appeal(evaluation)
    if existing is not None:
        return existing
    deadline = appeal_deadline(evaluation)
    if now > deadline:
        raise QaError(
            _l("The appeal window closed on %(when)s.", when=deadline.isoformat(" ", "minutes"))
        )
    if not requests:
        raise QaError(_l("Choose at least one item to appeal."), "items")
    seen = set()
    for req in requests:
        bounds = _item_bounds(evaluation, req.code)
        if bounds is None or req.code in seen:
            raise QaError(_l("Item %(code)s cannot be appealed here.", code=req.code), req.code)
        seen.add(req.code)
        if not req.reason.strip():
            raise QaError(_l("Say why this item is scored wrongly."), req.code)
        current, low, high = bounds
        if not (math.isfinite(req.proposed) and low <= req.proposed <= high):
            raise QaError(
                _l("Propose a value from %(low)s to %(high)s.", low=f"{low:g}", high=f"{high:g}"),
                req.code,
            )
        if req.proposed == current:
            raise QaError(_l("The value proposed is the value given."), req.code)
    appeal = Appeal(
        evaluation_id=evaluation.id,
        agent_id=agent.id,
        status="submitted",
        submitted_at=now,
        due_at=add_working_days(now, current_app.config["APPEAL_DECISION_WORKING_DAYS"]),
        reviewer_id=_pick_reviewer(evaluation).id,
        score_before=evaluation.score,
    )
    try:
        with db.session.begin_nested():
            db.session.add(appeal)
            db.session.flush()
    except IntegrityError:  # another request filed it a moment ago
        return open_appeal(evaluation)
    for req in requests:
        db.session.add(
            AppealItem(
                appeal_id=appeal.id,
                code=req.code,
                reason=req.reason.strip()[:4000],
                proposed=req.proposed,
            )
        )
    _event(appeal, agent, "submitted", {"items": [r.code for r in requests]}, now)
    record(agent, "appeal.submit", "appeal", appeal.id, summary=interaction.source_id)
    notify(
        appeal.reviewer,
        "appeal_assigned",
        {"agent": agent.name, "interaction": interaction.source_id, "due": _local(appeal.due_at)},
        appeal_path(appeal),
    )
    return appeal


def _local(moment: datetime) -> str:
    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _event(appeal: Appeal, actor: User | None, kind: str, detail: dict, now: datetime) -> None:
    db.session.add(
        AppealEvent(
            appeal_id=appeal.id,
            actor_id=actor.id if actor else None,
            kind=kind,
            detail=detail,
            at=now,
        )
    )
    db.session.flush()


def _pick_reviewer(evaluation: QaEvaluation, exclude: set[int] = frozenset()) -> User:
    """The QA lead (not the evaluator) with the fewest open appeals; an admin if none."""
    leads = [
        u
        for u in active_with_role(Role.QA_LEAD)
        if u.id != evaluation.evaluator_id and u.id not in exclude
    ]
    if leads:
        load = dict(
            db.session.execute(
                select(Appeal.reviewer_id, func.count(Appeal.id))
                .where(Appeal.status.in_(OPEN_APPEAL_STATES))
                .group_by(Appeal.reviewer_id)
            ).all()
        )
        return min(leads, key=lambda u: (load.get(u.id, 0), u.id))
    admins = [
        u
        for u in active_with_role(Role.ADMIN)
        if u.id != evaluation.evaluator_id and u.id not in exclude
    ]
    if not admins:
        raise QaError(
            _l(
                "No QA lead or administrator can review this appeal; ask an "
                "administrator to give someone the QA lead role."
            )
        )
    return admins[0]


def can_decide(user: User, appeal: Appeal) -> bool:
    """A QA lead, or an admin the appeal went to, who did not make the evaluation."""
    if user.id == appeal.evaluation.evaluator_id:
        return False
    if user.has_role(Role.QA_LEAD):
        return True
    return user.has_role(Role.ADMIN) and appeal.reviewer_id == user.id


def can_view_appeal(viewer: User, appeal: Appeal) -> bool:
    if viewer.id == appeal.agent_id:
        return True
    if viewer.has_role(Role.QA_LEAD) or viewer.has_role(Role.ADMIN):
        return True
    if viewer.id == appeal.evaluation.evaluator_id:
        return True
    return can_view_user(viewer, appeal.agent)


def start_review(reviewer: User, appeal: Appeal, now: datetime) -> None:
    """The reviewer takes the appeal into review (a QA lead may take it over)."""
    if not can_decide(reviewer, appeal):
        raise QaError(_refusal(reviewer, appeal))
    if appeal.status != "submitted" and not (
        appeal.status == "in_review" and appeal.reviewer_id != reviewer.id
    ):
        raise QaError(_l("This appeal is not waiting for a reviewer."))
    previous = appeal.reviewer_id
    appeal.status, appeal.reviewer_id = "in_review", reviewer.id
    _event(
        appeal, reviewer, "in_review", {"from": previous} if previous != reviewer.id else {}, now
    )
    record(reviewer, "appeal.review", "appeal", appeal.id)


def _refusal(user: User, appeal: Appeal):
    if user.id == appeal.evaluation.evaluator_id:
        return _l("You made this evaluation, so another QA lead decides its appeal.")
    return _l("Only a QA lead decides appeals.")


def withdraw_appeal(agent: User, appeal: Appeal, now: datetime) -> None:
    if agent.id != appeal.agent_id:
        raise QaError(_l("Only the agent who filed the appeal can withdraw it."))
    if not appeal.is_open:
        raise QaError(_l("This appeal is already decided or withdrawn."))
    appeal.status, appeal.decided_at = "withdrawn", now
    _event(appeal, agent, "withdrawn", {}, now)
    record(agent, "appeal.withdraw", "appeal", appeal.id)
    if appeal.reviewer is not None:
        notify(
            appeal.reviewer,
            "appeal_withdrawn",
            {"agent": agent.name, "interaction": appeal.evaluation.interaction.source_id},
            appeal_path(appeal),
        )


@dataclass
class ItemDecision:
    item_id: int
    decision: str  # upheld | partial | rejected
    reason: str
    value: float | None = None  # for partial: the value decided


def decide_appeal(
    reviewer: User, appeal: Appeal, decisions: list[ItemDecision], now: datetime
) -> None:
    """Decide every item with a written reason; upheld items change the evaluation (its
    original score and the history stay), and qa_score and deductions follow at once."""
    if not can_decide(reviewer, appeal):
        raise QaError(_refusal(reviewer, appeal))
    if not appeal.is_open:
        raise QaError(_l("This appeal is already decided or withdrawn."))
    by_item = {d.item_id: d for d in decisions}
    evaluation = appeal.evaluation
    for item in appeal.items:
        decision = by_item.get(item.id)
        if decision is None or decision.decision not in ("upheld", "partial", "rejected"):
            raise QaError(_l("Decide every appealed item."), f"item-{item.id}")
        if not decision.reason.strip():
            raise QaError(_l("Give the reason for each decision."), f"item-{item.id}")
        current, low, high = _item_bounds(evaluation, item.code)
        if decision.decision == "partial" and _is_red_line(evaluation, item.code):
            raise QaError(
                _l("A red line was violated or not: uphold or reject it."), f"item-{item.id}"
            )
        if decision.decision == "partial":
            value = decision.value
            between = value is not None and min(current, item.proposed) < value < max(
                current, item.proposed
            )
            if not between:
                raise QaError(
                    _l("A partial decision lies between the value given and the value proposed."),
                    f"item-{item.id}",
                )
    before = evaluation.score
    outcomes = []
    for item in appeal.items:
        decision = by_item[item.id]
        current, _low, _high = _item_bounds(evaluation, item.code)
        value = {"upheld": item.proposed, "partial": decision.value, "rejected": current}[
            decision.decision
        ]
        item.decision, item.decided = decision.decision, value
        item.decision_reason = decision.reason.strip()[:4000]
        outcomes.append(decision.decision)
        _apply(evaluation, item.code, value)
    if all(o == "upheld" for o in outcomes):
        appeal.status = "upheld"
    elif all(o == "rejected" for o in outcomes):
        appeal.status = "rejected"
    else:
        appeal.status = "partially_upheld"
    appeal.decided_at, appeal.reviewer_id = now, reviewer.id
    appeal.score_after = evaluation.score
    db.session.flush()
    _refresh_metrics(evaluation)
    _event(
        appeal,
        reviewer,
        "decided",
        {"status": appeal.status, "score_before": before, "score_after": evaluation.score},
        now,
    )
    record(
        reviewer,
        "appeal.decide",
        "appeal",
        appeal.id,
        summary=f"{appeal.status}: {before:g} → {evaluation.score:g}",
        before={"score": before},
        after={"score": evaluation.score},
    )
    params = {
        "interaction": evaluation.interaction.source_id,
        "status": appeal.status,
        "before": f"{before:g}",
        "after": f"{evaluation.score:g}",
    }
    notify(appeal.agent, "appeal_decided", params, appeal_path(appeal))
    if evaluation.evaluator is not None and evaluation.evaluator.id != reviewer.id:
        notify(evaluation.evaluator, "appeal_decided", params, appeal_path(appeal))


def _is_red_line(evaluation: QaEvaluation, code: str) -> bool:
    if evaluation.rubric_version_id is None or code == WHOLE:
        return False
    item = db.session.get(RubricVersion, evaluation.rubric_version_id).item(code)
    return item is not None and "levels" not in item


def _apply(evaluation: QaEvaluation, code: str, value: float) -> None:
    """Put a decided value into the evaluation and recompute its score and red line."""
    if code == WHOLE:
        evaluation.score = value
        return
    row = db.session.scalar(
        select(EvaluationItem).where(
            EvaluationItem.evaluation_id == evaluation.id, EvaluationItem.code == code
        )
    )
    version = db.session.get(RubricVersion, evaluation.rubric_version_id)
    if "levels" in version.item(code):
        row.points = value
    else:
        row.violated = value >= 0.5
    db.session.flush()
    rows = db.session.scalars(
        select(EvaluationItem).where(EvaluationItem.evaluation_id == evaluation.id)
    ).all()
    evaluation.score = sum(r.points for r in rows if r.points is not None)
    evaluation.red_line = any(r.violated for r in rows if r.violated is not None)


# --- service level: reminders and escalation ------------------------------------------------

REMIND_BEFORE = timedelta(hours=24)


def remind_and_escalate(now: datetime) -> str:
    """Remind each reviewer once a day before the deadline; escalate each overdue appeal once,
    to another QA lead or an admin. Each step is claimed by a conditional update."""
    reminded = escalated = 0
    for appeal_id in db.session.scalars(
        select(Appeal.id).where(
            Appeal.status.in_(OPEN_APPEAL_STATES),
            Appeal.reminded_at.is_(None),
            Appeal.due_at <= now + REMIND_BEFORE,
            Appeal.due_at >= now,
        )
    ).all():
        appeal = db.session.get(Appeal, appeal_id)
        claimed = db.session.execute(
            update(Appeal)
            .where(Appeal.id == appeal.id, Appeal.reminded_at.is_(None))
            .values(reminded_at=now)
        ).rowcount
        if claimed and appeal.reviewer is not None:
            notify(
                appeal.reviewer,
                "appeal_reminder",
                {
                    "interaction": appeal.evaluation.interaction.source_id,
                    "due": _local(appeal.due_at),
                },
                appeal_path(appeal),
            )
            _event(appeal, None, "reminded", {"reviewer": appeal.reviewer_id}, now)
            reminded += 1
    for appeal_id in db.session.scalars(
        select(Appeal.id).where(
            Appeal.status.in_(OPEN_APPEAL_STATES),
            Appeal.escalated_at.is_(None),
            Appeal.due_at < now,
        )
    ).all():
        appeal = db.session.get(Appeal, appeal_id)
        try:
            target = _pick_reviewer(appeal.evaluation, exclude={appeal.reviewer_id or 0})
        except QaError:
            target = None
        claimed = db.session.execute(
            update(Appeal)
            .where(Appeal.id == appeal.id, Appeal.escalated_at.is_(None))
            .values(escalated_at=now, reviewer_id=target.id if target else appeal.reviewer_id)
        ).rowcount
        if not claimed:
            continue
        db.session.refresh(appeal)
        params = {
            "interaction": appeal.evaluation.interaction.source_id,
            "due": _local(appeal.due_at),
        }
        if target is not None:
            notify(target, "appeal_escalated", params, appeal_path(appeal))
        _event(appeal, None, "escalated", {"to": target.id if target else None}, now)
        record(
            None,
            "appeal.escalate",
            "appeal",
            appeal.id,
            summary=target.name if target else "nobody else to escalate to",
        )
        escalated += 1
    return f"reminded {reminded}, escalated {escalated}"


# --- the period close's blocker -------------------------------------------------------------


def undecided_appeals(first_day: date, last_day: date) -> list[Appeal]:
    """Open appeals of evaluations of interactions offered in `first_day`..`last_day`: the
    period cannot close while any remains (scoring.md §8)."""
    return list(
        db.session.scalars(
            select(Appeal)
            .join(QaEvaluation, QaEvaluation.id == Appeal.evaluation_id)
            .join(Interaction, Interaction.id == QaEvaluation.interaction_id)
            .where(
                Appeal.status.in_(OPEN_APPEAL_STATES),
                Interaction.offered_day.between(first_day, last_day),
            )
            .order_by(Appeal.due_at)
        )
    )


def remind_blocking_reviewers(first_day: date, last_day: date, period_key: str) -> int:
    """Tell the reviewers of a period's undecided appeals that the close waits for them."""
    appeals = undecided_appeals(first_day, last_day)
    for appeal in appeals:
        if appeal.reviewer is not None:
            notify(
                appeal.reviewer,
                "appeal_blocks_close",
                {"period": period_key, "interaction": appeal.evaluation.interaction.source_id},
                appeal_path(appeal),
            )
    return len(appeals)
