"""Names of the metrics on screen, and how their values are shown."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.metrics.compute import RATES, SECONDS

NAMES = {
    "handled": _l("Contacts handled"),
    "agent_answer_rate": _l("Agent answer rate"),
    "aht": _l("Average handling time"),
    "asa": _l("Average speed of answer"),
    "fcr": _l("First-contact resolution"),
    "transfer_rate": _l("Transfer rate"),
    "csat": _l("Customer satisfaction"),
    "nps": _l("Net promoter score"),
    "qa_score": _l("QA score"),
    "resolved_per_hour": _l("Resolutions per handle-hour"),
    "training_completion": _l("Training completion"),
    "peer_score": _l("Peer rating"),
    "knowledge_contrib": _l("Knowledge contributions"),
    "brand_sentiment": _l("Brand sentiment"),
    "soothing_rate": _l("De-escalation success"),
    "offered": _l("Offered"),
    "answer_rate": _l("Answer rate"),
    "abandon_rate": _l("Abandonment rate"),
    "service_level": _l("Service level"),
}


PERIOD_KIND_NAMES = {"weekly": _l("weekly"), "monthly": _l("monthly"), "quarterly": _l("quarterly")}


def metric_name(code: str) -> str:
    return str(NAMES.get(code, code))


def format_metric(value: float | None, code: str) -> str:
    """A value as people read it: rates in percent, times in seconds; no value is a dash."""
    if value is None:
        return "—"
    if code in RATES:
        return f"{value * 100:.1f}%"
    if code in SECONDS:
        return _("%(seconds)s s", seconds=f"{value:.0f}")
    if code in ("handled", "offered", "knowledge_contrib"):
        return f"{value:.0f}"
    if code == "resolved_per_hour":
        return f"{value:.2f}"
    return f"{value:.1f}"
