"""The admin's settings form: its values are checked by portal/system/settings.py."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField


class SettingsForm(FlaskForm):
    KEYS = ("leaderboard_humane", "leaderboard_top_n")  # each field edits the setting it names

    leaderboard_humane = BooleanField(
        _l("Humane leaderboards: show the top and each person's own neighbourhood")
    )
    leaderboard_top_n = StringField(_l("How many people the top of a humane leaderboard shows"))
