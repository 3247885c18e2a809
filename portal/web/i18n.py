"""Translations in templates without Flask-Babel's per-call lookups.

Flask-Babel installs `_` for Jinja as a chain of three context calls that looks the request's
locale and catalog up again for every string (about 10 µs each, and a page has dozens). Here
`_`, `gettext` and `ngettext` find the catalog of the current locale (Flask-Babel's own, so
`force_locale` and a changed language apply) with one lookup, and behave as Jinja's new-style
gettext: the translation is a format string, the variables are escaped.
"""

from __future__ import annotations

from babel.support import NullTranslations
from flask import Flask
from flask_babel import get_domain, get_locale
from jinja2 import pass_eval_context
from markupsafe import Markup

_catalogs: dict = {}  # Locale -> Flask-Babel's Translations for the default domain


def translations() -> NullTranslations:
    """The catalog of the current locale (none outside a request or app context)."""
    locale = get_locale()
    if locale is None:
        return NullTranslations()
    found = _catalogs.get(locale)
    if found is None:
        found = _catalogs[locale] = get_domain().get_translations()
    return found


@pass_eval_context
def gettext(eval_ctx, string: str, **variables) -> str:
    text = translations().ugettext(string)
    if eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


@pass_eval_context
def ngettext(eval_ctx, singular: str, plural: str, num: int, **variables) -> str:
    variables.setdefault("num", num)
    text = translations().ungettext(singular, plural, num)
    if eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


def init_app(app: Flask) -> None:
    """Replace Flask-Babel's template callables (after `babel.init_app`)."""
    app.jinja_env.globals.update(_=gettext, gettext=gettext, ngettext=ngettext)
