"""The only code that reads HX-* headers: page-or-fragment rendering and htmx-aware answers."""

from __future__ import annotations

from flask import Response, redirect, render_template, request
from htmx_flask import make_response as htmx_response
from jinja2_fragments.flask import render_block


def is_partial() -> bool:
    """An htmx request that wants a fragment: not boosted and not a history restore."""
    hx = getattr(request, "htmx", None)
    return bool(hx) and not hx.boosted and not hx.history_restore_request


def render(template: str, block: str | None = None, status: int = 200, **context) -> Response:
    """Render the whole page, or only `block` of it for a partial htmx request."""
    if block and is_partial():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    return Response(body, status=status, mimetype="text/html")


def redirect_to(url: str) -> Response:
    """Redirect in a way both browsers and htmx follow (htmx would swap a 302's target in place)."""
    if is_partial():
        return htmx_response("", redirect=url)
    return redirect(url)


def add_vary(response: Response) -> Response:
    """after_request: one URL answers a page or a fragment, so caches key on HX-Request."""
    response.vary.add("HX-Request")
    return response
