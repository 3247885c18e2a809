"""Portal settings an admin changes on a screen: one JSON value per key in the settings table;
a key without a row takes its default here. Every change is checked and audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit.services import record
from portal.cache import Timed
from portal.db import utcnow
from portal.extensions import db
from portal.system.models import Setting


class SettingError(ValueError):
    """A value a setting cannot take; `message` says what it can."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "on", "yes", "y"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("", "0", "false", "off", "no", "n"):
        return False
    raise SettingError(_l("Choose on or off."))


def _whole_number(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool):
            value = None  # True is an int to Python, not a number to a person
        elif isinstance(value, str):
            text = value.strip()
            value = int(text) if text.lstrip("+-").isdigit() else None
        if not isinstance(value, int) or not low <= value <= high:
            raise SettingError(
                _l("Enter a whole number from %(low)s to %(high)s.", low=low, high=high)
            )
        return value

    return check


@dataclass(frozen=True)
class Spec:
    default: object
    check: Callable[[object], object]


SETTINGS: dict[str, Spec] = {
    # Leaderboards show the top N and each person's own neighbourhood, never the bottom of the
    # list (减少数字压迫感); off, they show every ranked person, page by page.
    "leaderboard_humane": Spec(True, _boolean),
    "leaderboard_top_n": Spec(10, _whole_number(1, 100)),
}
DEFAULTS = {key: spec.default for key, spec in SETTINGS.items()}


def _spec(key: str) -> Spec:
    if key not in SETTINGS:
        raise KeyError(f"unknown setting {key!r}")
    return SETTINGS[key]


def get_setting(key: str) -> object:
    """The value of setting `key`: the stored one, or its default when none is stored."""
    spec = _spec(key)
    row = db.session.get(Setting, key)
    return spec.default if row is None else row.value


def get_settings(*keys: str) -> dict[str, object]:
    """Several settings in one query (a page reads all it needs at once)."""
    for key in keys:
        _spec(key)
    stored = dict(
        db.session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(keys))).all()
    )
    return {key: stored.get(key, DEFAULTS[key]) for key in keys}


_recent = Timed()


def recent_settings(*keys: str, seconds: float) -> dict[str, object]:
    """`get_settings`, as this process read them at most `seconds` ago (a change made by this
    process shows at once): for pages everyone opens all the time, such as the leaderboards."""
    return _recent.get((db.engine.url, keys), seconds, lambda: get_settings(*keys))


def set_setting(key: str, value: object, actor: User | None) -> object:
    """Check `value` (a form's text is accepted too), store it and audit the change; returns
    the value stored. Setting what is already in force changes nothing."""
    spec = _spec(key)
    checked = spec.check(value)
    row = db.session.get(Setting, key)
    before = spec.default if row is None else row.value
    if before == checked:
        return checked
    if row is None:
        row = Setting(key=key)
        db.session.add(row)
    row.value = checked
    row.updated_at = utcnow()
    row.updated_by = actor.id if actor is not None else None
    db.session.flush()
    _recent.clear()
    db.session.info["settings_changed"] = True  # cleared again once committed, see below
    record(
        actor,
        "setting.change",
        "setting",
        key,
        summary=f"{key}: {before!r} → {checked!r}",
        before={key: before},
        after={key: checked},
    )
    return checked


@event.listens_for(Session, "after_commit")
def _forget_once_committed(session) -> None:
    """A request of another thread may have read the old value between the change's flush and
    its commit, and kept it: forget it again once the change is committed."""
    if session.info.pop("settings_changed", False):
        _recent.clear()
