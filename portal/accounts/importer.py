"""`flask users import`: create and update users from a CSV file, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from portal.accounts import security, services
from portal.accounts.models import Position, Role, Team, User
from portal.audit.services import record
from portal.extensions import db
from portal.textfiles import read_csv

COLUMNS = ["agent_no", "name", "email", "team", "position", "roles", "hire_date"]

# Role names accepted in the file: the codes, and the Chinese names HR files use.
ROLE_NAMES = {r.value: r for r in Role} | {
    "坐席": Role.AGENT,
    "组长": Role.TEAM_LEAD,
    "质检员": Role.QA,
    "质检": Role.QA,
    "质检主管": Role.QA_LEAD,
    "管理员": Role.ADMIN,
}


@dataclass
class ImportReport:
    encoding: str = ""
    unknown_columns: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # row, agent_no, reason
    teams_created: list[str] = field(default_factory=list)
    positions_created: list[str] = field(default_factory=list)
    temporary_passwords: dict[str, str] = field(default_factory=dict)
    committed: bool = False


def _parse_date(raw: str, today: date) -> date | None:
    if not raw:
        return None
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            value = datetime.strptime(raw, fmt).date()
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"hire_date {raw!r} is not a date; write it as YYYY-MM-DD")
    if value.year < 1950 or value > today + timedelta(days=366):
        raise ValueError(f"hire_date {raw} is not plausible (1950 to one year ahead)")
    return value


def _parse_roles(raw: str) -> frozenset[Role]:
    if not raw.strip():
        return frozenset({Role.AGENT})
    roles = set()
    for part in raw.replace("；", ";").split(";"):
        name = part.strip()
        if not name:
            continue
        role = ROLE_NAMES.get(name.lower()) or ROLE_NAMES.get(name)
        if role is None:
            known = ", ".join(r.value for r in Role)
            raise ValueError(f"unknown role {name!r}; use {known} separated by ';'")
        roles.add(role)
    return frozenset(roles)


def _check_row(values: dict, today: date) -> tuple[dict, str | None]:
    """Validate one row; return the cleaned values or the reason it is rejected."""
    agent_no, name = values.get("agent_no", ""), values.get("name", "")
    if not agent_no:
        return {}, "agent_no is empty"
    if len(agent_no) > 32 or any(c.isspace() for c in agent_no):
        return {}, "agent_no must be at most 32 characters without spaces"
    if not name:
        return {}, "name is empty"
    if len(name) > 64:
        return {}, "name is longer than 64 characters"
    email = values.get("email", "")
    if email:
        try:
            email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            return {}, f"email {email!r} is not a valid address"
    try:
        hire_date = _parse_date(values.get("hire_date", ""), today)
        roles = _parse_roles(values.get("roles", ""))
    except ValueError as exc:
        return {}, str(exc)
    team, position = values.get("team", ""), values.get("position", "")
    if len(team) > 64 or len(position) > 64:
        return {}, "team and position names are at most 64 characters"
    return {
        "agent_no": agent_no,
        "name": name,
        "email": email or None,
        "team": team,
        "position": position,
        "roles": roles,
        "hire_date": hire_date,
    }, None


def _by_name(model, cache: dict, name: str, created: list[str]):
    if not name:
        return None
    key = name.lower()
    if key not in cache:
        found = db.session.scalar(select(model).where(func.lower(model.name) == key))
        if found is None:
            found = model(name=name)
            db.session.add(found)
            created.append(name)
        cache[key] = found
    return cache[key]


def import_users(
    data: bytes, *, filename: str, actor: User | None, today: date, valid_only: bool = False
) -> ImportReport:
    """Import users from CSV bytes. Any rejected row imports nothing unless `valid_only`."""
    report = ImportReport()
    report.encoding, report.unknown_columns, rows = read_csv(data, COLUMNS)

    existing = {u.agent_no.lower(): u for u in db.session.scalars(select(User))}
    emails = {u.email.lower(): u.agent_no.lower() for u in existing.values() if u.email}
    seen: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    clean_rows = []
    for number, values in rows:
        clean, reason = _check_row(values, today)
        key = clean.get("agent_no", "").lower()
        if reason is None and key in seen:
            reason = f"employee number {clean['agent_no']} already appears in row {seen[key]}"
        if reason is None and clean["email"]:
            owner = emails.get(clean["email"])
            if clean["email"] in seen_emails:
                reason = (
                    f"email {clean['email']} already appears in row {seen_emails[clean['email']]}"
                )
            elif owner is not None and owner != key:
                reason = f"email {clean['email']} belongs to another user ({owner})"
        if reason:
            report.rejected.append((number, values.get("agent_no", ""), reason))
            continue
        seen[key] = number
        if clean["email"]:
            seen_emails[clean["email"]] = number
        clean_rows.append(clean)

    if report.rejected and not valid_only:
        return report

    teams: dict = {}
    positions: dict = {}
    for clean in clean_rows:
        data_ = services.UserData(
            agent_no=clean["agent_no"],
            name=clean["name"],
            email=clean["email"],
            team=_by_name(Team, teams, clean["team"], report.teams_created),
            position=_by_name(Position, positions, clean["position"], report.positions_created),
            hire_date=clean["hire_date"],
            roles=clean["roles"],
        )
        user = existing.get(clean["agent_no"].lower())
        if user is None:
            temporary = security.temporary_password()
            services.create_user(actor, data_, temporary=temporary)
            report.created.append(clean["agent_no"])
            report.temporary_passwords[clean["agent_no"]] = temporary
        else:
            before = services.user_snapshot(user)
            services.update_user(actor, user, data_)
            target = report.updated if services.user_snapshot(user) != before else report.unchanged
            target.append(user.agent_no)
    record(
        actor,
        "users.import",
        "file",
        filename,
        summary=(
            f"{filename}: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.rejected)} rejected"
        ),
    )
    report.committed = True
    return report
