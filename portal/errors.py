"""Error answers: a full page for browsers, a small fragment for htmx, JSON for the API."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.extensions import db
from portal.web.htmx import is_partial

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Go back and try again.")),
    403: (
        _l("Not allowed"),
        _l("Your account may not open this page. If you need it, ask an administrator."),
    ),
    404: (
        _l("Not found"),
        _l("This page does not exist. Check the address or go to the home page."),
    ),
    405: (_l("Not allowed"), _l("This action cannot be done this way. Go back and use the page.")),
    413: (_l("File too large"), None),  # the message states the limit: _too_large()
    500: (
        _l("Something went wrong"),
        _l(
            "The portal hit an error and nothing was saved. "
            "Try again; if it persists, tell an administrator."
        ),
    ),
}
CSRF_MESSAGE = (
    _l("Page expired"),
    _l(
        "This form is no longer valid, usually because you logged out meanwhile. "
        "Reload the page and try again."
    ),
)


def _answer(status: int, title, message):
    if request.path.startswith("/api/"):
        return {"error": str(message)}, status
    template = "errors/_message.html" if is_partial() else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status


def _too_large():
    """What the upload limit is (MAX_UPLOAD_MB) and how larger files get in."""
    limit = current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
    return _l(
        "The upload is larger than the portal accepts (at most %(mb)s MB). Split the file and "
        "try again, or ask an administrator to import it with 'flask import' or through the "
        "inbox folder, which take files of any size.",
        mb=f"{limit:g}",
    )


def _http_error(exc: HTTPException):
    status = exc.code or 500
    title, message = MESSAGES.get(status, (exc.name, exc.description))
    if status == 413:
        message = _too_large()
    return _answer(status, title, message)


def _csrf_error(exc: CSRFError):
    return _answer(400, *CSRF_MESSAGE)


def _server_error(exc: Exception):
    db.session.rollback()
    return _answer(500, *MESSAGES[500])


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(500, _server_error)
