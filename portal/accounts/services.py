"""Accounts and organisation: the rules for changing users, teams and positions.

Services check the rule, change state, flush and write the audit entry; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.accounts import security
from portal.accounts.models import Position, Role, Team, User, UserRole
from portal.audit.services import record
from portal.extensions import db


class AccountError(Exception):
    """A rule refused the change. `field` names the form field it belongs to, if any."""

    def __init__(self, message, field: str | None = None, wait: int = 0):
        super().__init__(str(message))
        self.message = message
        self.field = field
        self.wait = wait


# --- who may see what -----------------------------------------------------------------------


def led_team_ids(user: User) -> set[int]:
    return {t.id for t in user.led_teams}


def active_with_role(role: Role) -> list[User]:
    """Active users holding `role`, in id order (reviewers, admins to notify…)."""
    return list(
        db.session.scalars(
            select(User)
            .where(
                User.active.is_(True),
                User.id.in_(select(UserRole.user_id).where(UserRole.role == role.value)),
            )
            .order_by(User.id)
        )
    )


def can_view_user(viewer: User, user: User) -> bool:
    """Admins see everyone; a lead sees the members of teams they lead; everyone sees themself."""
    if viewer.id == user.id or viewer.has_role(Role.ADMIN):
        return True
    return viewer.has_role(Role.TEAM_LEAD) and user.team_id in led_team_ids(viewer)


def can_view_team(viewer: User, team: Team) -> bool:
    if viewer.has_role(Role.ADMIN):
        return True
    return viewer.has_role(Role.TEAM_LEAD) and team.id in led_team_ids(viewer)


# --- snapshots for the audit log ------------------------------------------------------------


def user_snapshot(user: User) -> dict:
    return {
        "agent_no": user.agent_no,
        "name": user.name,
        "email": user.email,
        "team": user.team.name if user.team else None,
        "position": user.position.name if user.position else None,
        "hire_date": user.hire_date,
        "roles": sorted(r.value for r in user.roles),
        "active": user.active,
    }


def team_snapshot(team: Team) -> dict:
    return {"name": team.name, "leads": [u.agent_no for u in team.leads]}


# --- users ----------------------------------------------------------------------------------


@dataclass
class UserData:
    agent_no: str
    name: str
    email: str | None
    team: Team | None
    position: Position | None
    hire_date: date | None
    roles: frozenset[Role]


def normalise_login(login: str) -> str:
    return login.strip().lower()


def _check_unique(data: UserData, user: User | None) -> None:
    agent_no_taken = db.session.scalar(
        select(User.id).where(func.lower(User.agent_no) == data.agent_no.lower())
    )
    if agent_no_taken and (user is None or agent_no_taken != user.id):
        raise AccountError(
            _l("This employee number is already used by another account."), "agent_no"
        )
    if data.email:
        email_taken = db.session.scalar(
            select(User.id).where(func.lower(User.email) == data.email.lower())
        )
        if email_taken and (user is None or email_taken != user.id):
            raise AccountError(
                _l("This e-mail address is already used by another account."), "email"
            )


def _apply(user: User, data: UserData) -> None:
    user.agent_no = data.agent_no.strip()
    user.name = data.name.strip()
    user.email = data.email.strip().lower() if data.email else None
    user.team = data.team
    user.position = data.position
    user.hire_date = data.hire_date
    user.set_roles(data.roles)


def create_user(actor: User | None, data: UserData, temporary: str | None = None) -> User:
    """Create a user with a one-time password; they must choose their own at first login."""
    if not data.roles:
        raise AccountError(_l("Choose at least one role."), "roles")
    _check_unique(data, None)
    user = User(active=True, must_change_password=True)
    _apply(user, data)
    if temporary:
        user.password_hash = security.hash_temporary(temporary)
    db.session.add(user)
    db.session.flush()
    record(actor, "user.create", "user", user.id, summary=user.agent_no, after=user_snapshot(user))
    return user


def update_user(actor: User | None, user: User, data: UserData) -> User:
    if not data.roles:
        raise AccountError(_l("Choose at least one role."), "roles")
    if actor is not None and user.id == actor.id and Role.ADMIN not in data.roles:
        raise AccountError(_l("You cannot remove your own administrator role."), "roles")
    _check_unique(data, user)
    before = user_snapshot(user)
    _apply(user, data)
    db.session.flush()
    after = user_snapshot(user)
    if after != before:
        record(
            actor, "user.update", "user", user.id, summary=user.agent_no, before=before, after=after
        )
    return user


def set_user_active(actor: User, user: User, active: bool, now: datetime) -> None:
    """Deactivate (ending every session at once) or reactivate an account."""
    if user.id == actor.id and not active:
        raise AccountError(_l("You cannot deactivate your own account."))
    if user.active == active:
        return
    user.active = active
    if not active:
        security.end_other_sessions(user, now)
    db.session.flush()
    record(
        actor,
        "user.activate" if active else "user.deactivate",
        "user",
        user.id,
        summary=user.agent_no,
        before={"active": not active},
        after={"active": active},
    )


def reset_password(actor: User, user: User, now: datetime) -> str:
    """Give the user a one-time password; all their sessions end and they must choose a new one."""
    temporary = security.temporary_password()
    user.password_hash = security.hash_temporary(temporary)
    user.must_change_password = True
    user.password_changed_at = now
    security.end_other_sessions(user, now)
    db.session.flush()
    record(actor, "user.reset_password", "user", user.id, summary=user.agent_no)
    return temporary


def change_password(user: User, current: str, new: str, now: datetime) -> None:
    """The user's own change: checks the current password, ends their other sessions."""
    if not security.verify_password(user, current):
        raise AccountError(_l("The current password is not correct."), "current")
    if security.verify_password(user, new):
        raise AccountError(_l("Choose a password different from the current one."), "new")
    problem = security.password_problem(new)
    if problem:
        raise AccountError(security.PASSWORD_PROBLEMS[problem], "new")
    user.password_hash = security.hash_password(new)
    user.must_change_password = False
    user.password_changed_at = now
    security.end_other_sessions(user, now, keep_token=user.session_token)
    db.session.flush()
    record(user, "user.change_password", "user", user.id, summary=user.agent_no)


def set_locale(user: User, locale: str) -> None:
    user.locale = locale
    db.session.flush()


# --- login ----------------------------------------------------------------------------------


def find_login_user(login: str) -> User | None:
    """The user for an employee number or e-mail address, case-insensitively."""
    key = normalise_login(login)
    if not key:
        return None
    return db.session.scalar(
        select(User).where((func.lower(User.agent_no) == key) | (func.lower(User.email) == key))
    )


def authenticate(
    login: str, password: str, address: str, policy: security.ThrottlePolicy, now: datetime
) -> User:
    """Check a login attempt against the throttle and the password; raise AccountError."""
    key = normalise_login(login)
    wait = security.throttle_wait(key, address, policy, now)
    if wait:
        raise AccountError(
            _l(
                "Too many failed attempts. Try again in %(minutes)s minutes.",
                minutes=max(1, -(-wait // 60)),
            ),
            wait=wait,
        )
    user = find_login_user(key)
    ok = security.verify_password(user, password)
    if not ok or user is None or not user.active:
        security.record_failure(key, address, now)
        raise AccountError(
            _l("Employee number or password is not correct, or the account is deactivated.")
        )
    security.clear_account_failures(key)
    if security.password_needs_rehash(user):
        user.password_hash = security.hash_password(password)
    return user


# --- teams and positions --------------------------------------------------------------------


def _name_taken(model, name: str, current_id: int | None) -> bool:
    found = db.session.scalar(select(model.id).where(func.lower(model.name) == name.lower()))
    return found is not None and found != current_id


def save_team(actor: User, team: Team | None, name: str, leads: list[User]) -> Team:
    name = name.strip()
    if not name:
        raise AccountError(_l("Enter a name."), "name")
    if _name_taken(Team, name, team.id if team else None):
        raise AccountError(_l("A team with this name already exists."), "name")
    for lead in leads:
        if not lead.has_role(Role.TEAM_LEAD):
            raise AccountError(_l("Every team lead must hold the team lead role."), "leads")
    before = team_snapshot(team) if team else None
    if team is None:
        team = Team(name=name)
        db.session.add(team)
    team.name = name
    team.leads = list(leads)
    db.session.flush()
    after = team_snapshot(team)
    if after != before:
        record(
            actor,
            "team.update" if before else "team.create",
            "team",
            team.id,
            summary=team.name,
            before=before,
            after=after,
        )
    return team


def save_position(actor: User, position: Position | None, name: str, description: str) -> Position:
    name = name.strip()
    if not name:
        raise AccountError(_l("Enter a name."), "name")
    if _name_taken(Position, name, position.id if position else None):
        raise AccountError(_l("A position with this name already exists."), "name")
    before = {"name": position.name, "description": position.description} if position else None
    if position is None:
        position = Position(name=name)
        db.session.add(position)
    position.name = name
    position.description = description.strip()
    db.session.flush()
    after = {"name": position.name, "description": position.description}
    if after != before:
        record(
            actor,
            "position.update" if before else "position.create",
            "position",
            position.id,
            summary=position.name,
            before=before,
            after=after,
        )
    return position
