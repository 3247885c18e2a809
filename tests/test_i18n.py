"""Chinese by default, English on request, and no text left untranslated."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from portal.accounts.models import Role
from tests.conftest import login, post

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "portal" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _source_messages() -> set:
    method_map = [("portal/**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map, keywords={**KEYWORDS, "ngettext": (1, 2)}
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_every_message_in_the_code_has_a_chinese_translation():
    with CATALOG.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    translated = {}
    for m in catalog:
        if not m.id:
            continue
        key = m.id if isinstance(m.id, str) else tuple(m.id)
        text = m.string if isinstance(m.string, str) else "".join(m.string)
        translated[key] = bool(text.strip()) and "fuzzy" not in m.flags
    missing = [m for m in _source_messages() if not translated.get(m)]
    assert not missing, f"untranslated (run `make extract-messages`, then translate): {missing}"


class _VisibleText(HTMLParser):
    """Collect text a person reads: element text, titles, placeholders and button labels."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code"):
            self._skip += 1
        for name, value in attrs:
            if name in ("placeholder", "title", "aria-label") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


ENGLISH_PHRASE = re.compile(r"\b[A-Za-z]{2,}(?:[ ,'-]+[A-Za-z]{2,}){1,}\b")
# Names that are the same in every language: the other language's own name, file formats.
ALLOWED = {
    "CSV UTF-8",
    "flask users import",
    "flask import",
    "flask scheduler run",
    "make run",
    "flask plans export",
    "flask plans import",
    "XLSX CSV",
}


def _english_phrases(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    text = " ".join(parser.parts)
    return [p for p in ENGLISH_PHRASE.findall(text) if p not in ALLOWED]


@pytest.fixture
def admin_client(app, make_user, make_team, make_position):
    lead = make_user({Role.TEAM_LEAD, Role.AGENT}, agent_no="lead")
    team = make_team("一组", leads=[lead])
    make_position("电话客服")
    make_user({Role.ADMIN}, agent_no="admin")
    make_user({Role.AGENT}, agent_no="agent", team=team)
    client = app.test_client()
    login(client, "admin")
    return client, team


PAGES = [
    "/",
    "/users",
    "/users/new",
    "/users?q=nobody-matches",
    "/teams",
    "/teams/new",
    "/positions",
    "/positions/new",
    "/admin/audit",
    "/admin/jobs",
    "/account/password",
    "/no-such-page",
    "/metrics/center",
    "/metrics/center?period=2026-W47",
    "/admin/api-tokens",
    "/imports",
]


def test_pages_are_chinese_by_default_with_no_english_left(admin_client):
    client, team = admin_client
    for url in [*PAGES, f"/teams/{team.id}", f"/metrics/teams/{team.id}"]:
        response = client.get(url)
        html = response.get_data(as_text=True)
        assert '<html lang="zh-CN"' in html, url
        assert _english_phrases(html) == [], url


def test_login_page_is_chinese_for_visitors(client):
    html = client.get("/login").get_data(as_text=True)
    assert "登录" in html
    assert _english_phrases(html) == []


def test_english_is_chosen_per_user_and_kept_across_logins(app, make_user):
    make_user({Role.AGENT}, agent_no="agent")
    client = app.test_client()
    login(client, "agent")
    assert "退出登录" in client.get("/").get_data(as_text=True)
    post(client, "/account/language", {"locale": "en", "next": "/"})
    assert "Log out" in client.get("/").get_data(as_text=True)

    other = app.test_client()  # another browser: no language cookie, same user
    login(other, "agent")
    html = other.get("/").get_data(as_text=True)
    assert '<html lang="en"' in html and "Log out" in html


def test_unknown_language_is_refused(app, make_user):
    make_user({Role.AGENT}, agent_no="agent")
    client = app.test_client()
    login(client, "agent")
    response = post(client, "/account/language", {"locale": "fr"})
    assert response.status_code == 400
    assert "退出登录" in client.get("/").get_data(as_text=True)


def test_template_translations_follow_the_locale_and_escape_their_values(app):
    from flask import render_template_string
    from flask_babel import force_locale

    source = (
        '{{ _("Hello, %(name)s", name="<b>") }}|'
        '{{ ngettext("%(num)s team", "%(num)s teams", 2) }}|{{ _("Log out") }}'
    )
    with app.test_request_context("/"):
        chinese = render_template_string(source)
        with force_locale("en"):
            english = render_template_string(source)
        again = render_template_string(source)
    assert english == "Hello, &lt;b&gt;|2 teams|Log out"
    assert chinese == again and "&lt;b&gt;" in chinese and "Log out" not in chinese
