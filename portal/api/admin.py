"""Admin screen for API tokens: create (shown once), see last use, revoke."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.api import services
from portal.api.models import ApiToken
from portal.db import utcnow
from portal.extensions import db
from portal.web.auth import require
from portal.web.htmx import redirect_to, render

bp = Blueprint("api_tokens", __name__)


def _tokens():
    return db.session.scalars(
        select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
    ).all()


@bp.route("/admin/api-tokens", methods=["GET", "POST"])
@require("tokens.manage")
def token_list():
    error, plain, status = None, None, 200
    if request.method == "POST":
        try:
            _, plain = services.create_token(current_user, request.form.get("name", ""))
        except services.TokenError as err:
            error, status = err.message, 422
        else:
            db.session.commit()
    return render("api/tokens.html", status=status, tokens=_tokens(), error=error, plain=plain)


@bp.post("/admin/api-tokens/<int:token_id>/revoke")
@require("tokens.manage")
def token_revoke(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None:
        abort(404)
    services.revoke_token(current_user, token, utcnow())
    db.session.commit()
    return redirect_to(url_for("api_tokens.token_list"))
