"""Demo data: teams, positions and people of every role, with realistic Chinese names."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from portal.accounts import security
from portal.accounts.models import Position, Role, Team, User
from portal.extensions import db
from portal.qa.services import DEFAULT_RUBRIC, rubric_of, save_rubric
from portal.scoring.services import ensure_default_plan

DEMO_PASSWORD = "demo1234"
# One login per role, printed by `flask demo seed` and `make run`.
DEMO_LOGINS = [
    ("admin", "admin"),
    ("qa_lead", "30010"),
    ("qa", "30001"),
    ("team_lead", "20001"),
    ("agent", "10001"),
]

POSITIONS = {
    "电话客服": "呼入电话服务:咨询、查询、办理与投诉受理",
    "技术支持": "产品故障排查与技术问题解答,追求一次解决",
    "社交媒体客服": "微博、微信、抖音等社交渠道的在线服务与舆情响应",
}
# team -> (position of its agents, number of agents)
TEAMS = {
    "一组": ("电话客服", 10),
    "二组": ("电话客服", 10),
    "技术组": ("技术支持", 7),
    "社媒组": ("社交媒体客服", 6),
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "晓燕",
    "婷婷",
    "佳怡",
    "子轩",
    "梓涵",
    "浩然",
    "欣怡",
    "宇航",
    "思远",
    "雨萱",
    "俊杰",
    "嘉欣",
    "文博",
    "诗涵",
    "天宇",
    "一帆",
    "可馨",
]


def _names(rng: random.Random, count: int) -> list[str]:
    seen: set[str] = set()
    names = []
    while len(names) < count:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def demo_logins() -> list[tuple[str, str, str]]:
    """(role, agent_no, name) of the demo logins that exist in this database."""
    names = dict(
        db.session.execute(
            select(User.agent_no, User.name).where(User.agent_no.in_([n for _, n in DEMO_LOGINS]))
        ).all()
    )
    return [(role, no, names[no]) for role, no in DEMO_LOGINS if no in names]


def seed(if_empty: bool = False, today: date | None = None) -> bool:
    """Create (or refresh) the demo organisation; False when `if_empty` and users exist."""
    if if_empty and db.session.scalar(select(func.count(User.id))):
        return False
    today = today or date.today()
    rng = random.Random(20261101)
    password_hash = security.hash_password(DEMO_PASSWORD)

    positions = {}
    for name, description in POSITIONS.items():
        positions[name] = db.session.scalar(
            select(Position).where(Position.name == name)
        ) or Position(name=name, description=description)
        db.session.add(positions[name])
    teams = {}
    for name in TEAMS:
        teams[name] = db.session.scalar(select(Team).where(Team.name == name)) or Team(name=name)
        db.session.add(teams[name])

    total = sum(n for _, n in TEAMS.values()) + len(TEAMS) + 4
    names = iter(_names(rng, total))

    def person(agent_no, roles, team=None, position=None, hired_days_ago=None):
        user = db.session.scalar(select(User).where(User.agent_no == agent_no))
        if user is None:
            user = User(
                agent_no=agent_no,
                name=next(names),
                password_hash=password_hash,
                must_change_password=False,
                active=True,
            )
            db.session.add(user)
        else:
            next(names)
        user.email = f"{agent_no}@demo.callcenter.example"
        user.team, user.position = team, position
        days = hired_days_ago if hired_days_ago is not None else rng.randint(120, 2200)
        user.hire_date = today - timedelta(days=days)
        user.set_roles(roles)
        return user

    person("admin", {Role.ADMIN})
    person("30010", {Role.QA_LEAD, Role.QA})
    for i in range(2):
        person(f"3000{i + 1}", {Role.QA})

    agent_seq = 10001
    for t_index, (team_name, (position_name, count)) in enumerate(TEAMS.items(), start=1):
        team, position = teams[team_name], positions[position_name]
        lead = person(f"2000{t_index}", {Role.TEAM_LEAD, Role.AGENT}, team, position)
        team.leads = [lead]
        for i in range(count):
            # Two of every team joined recently: the new-agent cohort of scoring.md.
            recent = rng.randint(10, 80) if i >= count - 2 else None
            person(str(agent_seq), {Role.AGENT}, team, position, recent)
            agent_seq += 1
    db.session.flush()
    for position in positions.values():
        ensure_default_plan(None, position)
        if rubric_of(position) is None:
            save_rubric(None, position, DEFAULT_RUBRIC)
    return True


def seed_period_history(now: datetime) -> dict[str, int]:
    """Close the demo's past periods as the scheduler would have, publish all but the latest
    (left for the admin to review and publish), and have a team lead nominate someone for a
    custom award in it."""
    from portal.awards.services import define_award, nominate
    from portal.periods.models import PeriodRow
    from portal.periods.services import close_due_periods, publish_period, sync_periods

    tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    sync_periods(now.astimezone(tz).date())
    db.session.commit()
    close_due_periods(now)
    closed = db.session.scalars(
        select(PeriodRow).where(PeriodRow.closed_at.is_not(None)).order_by(PeriodRow.last_day)
    ).all()
    for row in closed[:-1]:
        publish_period(row, None, now)
    admin = db.session.scalar(select(User).where(User.agent_no == "admin"))
    lead = db.session.scalar(select(User).where(User.agent_no == "20001"))
    if closed and admin is not None and lead is not None and lead.led_teams:
        mentor = define_award(admin, "金牌导师", "带教新员工成绩突出、乐于分享经验的坐席。", 200)
        member = next((u for u in lead.led_teams[0].members if u.id != lead.id and u.active), None)
        if member is not None:
            nominate(
                lead,
                closed[-1].id,
                closed[-1].key,
                member,
                mentor,
                "主动带教两名新同事，整理了常见问题话术库。",
                now,
            )
    db.session.commit()
    return {"closed periods": len(closed), "published": max(len(closed) - 1, 0)}
