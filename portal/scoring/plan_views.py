"""The plan editor: each position's plan, checked at every field as the admin types, saved as a
new version."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.models import Position
from portal.extensions import db
from portal.metrics.compute import AGENT_CODES, LOWER_IS_BETTER
from portal.metrics.labels import PERIOD_KIND_NAMES, metric_name
from portal.metrics.periods import period_of
from portal.scoring import plans, services
from portal.scoring.engine import CATEGORIES
from portal.scoring.models import Plan, PlanVersion
from portal.scoring.views import CATEGORY_NAMES
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("plans", __name__)

BLANK_LINES, BLANK_SCENARIOS, BLANK_TIERS = 2, 1, 1
BAND = ("threshold", "target", "stretch")


@bp.get("/plans")
@require("plans.manage")
def plan_list():
    positions = db.session.scalars(select(Position).order_by(Position.name)).all()
    found = {p.position_id: p for p in db.session.scalars(select(Plan))}
    return render(
        "plans/list.html",
        positions=positions,
        plans=found,
        kinds=PERIOD_KIND_NAMES,
        defaults=plans.DEFAULT_PLANS,
        current_period=period_of(services.today(), "monthly").key,
    )


@bp.post("/plans/new/<int:position_id>")
@require("plans.manage")
def plan_create(position_id: int):
    """Start a position's plan from the seeded one (scoring.md §1), then edit it."""
    position = db.session.get(Position, position_id)
    if position is None:
        abort(404)
    plan = services.plan_of(position)
    if plan is None:
        services.save_plan(
            current_user, plans.default_document(position.name), str(services.DEFAULT_NOTE)
        )
        db.session.commit()
        plan = services.plan_of(position)
    return redirect_to(url_for("plans.plan_edit", plan_id=plan.id))


def _plan(plan_id: int) -> Plan:
    plan = db.session.get(Plan, plan_id)
    if plan is None:
        abort(404)
    return plan


@bp.get("/plans/<int:plan_id>")
@require("plans.manage")
def plan_detail(plan_id: int):
    plan = _plan(plan_id)
    versions = db.session.scalars(
        select(PlanVersion)
        .where(PlanVersion.plan_id == plan.id)
        .order_by(PlanVersion.number.desc())
    ).all()
    return render(
        "plans/detail.html",
        plan=plan,
        doc=versions[0].document,
        versions=versions,
        saved=request.args.get("saved", type=int),
        unchanged=bool(request.args.get("unchanged")),
        metric_name=metric_name,
        category_names=CATEGORY_NAMES,
        kinds=PERIOD_KIND_NAMES,
    )


# --- the editor -----------------------------------------------------------------------------


def _rows(form, prefix: str) -> list[int]:
    """The row numbers of `prefix` the form holds (lines-0-…, lines-1-…)."""
    numbers = set()
    for key in form:
        parts = key.split("-")
        if len(parts) >= 3 and parts[0] == prefix and parts[1].isdigit():
            numbers.add(int(parts[1]))
    return sorted(numbers)


def _blank(form, keys: list[str]) -> bool:
    return all(not form.get(k, "").strip() for k in keys)


def document_from_form(form, position: str) -> tuple[dict, dict[str, str]]:
    """The plan document the editor's fields describe, and for each list entry of the
    document the form row it came from (blank rows are skipped), to put errors back at fields."""
    doc = {
        "position": position,
        **{k: form.get(k, "").strip() for k in plans.DEFAULTS},
        "lines": [],
        "scenarios": [],
        "tiers": [],
    }
    where: dict[str, str] = {}
    metrics = []
    for i in _rows(form, "lines"):
        at = f"lines-{i}-"
        if not form.get(at + "metric", "").strip():
            continue
        line = {
            "metric": form[at + "metric"].strip(),
            "category": form.get(at + "category", ""),
            "core": form.get(at + "core") == "1",
            "weight": form.get(at + "weight", "").strip(),
            **{k: form.get(at + k, "").strip() or None for k in BAND},
            "min_sample": form.get(at + "min_sample", "").strip() or 0,
        }
        new = {k: form.get(f"{at}new-{k}", "").strip() or None for k in BAND}
        if any(new.values()):
            line["new_agent"] = new
        where[f"lines.{len(doc['lines'])}"] = f"lines-{i}"
        doc["lines"].append(line)
        metrics.append(line["metric"])
    for i in _rows(form, "scenarios"):
        at = f"scenarios-{i}-"
        keys = [at + k for k in ("name", "from", "to")]
        if _blank(form, keys):
            continue
        weights = {
            m: form[f"{at}w-{m}"].strip() for m in metrics if form.get(f"{at}w-{m}", "").strip()
        }
        where[f"scenarios.{len(doc['scenarios'])}"] = f"scenarios-{i}"
        doc["scenarios"].append(
            {
                "name": form.get(at + "name", "").strip(),
                "from": form.get(at + "from", "").strip(),
                "to": form.get(at + "to", "").strip(),
                "weights": weights,
            }
        )
    for i in _rows(form, "tiers"):
        at = f"tiers-{i}-"
        if _blank(form, [at + "from", at + "multiplier"]):
            continue
        where[f"tiers.{len(doc['tiers'])}"] = f"tiers-{i}"
        doc["tiers"].append(
            {"from": form.get(at + "from", "").strip(), "multiplier": form.get(at + "multiplier")}
        )
    return doc, where


def field_errors(errors: dict[str, str], where: dict[str, str]) -> dict[str, str]:
    """Errors keyed by the editor's field names ("lines.0.weight" → "lines-3-weight")."""
    placed = {}
    for path, message in errors.items():
        parts = path.split(".")
        if len(parts) >= 2 and f"{parts[0]}.{parts[1]}" in where:
            row = where[f"{parts[0]}.{parts[1]}"]
            rest = parts[2:]
            if rest[:1] == ["new_agent"]:
                rest = ["new", *rest[1:]]
            elif rest[:1] == ["weights"]:
                rest = ["w", *rest[1:]] if len(rest) > 1 else ["weights"]
            placed["-".join([row, *rest]) if rest else row] = message
        else:
            placed[path] = message
    return placed


def _editor_rows(doc: dict) -> dict:
    """What the editor shows: the document's entries plus blank rows to add new ones."""
    return {
        "lines": [*doc["lines"], *({} for _ in range(BLANK_LINES))],
        "scenarios": [*doc["scenarios"], *({} for _ in range(BLANK_SCENARIOS))],
        "tiers": [*doc["tiers"], *({} for _ in range(BLANK_TIERS))],
    }


def _weight_sum(doc: dict) -> float | None:
    weights = []
    for line in doc["lines"]:
        try:
            weights.append(float(line.get("weight")))
        except (TypeError, ValueError):
            return None
    return sum(weights)


def _editor(plan: Plan, doc: dict, errors: dict, status: int = 200, block: str | None = None):
    return render(
        "plans/edit.html",
        block,
        status=status,
        plan=plan,
        doc=doc,
        rows=_editor_rows(doc),
        errors=errors,
        weight_sum=_weight_sum(doc),
        metric_codes=AGENT_CODES,
        metric_name=metric_name,
        lower=LOWER_IS_BETTER,
        categories=CATEGORIES,
        category_names=CATEGORY_NAMES,
        kinds=PERIOD_KIND_NAMES,
    )


@bp.get("/plans/<int:plan_id>/edit")
@require("plans.manage")
def plan_edit(plan_id: int):
    plan = _plan(plan_id)
    return _editor(plan, plan.current.document, {})


@bp.post("/plans/<int:plan_id>/check")
@require("plans.manage")
def plan_check(plan_id: int):
    """htmx, as the admin types: every field's message (empty where the field is fine), swapped
    into place out of band, so the field being typed in is never replaced."""
    plan = _plan(plan_id)
    doc, where = document_from_form(request.form, plan.position.name)
    try:
        plans.check(doc)
        errors = {}
    except plans.PlanErrors as exc:
        errors = field_errors(exc.errors, where)
    return render(
        "plans/_check.html",
        slots=sorted(set(_slots(request.form)) | set(errors)),
        errors=errors,
        weight_sum=_weight_sum(doc),
    )


def _slots(form) -> list[str]:
    """Every field of the editor that can carry a message."""
    slots = ["weights", "tiers", "scenarios", "lines", *plans.DEFAULTS]
    for key in form:
        if key.count("-") >= 2 and key.split("-")[0] in ("lines", "scenarios", "tiers"):
            slots.append(key)
            row = "-".join(key.split("-")[:2])
            slots.append(row)
            if key.split("-")[0] == "scenarios":
                slots.append(f"{row}-weights")
    return slots


@bp.post("/plans/<int:plan_id>/edit")
@require("plans.manage")
def plan_save(plan_id: int):
    plan = _plan(plan_id)
    doc, _where = document_from_form(request.form, plan.position.name)
    before = plan.current.number
    try:
        version = services.save_plan(current_user, doc, request.form.get("note", "").strip())
    except plans.PlanErrors as exc:
        db.session.rollback()
        # The page comes back without the blank rows, so errors go to the rows as re-shown.
        shown = {
            f"{k}.{n}": f"{k}-{n}"
            for k in ("lines", "scenarios", "tiers")
            for n in range(len(doc[k]))
        }
        return _editor(plan, doc, field_errors(exc.errors, shown), status=422)
    db.session.commit()
    outcome = {"saved": version.number} if version.number != before else {"unchanged": 1}
    return redirect_to(url_for("plans.plan_detail", plan_id=plan.id, **outcome))
