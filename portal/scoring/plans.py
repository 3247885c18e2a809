"""Assessment plans as documents: the JSON of interfaces.md, its checks, and its defaults.

A plan is kept as one document per version (plan_versions.document); this module turns what a
person or a file gives into a complete, checked document, says precisely which field breaks which
rule, and turns a checked document into the engine's Rules.
"""

from __future__ import annotations

import copy
import math
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from portal.metrics.compute import AGENT_CODES, LOWER_IS_BETTER
from portal.scoring.engine import CATEGORIES, DEFAULT_TIERS, Band, Line, Rules, Scenario, Tier

PERIOD_KINDS = ("weekly", "monthly", "quarterly")
DEFAULTS = {
    "period_kind": "monthly",
    "min_volume": 50,
    "base_bonus": 0,
    "service_star_count": 3,
    "award_min_final": 90,
}
DEFAULT_TIER_ROWS = [{"from": t.lower, "multiplier": t.multiplier} for t in DEFAULT_TIERS]
WEIGHT_TOLERANCE = 1e-6


def _line(metric, category, core, weight, f, t, x=None, new=None, min_sample=0) -> dict:
    line = {
        "metric": metric,
        "category": category,
        "core": core,
        "weight": weight,
        "threshold": f,
        "target": t,
        "stretch": x,
        "min_sample": min_sample,
    }
    if new:
        line["new_agent"] = dict(zip(("threshold", "target", "stretch"), new, strict=True))
    return line


# scoring.md §1: the seeded plans, with thresholds from the industry practice of the seeds.
DEFAULT_PLANS = {
    "电话客服": [
        _line("aht", "efficiency", True, 40, 420, 360, 300, new=(480, 420, 360)),
        _line("csat", "quality", True, 30, 0.80, 0.90, 0.95, min_sample=5),
        _line("qa_score", "quality", False, 15, 70, 85, 95),
        _line("fcr", "quality", False, 15, 0.65, 0.75, 0.85),
    ],
    "技术支持": [
        _line("fcr", "quality", True, 50, 0.60, 0.72, 0.82),
        _line("knowledge_contrib", "development", True, 20, 2, 5, 10),
        _line("aht", "efficiency", False, 15, 900, 720, 600, new=(1080, 900, 720)),
        _line("handled", "efficiency", False, 15, 250, 400, 550, new=(150, 250, 400)),
    ],
    "社交媒体客服": [
        _line("asa", "efficiency", True, 30, 120, 60, 30),
        _line("brand_sentiment", "experience", True, 40, 60, 75, 85),
        _line("csat", "quality", False, 15, 0.80, 0.90, 0.95, min_sample=5),
        _line("handled", "efficiency", False, 15, 600, 900, 1200, new=(400, 600, 900)),
    ],
}


def default_document(position: str) -> dict:
    """The seeded plan of a known position; the phone plan's lines for any other."""
    return {
        "position": position,
        **DEFAULTS,
        "base_bonus": 1000,
        "lines": [dict(line) for line in DEFAULT_PLANS.get(position, DEFAULT_PLANS["电话客服"])],
        "scenarios": [],
        "tiers": [dict(t) for t in DEFAULT_TIER_ROWS],
    }


class PlanErrors(ValueError):
    """Every broken rule of a plan document: field path → message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _tidy(number: float) -> float | int:
    """Whole numbers stored as such, so a plan file reads 40 rather than 40.0."""
    return int(number) if number.is_integer() else number


def _date(value) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def check(raw: dict) -> dict:
    """A complete plan document from `raw` (defaults filled in), or PlanErrors naming each
    broken rule at its field ("lines.0.weight", "scenarios.1.to", "weights", …)."""
    errors: dict[str, object] = {}
    if not isinstance(raw, dict):
        raise PlanErrors({"plan": str(_l("A plan is a JSON object."))})
    raw = copy.deepcopy(raw)
    doc = {**DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
    doc.setdefault("tiers", [dict(t) for t in DEFAULT_TIER_ROWS])
    doc.setdefault("scenarios", [])
    position = str(doc.get("position") or "").strip()
    if not position:
        errors["position"] = _l("Name the position (岗位) the plan is for.")
    doc["position"] = position
    if doc["period_kind"] not in PERIOD_KINDS:
        errors["period_kind"] = _l("The period kind is weekly, monthly or quarterly.")
    for key, low in (("min_volume", 0), ("service_star_count", 0)):
        value = _number(doc[key])
        if value is None or value < low or not value.is_integer():
            errors[key] = _l("A whole number, 0 or more.")
        else:
            doc[key] = int(value)
    for key in ("base_bonus", "award_min_final"):
        value = _number(doc[key])
        if value is None or value < 0:
            errors[key] = _l("A number, 0 or more.")
        else:
            doc[key] = _tidy(value)
    lines = doc.get("lines")
    if not isinstance(lines, list) or not lines:
        errors["lines"] = _l("A scorecard needs at least one line.")
        lines = []
    metrics = [_check_line(i, line, errors) for i, line in enumerate(lines)]
    doc["lines"] = lines
    seen = set()
    for i, metric in enumerate(metrics):
        if metric in seen:
            errors[f"lines.{i}.metric"] = _l("This metric already has a line.")
        seen.add(metric)
    normal = {
        line.get("metric"): _number(line.get("weight"))
        for line in lines
        if isinstance(line, dict) and _number(line.get("weight")) is not None
    }
    if lines and len(normal) == len(lines) and abs(sum(normal.values()) - 100) > WEIGHT_TOLERANCE:
        errors["weights"] = _l(
            "The weights add up to %(sum)s; they must add up to 100.",
            sum=f"{sum(normal.values()):g}",
        )
    _check_scenarios(doc, normal, errors)
    _check_tiers(doc, errors)
    if errors:
        raise PlanErrors({k: str(v) for k, v in errors.items()})
    order = ("position", *DEFAULTS, "lines", "scenarios", "tiers")
    return {key: doc[key] for key in order}


def _check_line(i: int, line, errors: dict) -> str | None:
    at = f"lines.{i}"
    if not isinstance(line, dict):
        errors[at] = _l("Each line is an object with metric, category, weight and targets.")
        return None
    metric = line.get("metric")
    if metric not in AGENT_CODES:
        errors[f"{at}.metric"] = _l("Choose a metric of the list.")
    if line.get("category") not in CATEGORIES:
        errors[f"{at}.category"] = _l(
            "The category is quality, efficiency, experience or development."
        )
    weight = _number(line.get("weight"))
    if weight is None or not 0 < weight <= 100:
        errors[f"{at}.weight"] = _l("A weight is a number above 0 and at most 100.")
    else:
        line["weight"] = _tidy(weight)
    line["core"] = bool(line.get("core", False))
    min_sample = _number(line.get("min_sample", 0) or 0)
    if min_sample is None or min_sample < 0 or not min_sample.is_integer():
        errors[f"{at}.min_sample"] = _l("A whole number, 0 or more.")
    else:
        line["min_sample"] = int(min_sample)
    lower = metric in LOWER_IS_BETTER
    _check_band(line, at, lower, errors)
    if line.get("new_agent"):
        if isinstance(line["new_agent"], dict):
            _check_band(line["new_agent"], f"{at}.new_agent", lower, errors)
        else:
            errors[f"{at}.new_agent"] = _l("New-agent values are threshold, target and stretch.")
    else:
        line.pop("new_agent", None)
    return metric


def _check_band(band: dict, at: str, lower: bool, errors: dict) -> None:
    f, t = _number(band.get("threshold")), _number(band.get("target"))
    x = _number(band.get("stretch"))
    for key, value in (("threshold", f), ("target", t)):
        if value is None:
            errors[f"{at}.{key}"] = _l("A number is needed here.")
    if band.get("stretch") not in (None, "") and x is None:
        errors[f"{at}.stretch"] = _l("A number, or leave it empty.")
    if f is None or t is None:
        return
    band.update(threshold=_tidy(f), target=_tidy(t), stretch=None if x is None else _tidy(x))
    if lower:
        if not f > t:
            errors[f"{at}.target"] = _l(
                "Lower is better for this metric: the target must be below the threshold."
            )
        elif x is not None and not t >= x:
            errors[f"{at}.stretch"] = _l(
                "Lower is better for this metric: the stretch must be at or below the target."
            )
    elif not f < t:
        errors[f"{at}.target"] = _l("The target must be above the threshold.")
    elif x is not None and not t <= x:
        errors[f"{at}.stretch"] = _l("The stretch must be at or above the target.")


def _check_scenarios(doc: dict, normal: dict, errors: dict) -> None:
    scenarios = doc["scenarios"]
    if not isinstance(scenarios, list):
        errors["scenarios"] = _l("Scenarios are a list.")
        return
    spans = []
    for i, scenario in enumerate(scenarios):
        at = f"scenarios.{i}"
        if not isinstance(scenario, dict):
            errors[at] = _l("Each scenario has a name, from, to and weights.")
            continue
        name = str(scenario.get("name") or "").strip()
        if not name or name == "normal":
            errors[f"{at}.name"] = _l("Name the scenario (e.g. peak, crisis); 'normal' is taken.")
        scenario["name"] = name
        first, last = _date(scenario.get("from")), _date(scenario.get("to"))
        if first is None:
            errors[f"{at}.from"] = _l("A date such as 2026-11-01.")
        if last is None:
            errors[f"{at}.to"] = _l("A date such as 2026-11-11.")
        elif first is not None and last < first:
            errors[f"{at}.to"] = _l("The scenario ends before it starts.")
        weights = scenario.get("weights") or {}
        if not isinstance(weights, dict):
            errors[f"{at}.weights"] = _l("Weights are given per metric.")
            continue
        checked = {}
        for metric, value in weights.items():
            number = _number(value)
            if metric not in normal:
                errors[f"{at}.weights.{metric}"] = _l("This metric has no line in the plan.")
            elif number is None or not 0 <= number <= 100:
                errors[f"{at}.weights.{metric}"] = _l("A weight is a number from 0 to 100.")
            else:
                checked[metric] = _tidy(number)
        scenario["weights"] = checked
        in_force = {**normal, **checked}
        total = sum(in_force.values())
        if normal and abs(total - 100) > WEIGHT_TOLERANCE and f"{at}.weights" not in errors:
            errors[f"{at}.weights"] = _l(
                "On this scenario's days the weights add up to %(sum)s; they must add up to 100.",
                sum=f"{total:g}",
            )
        if first is not None and last is not None and last >= first:
            for j, (other_first, other_last) in spans:
                if first <= other_last and other_first <= last:
                    errors[f"{at}.from"] = _l(
                        "This scenario overlaps scenario %(n)s: a day has one scenario only.",
                        n=j + 1,
                    )
            spans.append((i, (first, last)))


def _check_tiers(doc: dict, errors: dict) -> None:
    tiers = doc["tiers"]
    if not isinstance(tiers, list) or not tiers:
        errors["tiers"] = _l("The tier table needs at least one tier.")
        return
    bounds = []
    for i, tier in enumerate(tiers):
        at = f"tiers.{i}"
        lower = _number(tier.get("from")) if isinstance(tier, dict) else None
        multiplier = _number(tier.get("multiplier")) if isinstance(tier, dict) else None
        if lower is None or lower < 0:
            errors[f"{at}.from"] = _l("A score, 0 or more.")
        if multiplier is None or multiplier < 0:
            errors[f"{at}.multiplier"] = _l("A multiplier, 0 or more.")
        if lower is not None and multiplier is not None:
            tier.update({"from": _tidy(lower), "multiplier": _tidy(multiplier)})
            bounds.append(lower)
    if len(bounds) == len(tiers) and bounds != sorted(set(bounds)):
        errors["tiers"] = _l("Tiers go from the lowest score up, each starting higher.")


def rules(doc: dict) -> Rules:
    """The engine's view of a checked plan document."""

    def band(values: dict) -> Band:
        return Band(values["threshold"], values["target"], values.get("stretch"))

    return Rules(
        lines=tuple(
            Line(
                metric=line["metric"],
                category=line["category"],
                weight=line["weight"],
                core=line["core"],
                band=band(line),
                lower_is_better=line["metric"] in LOWER_IS_BETTER,
                new_agent=band(line["new_agent"]) if line.get("new_agent") else None,
                min_sample=line.get("min_sample", 0),
            )
            for line in doc["lines"]
        ),
        scenarios=tuple(
            Scenario(
                s["name"], date.fromisoformat(s["from"]), date.fromisoformat(s["to"]), s["weights"]
            )
            for s in doc["scenarios"]
        ),
        tiers=tuple(Tier(t["from"], t["multiplier"]) for t in doc["tiers"]),
        min_volume=doc["min_volume"],
        base_bonus=Decimal(str(doc["base_bonus"])),
        service_star_count=doc["service_star_count"],
        award_min_final=doc["award_min_final"],
    )


def flatten(doc: dict) -> dict:
    """A plan as flat `field: value` pairs, so an audit entry shows a readable diff of two
    versions ("lines.aht.weight: 40 → 45")."""
    flat = {k: v for k, v in doc.items() if k not in ("lines", "scenarios", "tiers")}
    for line in doc.get("lines", []):
        for key, value in line.items():
            if key == "new_agent":
                for band_key, band_value in (value or {}).items():
                    flat[f"lines.{line['metric']}.new_agent.{band_key}"] = band_value
            elif key != "metric":
                flat[f"lines.{line['metric']}.{key}"] = value
    for scenario in doc.get("scenarios", []):
        at = f"scenarios.{scenario['name']}"
        flat[f"{at}.dates"] = f"{scenario['from']}…{scenario['to']}"
        for metric, weight in scenario["weights"].items():
            flat[f"{at}.weights.{metric}"] = weight
    for tier in doc.get("tiers", []):
        flat[f"tiers.{tier['from']:g}"] = tier["multiplier"]
    return flat
