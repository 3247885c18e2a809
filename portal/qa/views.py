"""QA screens: evaluations (the agent's, the team's, everyone's for QA), scoring against a
rubric, appeals with their timeline and decisions, the appeals dashboard, and rubrics."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from portal.accounts.models import Position, Role, User
from portal.accounts.services import led_team_ids
from portal.db import utcnow
from portal.extensions import db
from portal.metrics.models import Interaction, QaEvaluation
from portal.qa import services as qa
from portal.qa.models import OPEN_APPEAL_STATES, Appeal, EvaluationItem, Rubric, RubricVersion
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("qa", __name__)

STATUS_NAMES = {
    "submitted": _l("submitted"),
    "in_review": _l("in review"),
    "upheld": _l("upheld"),
    "partially_upheld": _l("partially upheld"),
    "rejected": _l("rejected"),
    "withdrawn": _l("withdrawn"),
}
EVENT_NAMES = {
    "submitted": _l("Appeal submitted"),
    "in_review": _l("Taken into review"),
    "decided": _l("Decided"),
    "withdrawn": _l("Withdrawn by the agent"),
    "reminded": _l("Reviewer reminded of the deadline"),
    "escalated": _l("Overdue: escalated to another reviewer"),
}
DECISION_NAMES = {
    "upheld": _l("upheld"),
    "partial": _l("partly upheld"),
    "rejected": _l("rejected"),
}


# --- evaluations ----------------------------------------------------------------------------


@bp.get("/qa/evaluations")
@require("portal.use")
def evaluation_list():
    """QA staff and admins: every evaluation; leads: their teams' released ones; agents: their
    own released ones."""
    stmt = select(QaEvaluation).join(Interaction, Interaction.id == QaEvaluation.interaction_id)
    staff = any(current_user.has_role(r) for r in (Role.QA, Role.QA_LEAD, Role.ADMIN))
    if not staff:
        stmt = stmt.join(User, User.id == Interaction.agent_id).where(
            QaEvaluation.status == "released"
        )
        teams = led_team_ids(current_user) if current_user.has_role(Role.TEAM_LEAD) else set()
        mine = Interaction.agent_id == current_user.id
        stmt = stmt.where(or_(mine, User.team_id.in_(teams)) if teams else mine)
    page = db.paginate(
        stmt.options(joinedload(QaEvaluation.interaction).joinedload(Interaction.agent)).order_by(
            QaEvaluation.evaluated_at.desc(), QaEvaluation.id.desc()
        ),
        page=request.args.get("page", 1, type=int),
        per_page=25,
        error_out=False,
    )
    return render("qa/evaluations.html", "items", page=page, staff=staff)


def _evaluation(evaluation_id: int) -> QaEvaluation:
    evaluation = db.session.get(QaEvaluation, evaluation_id)
    if evaluation is None:
        abort(404)
    if not qa.can_view_evaluation(current_user, evaluation):
        abort(403)
    return evaluation


def _evaluation_page(evaluation: QaEvaluation, status: int = 200, error=None, form=None):
    version = (
        db.session.get(RubricVersion, evaluation.rubric_version_id)
        if evaluation.rubric_version_id
        else None
    )
    items = {
        i.code: i
        for i in db.session.scalars(
            select(EvaluationItem).where(EvaluationItem.evaluation_id == evaluation.id)
        )
    }
    appeals = db.session.scalars(
        select(Appeal).where(Appeal.evaluation_id == evaluation.id).order_by(Appeal.id.desc())
    ).all()
    deadline = qa.appeal_deadline(evaluation)
    now = utcnow()
    may_appeal = (
        evaluation.interaction.agent_id == current_user.id
        and evaluation.status == "released"
        and deadline is not None
        and now <= deadline
        and not any(a.is_open for a in appeals)
    )
    return render(
        "qa/evaluation.html",
        status=status,
        evaluation=evaluation,
        version=version,
        items=items,
        appeals=appeals,
        deadline=deadline,
        may_appeal=may_appeal,
        may_release=evaluation.status == "draft"
        and (current_user.id == evaluation.evaluator_id or current_user.has_role(Role.QA_LEAD)),
        status_names=STATUS_NAMES,
        whole=qa.WHOLE,
        error=error,
        form=form or {},
    )


@bp.get("/qa/evaluations/<int:evaluation_id>")
@require("portal.use")
def evaluation_detail(evaluation_id: int):
    return _evaluation_page(_evaluation(evaluation_id))


@bp.post("/qa/evaluations/<int:evaluation_id>/release")
@require("qa.evaluate")
def evaluation_release(evaluation_id: int):
    evaluation = _evaluation(evaluation_id)
    try:
        qa.release_evaluation(current_user, evaluation, utcnow())
    except qa.QaError as exc:
        db.session.rollback()
        return _evaluation_page(evaluation, 422, exc.message)
    db.session.commit()
    return redirect_to(url_for("qa.evaluation_detail", evaluation_id=evaluation.id))


@bp.post("/qa/evaluations/<int:evaluation_id>/appeal")
@require("portal.use")
def appeal_submit(evaluation_id: int):
    evaluation = _evaluation(evaluation_id)
    requests = []
    for code in request.form.getlist("item"):
        raw = request.form.get(f"proposed-{code}", "").strip()
        try:
            proposed = float(raw)
        except ValueError:
            db.session.rollback()
            return _evaluation_page(
                evaluation, 422, _l("Enter the value you believe is right."), request.form
            )
        requests.append(qa.AppealRequest(code, request.form.get(f"reason-{code}", ""), proposed))
    try:
        appeal = qa.submit_appeal(current_user, evaluation, requests, utcnow())
    except qa.QaError as exc:
        db.session.rollback()
        return _evaluation_page(evaluation, 422, exc.message, request.form)
    db.session.commit()
    return redirect_to(url_for("qa.appeal_detail", appeal_id=appeal.id))


# --- scoring --------------------------------------------------------------------------------


@bp.get("/qa/score")
@require("qa.evaluate")
def score_find():
    """Find the interaction to score by its id (话单号)."""
    source_id = request.args.get("interaction", "").strip()
    interaction, problem = None, None
    if source_id:
        interaction = db.session.scalar(
            select(Interaction).where(Interaction.source_id == source_id)
        )
        if interaction is None:
            problem = _l("No interaction has this id. Check the 话单号, or import it first.")
        elif interaction.agent_id is None or not interaction.answered:
            problem = _l("This interaction was not answered by an agent, so it cannot be scored.")
    if interaction is not None and problem is None:
        return redirect_to(url_for("qa.score_form", interaction_id=interaction.id))
    # Or by agent and day: that agent's answered interactions of the day.
    agent_no, day = request.args.get("agent", "").strip(), request.args.get("day", "").strip()
    found = []
    if agent_no and day:
        try:
            on = date.fromisoformat(day)
        except ValueError:
            on = None
            problem = _l("Write the day as 2026-11-03.")
        agent = db.session.scalar(select(User).where(User.agent_no == agent_no))
        if agent is None:
            problem = _l("No agent has this employee number.")
        elif on is not None:
            found = db.session.scalars(
                select(Interaction)
                .where(
                    Interaction.agent_id == agent.id,
                    Interaction.offered_day == on,
                    Interaction.talk_s.is_not(None),
                )
                .order_by(Interaction.offered_s)
                .limit(100)
            ).all()
    recent = db.session.scalars(
        select(QaEvaluation)
        .where(QaEvaluation.evaluator_id == current_user.id, QaEvaluation.status == "draft")
        .order_by(QaEvaluation.evaluated_at.desc())
        .limit(20)
    ).all()
    return render(
        "qa/score_find.html",
        source_id=source_id,
        agent_no=agent_no,
        day=day,
        found=found,
        searched=bool(agent_no and day),
        problem=problem,
        drafts=recent,
    )


def _score_context(interaction: Interaction):
    agent = interaction.agent
    rubric = qa.rubric_of(agent.position) if agent and agent.position else None
    version = rubric.current if rubric else None
    existing = db.session.scalar(
        select(QaEvaluation).where(
            QaEvaluation.interaction_id == interaction.id,
            QaEvaluation.evaluator_id == current_user.id,
            QaEvaluation.rubric_version_id.is_not(None),
        )
    )
    items = {}
    if existing is not None:
        items = {
            i.code: i
            for i in db.session.scalars(
                select(EvaluationItem).where(EvaluationItem.evaluation_id == existing.id)
            )
        }
    return version, existing, items


@bp.get("/qa/score/<int:interaction_id>")
@require("qa.evaluate")
def score_form(interaction_id: int):
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None:
        abort(404)
    version, existing, items = _score_context(interaction)
    if existing is not None and existing.status == "released":
        return redirect_to(url_for("qa.evaluation_detail", evaluation_id=existing.id))
    return render(
        "qa/score.html",
        interaction=interaction,
        version=version,
        existing=existing,
        items=items,
        form={},
        error=None,
    )


@bp.post("/qa/score/<int:interaction_id>")
@require("qa.evaluate")
def score_save(interaction_id: int):
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None:
        abort(404)
    version, existing, items = _score_context(interaction)
    if version is None:
        abort(404)
    form = request.form
    scores = []
    for item in version.document["items"]:
        raw = form.get(f"points-{item['code']}", "")
        try:
            points = float(raw) if raw else None
        except ValueError:
            points = None
        scores.append(
            qa.ItemScore(
                item["code"], points=points, comment=form.get(f"comment-{item['code']}", "")
            )
        )
    for red in version.document["red_lines"]:
        scores.append(
            qa.ItemScore(
                red["code"],
                violated=form.get(f"violated-{red['code']}") == "1",
                comment=form.get(f"comment-{red['code']}", ""),
            )
        )
    now = utcnow()
    try:
        evaluation = qa.save_evaluation(
            current_user, interaction, version, scores, form.get("comment", ""), now
        )
        if form.get("action") == "release":
            qa.release_evaluation(current_user, evaluation, now)
    except qa.QaError as exc:
        db.session.rollback()
        return render(
            "qa/score.html",
            status=422,
            interaction=interaction,
            version=version,
            existing=existing,
            items=items,
            form=form,
            error=exc.message,
        )
    db.session.commit()
    return redirect_to(url_for("qa.evaluation_detail", evaluation_id=evaluation.id))


# --- appeals --------------------------------------------------------------------------------


def _appeal(appeal_id: int) -> Appeal:
    appeal = db.session.get(Appeal, appeal_id)
    if appeal is None:
        abort(404)
    if not qa.can_view_appeal(current_user, appeal):
        abort(403)
    return appeal


def _appeal_page(appeal: Appeal, status: int = 200, error=None, form=None):
    evaluation = appeal.evaluation
    version = (
        db.session.get(RubricVersion, evaluation.rubric_version_id)
        if evaluation.rubric_version_id
        else None
    )
    return render(
        "qa/appeal.html",
        status=status,
        appeal=appeal,
        evaluation=evaluation,
        version=version,
        can_decide=appeal.is_open and qa.can_decide(current_user, appeal),
        can_withdraw=appeal.is_open and appeal.agent_id == current_user.id,
        status_names=STATUS_NAMES,
        event_names=EVENT_NAMES,
        decision_names=DECISION_NAMES,
        whole=qa.WHOLE,
        error=error,
        form=form or {},
    )


@bp.get("/qa/appeals/<int:appeal_id>")
@require("portal.use")
def appeal_detail(appeal_id: int):
    return _appeal_page(_appeal(appeal_id))


@bp.post("/qa/appeals/<int:appeal_id>/review")
@require("qa.lead")
def appeal_review(appeal_id: int):
    appeal = _appeal(appeal_id)
    try:
        qa.start_review(current_user, appeal, utcnow())
    except qa.QaError as exc:
        db.session.rollback()
        return _appeal_page(appeal, 422, exc.message)
    db.session.commit()
    return redirect_to(url_for("qa.appeal_detail", appeal_id=appeal.id))


@bp.post("/qa/appeals/<int:appeal_id>/decide")
@require("qa.lead")
def appeal_decide(appeal_id: int):
    appeal = _appeal(appeal_id)
    decisions = []
    for item in appeal.items:
        raw = request.form.get(f"value-{item.id}", "").strip()
        try:
            value = float(raw) if raw else None
        except ValueError:
            value = None
        decisions.append(
            qa.ItemDecision(
                item.id,
                request.form.get(f"decision-{item.id}", ""),
                request.form.get(f"reason-{item.id}", ""),
                value,
            )
        )
    try:
        qa.decide_appeal(current_user, appeal, decisions, utcnow())
    except qa.QaError as exc:
        db.session.rollback()
        return _appeal_page(appeal, 422, exc.message, request.form)
    db.session.commit()
    return redirect_to(url_for("qa.appeal_detail", appeal_id=appeal.id))


@bp.post("/qa/appeals/<int:appeal_id>/withdraw")
@require("portal.use")
def appeal_withdraw(appeal_id: int):
    appeal = _appeal(appeal_id)
    try:
        qa.withdraw_appeal(current_user, appeal, utcnow())
    except qa.QaError as exc:
        db.session.rollback()
        return _appeal_page(appeal, 403, exc.message)
    db.session.commit()
    return redirect_to(url_for("qa.appeal_detail", appeal_id=appeal.id))


@bp.get("/qa/appeals")
@require("qa.lead")
def appeal_dashboard():
    """Open appeals by deadline, time to decision, outcome shares, and per evaluator: made,
    mean score, overturn rate."""
    now = utcnow()
    open_appeals = db.session.scalars(
        select(Appeal)
        .options(joinedload(Appeal.agent), joinedload(Appeal.reviewer))
        .where(Appeal.status.in_(OPEN_APPEAL_STATES))
        .order_by(Appeal.due_at)
    ).all()
    decided = db.session.scalars(
        select(Appeal).where(Appeal.status.in_(("upheld", "partially_upheld", "rejected")))
    ).all()
    hours = [(a.decided_at - a.submitted_at).total_seconds() / 3600 for a in decided]
    outcomes = {
        s: sum(1 for a in decided if a.status == s)
        for s in ("upheld", "partially_upheld", "rejected")
    }
    made = db.session.execute(
        select(QaEvaluation.evaluator_id, func.count(QaEvaluation.id), func.avg(QaEvaluation.score))
        .where(QaEvaluation.status == "released", QaEvaluation.evaluator_id.is_not(None))
        .group_by(QaEvaluation.evaluator_id)
    ).all()
    overturned = dict(
        db.session.execute(
            select(QaEvaluation.evaluator_id, func.count(Appeal.id))
            .join(QaEvaluation, QaEvaluation.id == Appeal.evaluation_id)
            .where(Appeal.status.in_(("upheld", "partially_upheld")))
            .group_by(QaEvaluation.evaluator_id)
        ).all()
    )
    appealed = dict(
        db.session.execute(
            select(QaEvaluation.evaluator_id, func.count(Appeal.id))
            .join(QaEvaluation, QaEvaluation.id == Appeal.evaluation_id)
            .where(Appeal.status.in_(("upheld", "partially_upheld", "rejected")))
            .group_by(QaEvaluation.evaluator_id)
        ).all()
    )
    names = {
        u.id: u for u in db.session.scalars(select(User).where(User.id.in_([m[0] for m in made])))
    }
    evaluators = [
        {
            "user": names.get(evaluator_id),
            "made": count,
            "mean": mean,
            "decided": appealed.get(evaluator_id, 0),
            "overturned": overturned.get(evaluator_id, 0),
        }
        for evaluator_id, count, mean in made
    ]
    return render(
        "qa/appeals.html",
        open_appeals=open_appeals,
        now=now,
        mean_hours=sum(hours) / len(hours) if hours else None,
        outcomes=outcomes,
        decided=len(decided),
        evaluators=sorted(evaluators, key=lambda e: -e["made"]),
        status_names=STATUS_NAMES,
    )


# --- rubrics --------------------------------------------------------------------------------


@bp.get("/qa/rubrics")
@require("qa.lead")
def rubric_list():
    positions = db.session.scalars(select(Position).order_by(Position.name)).all()
    rubrics = {r.position_id: r for r in db.session.scalars(select(Rubric))}
    return render("qa/rubrics.html", positions=positions, rubrics=rubrics)


@bp.post("/qa/rubrics/new/<int:position_id>")
@require("qa.lead")
def rubric_create(position_id: int):
    position = db.session.get(Position, position_id)
    if position is None:
        abort(404)
    if qa.rubric_of(position) is None:
        qa.save_rubric(current_user, position, qa.DEFAULT_RUBRIC)
        db.session.commit()
    return redirect_to(url_for("qa.rubric_edit", position_id=position.id))


BLANK_ITEMS, BLANK_RED_LINES = 2, 1


def _rows(form, prefix: str) -> list[int]:
    return sorted(
        {
            int(k.split("-")[1])
            for k in form
            if k.startswith(f"{prefix}-") and k.split("-")[1].isdigit()
        }
    )


def rubric_from_form(form) -> dict:
    """The rubric the editor's rows describe. Levels are written one per line as
    "points anchor" (e.g. "10 标准开场白"); rows without a title are left out."""
    items, red_lines = [], []
    for i in _rows(form, "item"):
        title = form.get(f"item-{i}-title", "").strip()
        if not title:
            continue
        levels = []
        for line in form.get(f"item-{i}-levels", "").splitlines():
            points, _, anchor = line.strip().partition(" ")
            if not points:
                continue
            try:
                levels.append({"points": _number(points), "anchor": anchor.strip()})
            except ValueError:
                raise qa.QaError(
                    _l(
                        "%(title)s: each level line starts with its points, e.g. 10 标准开场白",
                        title=title,
                    ),
                    "items",
                ) from None
        try:
            maximum = _number(form.get(f"item-{i}-max", ""))
        except ValueError:
            raise qa.QaError(
                _l("%(title)s: give the item's maximum points.", title=title), "items"
            ) from None
        code = form.get(f"item-{i}-code", "").strip() or f"item{i + 1}"
        items.append({"code": code, "title": title, "max_points": maximum, "levels": levels})
    for i in _rows(form, "red"):
        title = form.get(f"red-{i}-title", "").strip()
        if not title:
            continue
        try:
            points = _number(form.get(f"red-{i}-points", "") or "5")
        except ValueError:
            raise qa.QaError(
                _l("%(title)s: give the deduction in points.", title=title), "red_lines"
            ) from None
        code = form.get(f"red-{i}-code", "").strip() or f"red{i + 1}"
        red_lines.append(
            {
                "code": code,
                "title": title,
                "points": points,
                "anchor": form.get(f"red-{i}-anchor", "").strip(),
            }
        )
    return {"items": items, "red_lines": red_lines}


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


@bp.route("/qa/rubrics/<int:position_id>", methods=["GET", "POST"])
@require("qa.lead")
def rubric_edit(position_id: int):
    """The rubric's items, levels and red lines as rows; each save a new version."""
    position = db.session.get(Position, position_id)
    rubric = qa.rubric_of(position) if position else None
    if rubric is None:
        abort(404)
    error, status, document = None, 200, None
    if request.method == "POST":
        try:
            document = rubric_from_form(request.form)
            qa.save_rubric(current_user, position, document)
            db.session.commit()
            return redirect_to(url_for("qa.rubric_edit", position_id=position.id, saved=1))
        except qa.QaError as exc:
            db.session.rollback()
            error, status = exc.message, 422
    current = rubric.current
    shown = document or current.document
    return render(
        "qa/rubric.html",
        status=status,
        position=position,
        current=current,
        items=[*shown["items"], *({} for _ in range(BLANK_ITEMS))],
        red_lines=[*shown.get("red_lines", []), *({} for _ in range(BLANK_RED_LINES))],
        saved=bool(request.args.get("saved")),
        error=error,
    )
