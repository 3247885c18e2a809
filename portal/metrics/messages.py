"""Messages kept with imports (rejection reasons, refusals, failures), read in each reader's
language. A lazy string is kept as its message id and parameters and translated when shown;
text kept before this (in the language of whoever ran the import) is shown as it is.
"""

from __future__ import annotations

import json

from flask_babel import gettext
from flask_babel.speaklater import LazyString
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

Message = str | dict  # as kept: plain text, or {"msgid": …, "params": {…}}


def stored(message) -> Message:
    """A message as kept: a lazy string (lazy_gettext) as its message id and parameters,
    lazy parameters included; anything else as text."""
    if isinstance(message, LazyString):
        if message._func is gettext and len(message._args) == 1:
            params = {name: _param(value) for name, value in message._kwargs.items()}
            return {"msgid": message._args[0], "params": params}
        return str(message)
    if message is None or isinstance(message, str | dict):
        return message
    return str(message)


def _param(value):
    if isinstance(value, LazyString):
        return stored(value)
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def shown(message: Message | None) -> str:
    """A kept message in the current language (kept text as it is)."""
    if isinstance(message, dict) and "msgid" in message:
        params = {
            name: shown(value) if isinstance(value, dict) else value
            for name, value in (message.get("params") or {}).items()
        }
        msgid = message["msgid"]
        return gettext(msgid, **params)
    return "" if message is None else str(message)


API_TOKEN = "API token "


def actor_shown(label: str) -> str:
    """Who ran an import, in the current language. Imports kept 'system' and 'API token
    <name>' in English; the token's name stays as its admin typed it."""
    if label == "system":
        return gettext("system")
    if label.startswith(API_TOKEN):
        return gettext("API token %(name)s", name=label[len(API_TOKEN) :])
    return label


class MessageText(TypeDecorator):
    """A text column holding a kept message: plain text as it is, a message id with its
    parameters as JSON (no text kept before starts the way that JSON does)."""

    impl = Text
    cache_ok = True
    _MARK = '{"msgid": '

    def process_bind_param(self, value, dialect):
        if isinstance(value, dict):
            return json.dumps(
                {"msgid": value["msgid"], "params": value.get("params") or {}},
                ensure_ascii=False,
            )
        return value

    def process_result_value(self, value, dialect):
        if value and value.startswith(self._MARK):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
