"""Leaderboards (by final score, by metric, most improved, teams, points) and the awards wall
(荣誉墙), for everyone logged in."""

from __future__ import annotations

import functools
from itertools import groupby

from flask import Blueprint, abort, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from portal.awards.services import award_name as name_of_award
from portal.awards.services import can_download, citation
from portal.leaderboards import services
from portal.metrics.labels import PERIOD_KIND_NAMES, format_metric, metric_name
from portal.metrics.periods import PeriodKeyError, parse_period, period_of, recent_periods
from portal.periods.services import previous_closed
from portal.scoring.services import today
from portal.system.settings import recent_settings
from portal.web.auth import require
from portal.web.filters import cohort_label
from portal.web.fragments import kept
from portal.web.htmx import render

bp = Blueprint("leaderboards", __name__)

GROUP_KINDS = {"cohort": _l("Cohorts"), "position": _l("Positions"), "team": _l("Teams")}

BOARD_NAMES = {
    "final": _l("Final score"),
    "metric": _l("By metric"),
    "improved": _l("Most improved"),
    "teams": _l("Teams"),
    "points": _l("Points this period"),
    "points_all": _l("Points of all time"),
}


def _kind_names() -> dict[str, str]:
    """The period kinds' names, translated once for the page (not once per option)."""
    return {kind: str(name) for kind, name in PERIOD_KIND_NAMES.items()}


def _options(choices: list[services.Group]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The group picker's options by kind: cohorts, positions, teams."""
    labels = {
        "cohort": cohort_label,
        "position": lambda name: _("%(position)s, all agents", position=name),
        "team": str,
    }
    options = []
    for kind, title in GROUP_KINDS.items():
        items = [(c.key, labels[kind](c.label)) for c in choices if c.kind == kind]
        if items:
            options.append((title, items))
    return options


def _result_board(code: str, period, args, people: services.People) -> dict:
    """A board built from the period's results (live or frozen) as the viewer may see them."""
    results = services.period_results(period, current_user, people)
    context = {"results": results, "entries": [], "previous": None, "choices": []}
    if results.awaiting:
        return context
    if code == "teams":
        context["entries"] = services.board(results, code)
        return context
    context["choices"] = services.groups(results, people.teams)
    group = args.get("group", "")
    if group not in {choice.key for choice in context["choices"]}:
        group = services.default_group(results, current_user)
    context["group"] = group
    if code == "metric":
        metrics = services.metrics_of(services.in_group(results.standings, group))
        metric = args.get("metric", "")
        metric = metric if metric in metrics else (metrics[0] if metrics else "")
        context.update(metrics=metrics, metric=metric)
        if metric:
            context["entries"] = services.board(results, code, group, metric)
    elif code == "improved":
        before_row = previous_closed(period)
        if before_row is not None:
            before = services.period_results(parse_period(before_row.key), current_user, people)
            context["previous"] = before
            if not before.awaiting:
                context["entries"] = services.board(results, code, group, before=before)
    else:
        context["entries"] = services.board(results, code, group)
    return context


def _points_board(code: str, period, args) -> dict:
    holders = services.points_holders(period if code == "points" else None)
    choices = services.points_groups(holders)
    group = args.get("group", "")
    if group not in {choice.key for choice in choices}:
        group = ""
    return {
        "results": None,
        "previous": None,
        "entries": services.points_board(holders, group),
        "choices": choices,
        "group": group,
    }


@bp.get("/leaderboards")
@require("portal.use")
def board():
    """One board of one period; humane mode (a setting) shows the top and the viewer's own
    neighbourhood instead of the whole list."""
    args = request.args
    kinds = services.plan_kinds()
    now = today()
    try:
        period = (
            parse_period(args["period"])
            if args.get("period")
            else period_of(now, kinds[0] if kinds else "monthly")
        )
    except PeriodKeyError:
        abort(404)
    code = args.get("board") or "final"
    if code not in services.BOARDS:
        abort(404)
    people = services.people()
    if code in services.RESULT_BOARDS:
        context = _result_board(code, period, args, people)
    else:
        context = _points_board(code, period, args)
    settings = recent_settings(
        "leaderboard_humane", "leaderboard_top_n", seconds=services.reread_seconds()
    )
    shown = services.shown(
        context["entries"],
        current_user.team_id if code == "teams" else current_user.id,
        humane_mode=settings["leaderboard_humane"],
        top_n=settings["leaderboard_top_n"],
        page=args.get("page", 1, type=int),
        per_page=services.PER_PAGE,
    )
    if code in services.RESULT_BOARDS:
        agents = code in services.AGENT_BOARDS
        described = services.describe([*shown.rows, shown.mine], people, agents)
        shown.rows, shown.mine = described[:-1], described[-1]
    periods = list(_recent_periods(now, tuple(kinds)))
    if period not in periods:
        periods.insert(0, period)
    results = context.get("results")
    locale, root = get_locale(), request.script_root
    chosen = {
        "period": period.key,
        "board": code,
        "group": context.get("group", ""),
        "metric": context.get("metric", ""),
    }
    metrics = tuple(context.get("metrics", ()))
    filters = kept(
        "leaderboards/_filters.html",
        (locale, root, tuple(periods), code, tuple(context["choices"]), *chosen.values(), metrics),
        lambda: {
            "period": period,
            "periods": periods,
            "kinds": _kind_names(),
            "code": code,
            "board_names": BOARD_NAMES,
            "options": _options(context["choices"]),
            "args": chosen,
            "metrics": metrics,
            "metric": chosen["metric"],
            "metric_name": metric_name,
        },
    )
    mine = shown.mine.key if shown.mine is not None else None

    def row(entry: services.Entry) -> Markup:
        me = entry.key == mine
        return kept(
            "leaderboards/_row.html",
            (locale, code, chosen["metric"], entry, me),
            lambda: {
                "entry": entry,
                "me": me,
                "code": code,
                "metric": chosen["metric"],
                "format_metric": format_metric,
            },
        )

    return render(
        "leaderboards/board.html",
        "board",
        period=period,
        code=code,
        shown=shown,
        humane=settings["leaderboard_humane"],
        top_n=settings["leaderboard_top_n"],
        own=results.of(current_user.id) if results is not None else None,
        args=chosen,
        filters=filters,
        row=row,
        metric_name=metric_name,
        **context,
    )


@functools.lru_cache(maxsize=32)
def _recent_periods(now, kinds: tuple[str, ...]) -> tuple:
    """The periods to pick from (metrics.periods.recent_periods), worked out once a day."""
    return tuple(recent_periods(now, kinds)) if kinds else ()


@bp.get("/awards/wall")
@require("portal.use")
def awards_wall():
    """荣誉墙: published awards by period, newest first, with their citations and links to the
    certificate's verification page (and its PDF, for those who may download it)."""
    page = services.published_awards(request.args.get("page", 1, type=int))
    periods = [(period, list(awards)) for period, awards in groupby(page.items, lambda a: a.period)]
    return render(
        "leaderboards/wall.html",
        "wall",
        page=page,
        periods=periods,
        mine=services.own_awards(current_user.id),
        kinds=_kind_names(),
        award_name=name_of_award,
        citation=citation,
        can_download=lambda award: can_download(current_user, award),
    )
