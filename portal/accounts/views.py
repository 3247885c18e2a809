"""Login, own account, and the admin screens for users, teams and positions."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, make_response, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from portal.accounts import security, services
from portal.accounts.forms import (
    LanguageForm,
    LoginForm,
    PasswordForm,
    PositionForm,
    TeamForm,
    UserForm,
)
from portal.accounts.models import Position, Role, Team, User, UserRole
from portal.accounts.services import AccountError, UserData
from portal.db import utcnow
from portal.extensions import db
from portal.web.auth import public, require
from portal.web.htmx import redirect_to, render
from portal.web.session import LANG_COOKIE

bp = Blueprint("accounts", __name__)

PER_PAGE = 25


def _safe_next(target: str | None) -> str:
    """Only follow a `next` that stays on this site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/"):
            return target
    return url_for("home.index")


def _throttle_policy() -> security.ThrottlePolicy:
    cfg = current_app.config
    return security.ThrottlePolicy(
        max_account=cfg["LOGIN_MAX_FAILURES_ACCOUNT"],
        max_address=cfg["LOGIN_MAX_FAILURES_ADDRESS"],
        window=timedelta(minutes=cfg["LOGIN_FAILURE_WINDOW_MINUTES"]),
    )


def _field_error(form, err: AccountError) -> None:
    """Show a service's refusal at its field, or above the form."""
    field = getattr(form, err.field, None) if err.field else None
    if field is not None:
        field.errors = [*field.errors, err.message]
    else:
        form.form_errors.append(err.message)


# --- login and own account ------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect_to(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        now = utcnow()
        try:
            user = services.authenticate(
                form.login.data,
                form.password.data,
                request.remote_addr or "",
                _throttle_policy(),
                now,
            )
        except AccountError as err:
            db.session.commit()  # keep the recorded failure
            form.form_errors.append(err.message)
            status = 429 if err.wait else 401
        else:
            cfg = current_app.config
            security.start_session(
                user,
                remember=form.remember.data,
                now=now,
                max_hours=cfg["SESSION_MAX_HOURS"],
                remember_days=cfg["REMEMBER_COOKIE_DURATION"].days,
                ip=request.remote_addr or "",
                user_agent=request.user_agent.string,
            )
            db.session.commit()
            login_user(user, remember=form.remember.data)
            session.pop("csrf_token", None)  # each login signs its forms with a new secret
            return redirect_to(_safe_next(request.args.get("next")))
    elif form.is_submitted():
        status = 422
    return render("accounts/login.html", "form", status=status, form=form)


@bp.post("/logout")
@require("portal.use")
def logout():
    security.end_session(current_user.session_token, utcnow())
    db.session.commit()
    logout_user()
    session.pop("csrf_token", None)
    return redirect_to(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@require("portal.use")
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, form.current.data, form.new.data, utcnow())
        except AccountError as err:
            _field_error(form, err)
        else:
            db.session.commit()
            return render("accounts/password_changed.html", "result")
    status = 422 if form.is_submitted() else 200
    return render(
        "accounts/password.html",
        "form",
        status=status,
        form=form,
        forced=current_user.must_change_password,
    )


@bp.post("/account/language")
@public
def language():
    form = LanguageForm()
    if not form.validate_on_submit():
        abort(400)
    if current_user.is_authenticated:
        services.set_locale(current_user, form.locale.data)
        db.session.commit()
    response = make_response(redirect_to(_safe_next(request.form.get("next"))))
    response.set_cookie(
        LANG_COOKIE, form.locale.data, max_age=365 * 24 * 3600, samesite="Lax", httponly=True
    )
    return response


# --- users ----------------------------------------------------------------------------------


def _teams():
    return db.session.scalars(select(Team).order_by(Team.name)).all()


def _positions():
    return db.session.scalars(select(Position).order_by(Position.name)).all()


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id, options=[joinedload(User.team), joinedload(User.position)])
    if user is None:
        abort(404)
    return user


def _user_data(form: UserForm) -> UserData:
    return UserData(
        agent_no=form.agent_no.data.strip(),
        name=form.name.data.strip(),
        email=(form.email.data or "").strip() or None,
        team=db.session.get(Team, form.team_id.data) if form.team_id.data else None,
        position=db.session.get(Position, form.position_id.data) if form.position_id.data else None,
        hire_date=form.hire_date.data,
        roles=frozenset(Role(r) for r in form.roles.data),
    )


@bp.get("/users")
@require("users.manage")
def user_list():
    q = request.args.get("q", "").strip()
    team_id = request.args.get("team", 0, type=int)
    role = request.args.get("role", "")
    status = request.args.get("status", "active")
    stmt = select(User).options(joinedload(User.team), joinedload(User.position))
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(User.agent_no.ilike(like), User.name.ilike(like), User.email.ilike(like))
        )
    if team_id:
        stmt = stmt.where(User.team_id == team_id)
    if role in {r.value for r in Role}:
        stmt = stmt.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == role)))
    if status in ("active", "inactive"):
        stmt = stmt.where(User.active.is_(status == "active"))
    page = db.paginate(
        stmt.order_by(User.agent_no),
        page=request.args.get("page", 1, type=int),
        per_page=PER_PAGE,
        error_out=False,
    )
    return render(
        "accounts/users.html",
        "results",
        page=page,
        q=q,
        team_id=team_id,
        role=role,
        state=status,
        teams=_teams(),
        roles=list(Role),
    )


@bp.route("/users/new", methods=["GET", "POST"])
@require("users.manage")
def user_create():
    form = UserForm(teams=_teams(), positions=_positions())
    if form.validate_on_submit():
        try:
            temporary = security.temporary_password()
            user = services.create_user(current_user, _user_data(form), temporary=temporary)
        except AccountError as err:
            db.session.rollback()
            _field_error(form, err)
        else:
            db.session.commit()
            return render(
                "accounts/user_password.html",
                "result",
                user=user,
                temporary=temporary,
                created=True,
            )
    status = 422 if form.is_submitted() else 200
    return render("accounts/user_form.html", "form", status=status, form=form, user=None)


@bp.get("/users/<int:user_id>")
@require("portal.use")
def user_detail(user_id: int):
    user = _user_or_404(user_id)
    if not services.can_view_user(current_user, user):
        abort(403)
    sessions = security.live_session_count(user, utcnow())
    return render("accounts/user_detail.html", user=user, live_sessions=sessions)


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@require("users.manage")
def user_edit(user_id: int):
    user = _user_or_404(user_id)
    form = UserForm(obj=user, teams=_teams(), positions=_positions())
    if request.method == "GET":
        form.team_id.data = user.team_id or 0
        form.position_id.data = user.position_id or 0
        form.roles.data = sorted(r.value for r in user.roles)
    if form.validate_on_submit():
        try:
            services.update_user(current_user, user, _user_data(form))
        except AccountError as err:
            db.session.rollback()
            user = _user_or_404(user_id)
            _field_error(form, err)
        else:
            db.session.commit()
            return redirect_to(url_for("accounts.user_detail", user_id=user.id))
    status = 422 if form.is_submitted() else 200
    return render("accounts/user_form.html", "form", status=status, form=form, user=user)


@bp.post("/users/<int:user_id>/active")
@require("users.manage")
def user_set_active(user_id: int):
    user = _user_or_404(user_id)
    active = request.form.get("active") == "1"
    try:
        services.set_user_active(current_user, user, active, utcnow())
    except AccountError as err:
        return render(
            "errors/_message.html", status=409, title=_("Not possible"), message=err.message
        )
    db.session.commit()
    return redirect_to(url_for("accounts.user_detail", user_id=user.id))


@bp.post("/users/<int:user_id>/reset-password")
@require("users.manage")
def user_reset_password(user_id: int):
    user = _user_or_404(user_id)
    temporary = services.reset_password(current_user, user, utcnow())
    db.session.commit()
    return render(
        "accounts/user_password.html", "result", user=user, temporary=temporary, created=False
    )


# --- teams ----------------------------------------------------------------------------------


def _lead_candidates():
    return db.session.scalars(
        select(User)
        .where(
            User.active.is_(True),
            User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.TEAM_LEAD.value)),
        )
        .order_by(User.agent_no)
    ).all()


def _team_or_404(team_id: int) -> Team:
    team = db.session.get(Team, team_id, options=[selectinload(Team.leads)])
    if team is None:
        abort(404)
    return team


@bp.get("/teams")
@require("org.manage")
def team_list():
    counts = dict(
        db.session.execute(
            select(User.team_id, func.count()).where(User.active.is_(True)).group_by(User.team_id)
        ).all()
    )
    page = db.paginate(
        select(Team).options(selectinload(Team.leads)).order_by(Team.name),
        page=request.args.get("page", 1, type=int),
        per_page=PER_PAGE,
        error_out=False,
    )
    return render("accounts/teams.html", page=page, counts=counts)


@bp.route("/teams/new", methods=["GET", "POST"], defaults={"team_id": None})
@bp.route("/teams/<int:team_id>/edit", methods=["GET", "POST"])
@require("org.manage")
def team_edit(team_id: int | None):
    team = _team_or_404(team_id) if team_id else None
    form = TeamForm(obj=team)
    candidates = _lead_candidates()
    form.leads.choices = [(u.id, f"{u.agent_no} {u.name}") for u in candidates]
    if request.method == "GET" and team:
        form.leads.data = [u.id for u in team.leads]
    if form.validate_on_submit():
        leads = [u for u in candidates if u.id in set(form.leads.data or [])]
        try:
            services.save_team(current_user, team, form.name.data, leads)
        except AccountError as err:
            db.session.rollback()
            _field_error(form, err)
        else:
            db.session.commit()
            return redirect_to(url_for("accounts.team_list"))
    status = 422 if form.is_submitted() else 200
    return render("accounts/team_form.html", "form", status=status, form=form, team=team)


@bp.get("/teams/<int:team_id>")
@require("team.view")
def team_detail(team_id: int):
    team = _team_or_404(team_id)
    if not services.can_view_team(current_user, team):
        abort(403)
    members = db.session.scalars(
        select(User)
        .options(joinedload(User.position))
        .where(User.team_id == team.id)
        .order_by(User.active.desc(), User.agent_no)
    ).all()
    return render("accounts/team_detail.html", team=team, members=members)


# --- positions ------------------------------------------------------------------------------


@bp.get("/positions")
@require("org.manage")
def position_list():
    counts = dict(
        db.session.execute(
            select(User.position_id, func.count())
            .where(User.active.is_(True))
            .group_by(User.position_id)
        ).all()
    )
    return render("accounts/positions.html", positions=_positions(), counts=counts)


@bp.route("/positions/new", methods=["GET", "POST"], defaults={"position_id": None})
@bp.route("/positions/<int:position_id>/edit", methods=["GET", "POST"])
@require("org.manage")
def position_edit(position_id: int | None):
    position = db.session.get(Position, position_id) if position_id else None
    if position_id and position is None:
        abort(404)
    form = PositionForm(obj=position)
    if form.validate_on_submit():
        try:
            services.save_position(
                current_user, position, form.name.data, form.description.data or ""
            )
        except AccountError as err:
            db.session.rollback()
            _field_error(form, err)
        else:
            db.session.commit()
            return redirect_to(url_for("accounts.position_list"))
    status = 422 if form.is_submitted() else 200
    return render(
        "accounts/position_form.html", "form", status=status, form=form, position=position
    )
