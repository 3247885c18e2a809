"""Command-line interface (`flask …`). Errors are one clear sentence on stderr, exit status 1."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_babel import force_locale
from sqlalchemy import func, select

from portal.db import utcnow
from portal.extensions import db
from portal.metrics.models import Interaction
from portal.textfiles import FileProblem

users_cli = AppGroup("users", help="Manage user accounts.")
demo_cli = AppGroup("demo", help="Demo data.")
scheduler_cli = AppGroup("scheduler", help="The periodic job scheduler.")
import_cli = AppGroup("import", help="Import interactions, surveys, metric values, QA evaluations.")
metrics_cli = AppGroup("metrics", help="Computed metrics.")
plans_cli = AppGroup("plans", help="Assessment plans (JSON, interfaces.md).")
results_cli = AppGroup("results", help="Scores, ranks and tiers.")
periods_cli = AppGroup("periods", help="Assessment periods and their close.")
awards_cli = AppGroup("awards", help="Awards and their certificates.")
AWARD_COLUMNS = ["award", "agent_no", "name", "status", "certificate_no", "pdf_path"]


def fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        fail(f"{path} does not exist.")
    except IsADirectoryError:
        fail(f"{path} is a folder, not a file.")
    except PermissionError:
        fail(f"{path} cannot be read (permission denied).")


@users_cli.command("import")
@click.argument("path")
@click.option("--valid-only", is_flag=True, help="Import the valid rows even if some are rejected.")
def users_import(path: str, valid_only: bool) -> None:
    """Create or update users from a CSV: agent_no,name,email,team,position,roles,hire_date."""
    from portal.accounts.importer import import_users

    data = _read(path)
    with force_locale("en"):
        try:
            report = import_users(
                data,
                filename=Path(path).name,
                actor=None,
                today=utcnow().date(),
                valid_only=valid_only,
            )
        except FileProblem as exc:
            db.session.rollback()
            fail(str(exc.message))
    if report.committed:
        _default_plans()
        db.session.commit()
    else:
        db.session.rollback()

    click.echo(f"File: {path} ({report.encoding})")
    if report.unknown_columns:
        click.echo(f"Ignored unknown columns: {', '.join(report.unknown_columns)}")
    for number, agent_no, reason in report.rejected:
        click.echo(f"Row {number} ({agent_no or 'no agent_no'}): {reason}", err=True)
    if not report.committed:
        fail(
            f"{len(report.rejected)} row(s) rejected, nothing imported. Fix the rows above, "
            "or rerun with --valid-only to import the valid rows."
        )
    click.echo(
        f"Created: {len(report.created)}  Updated: {len(report.updated)}  "
        f"Unchanged: {len(report.unchanged)}  Rejected: {len(report.rejected)}"
    )
    if report.teams_created:
        click.echo(f"New teams: {', '.join(report.teams_created)}")
    if report.positions_created:
        click.echo(f"New positions: {', '.join(report.positions_created)}")
    if report.temporary_passwords:
        click.echo(
            "One-time passwords for the new users (each must choose a password at first login):"
        )
        click.echo("agent_no,one_time_password")
        for agent_no, temporary in report.temporary_passwords.items():
            click.echo(f"{agent_no},{temporary}")


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has users.")
@click.option(
    "--activity-days",
    type=click.IntRange(0, 400),
    default=None,
    help="Days of interactions to generate (default: this month and the two before).",
)
def demo_seed(if_empty: bool, activity_days: int | None) -> None:
    """Load realistic demo data and print the demo logins."""
    from portal.demo.seed import DEMO_PASSWORD, demo_logins, seed

    created = seed(if_empty=if_empty)
    db.session.commit()
    click.echo("Demo data loaded." if created else "Users exist already; demo data left as it is.")
    if created and activity_days != 0 and not db.session.scalar(select(func.count(Interaction.id))):
        from zoneinfo import ZoneInfo

        from portal.demo.activity import seed_activity, seed_qa_activity

        click.echo("Generating three months of interactions, surveys and QA evaluations…")
        tz = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
        counts = seed_activity(datetime.now(tz).date(), tz, activity_days)
        counts |= seed_qa_activity(utcnow())
        db.session.commit()
        click.echo("  " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
        from portal.demo.seed import seed_period_history

        click.echo("Closing the past periods (results, awards, certificates)…")
        history = seed_period_history(utcnow())
        click.echo("  " + ", ".join(f"{n} {what}" for what, n in history.items()))
    logins = demo_logins()
    if logins:
        click.echo(f"Demo logins (password {DEMO_PASSWORD}):")
        for role, agent_no, name in logins:
            click.echo(f"  {role:<10} {agent_no:<8} {name}")


@scheduler_cli.command("run")
@click.option("--once", is_flag=True, help="Run each job's current slot once, then exit.")
def scheduler_run(once: bool) -> None:
    """Run the periodic jobs in the foreground (one such process per installation)."""
    from portal.jobs import run_scheduler

    if not current_app.config["SCHEDULER_ENABLED"]:
        click.echo("SCHEDULER_ENABLED is off: not running any jobs.")
        return
    app = current_app._get_current_object()
    click.echo("Scheduler running; press Ctrl+C to stop." if not once else "Running due jobs once.")
    run_scheduler(app, once=once)


def _import_command(kind: str):
    @click.argument("path")
    @click.option("--valid-only", is_flag=True, help="Import the valid rows, report the others.")
    def command(path: str, valid_only: bool) -> None:
        from portal.metrics.ingest import rejection_lines, report_lines, run_import
        from portal.metrics.messages import shown

        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            fail(f"{path} does not exist.")
        except IsADirectoryError:
            fail(f"{path} is a folder, not a file.")
        except PermissionError:
            fail(f"{path} cannot be read (permission denied).")
        with stream, force_locale("en"):
            record = run_import(
                kind,
                stream,
                filename=Path(path).name,
                door="cli",
                valid_only=valid_only,
                progress=lambda rows, _: click.echo(f"  {rows} rows read…", err=True),
            )
            db.session.commit()
            for line in report_lines(record):
                click.echo(line)
            for line in rejection_lines(record):
                click.echo(line, err=True)
            message = shown(record.message)
        if record.status != "committed":
            fail(message)

    command.__doc__ = f"Import {kind} from a CSV or XLSX file (metrics.md)."
    return command


for _kind in ("interactions", "surveys", "metric-values", "qa"):
    import_cli.command(_kind)(_import_command(_kind))


@metrics_cli.command("export")
@click.option("--period", "period_key", required=True, help="2026-11, 2026-W47 or 2026-Q4")
@click.option("--level", type=click.Choice(["agent", "team", "queue"]), default="agent")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def metrics_export(period_key: str, level: str, fmt: str) -> None:
    """Write the computed metrics of one period to standard output."""
    from portal.metrics.export import write_export
    from portal.metrics.periods import PeriodKeyError, parse_period

    try:
        period = parse_period(period_key)
    except PeriodKeyError as exc:
        fail(f"{exc}.")
    write_export(sys.stdout, period, level, fmt)


@metrics_cli.command("rebuild")
def metrics_rebuild() -> None:
    """Recompute each interaction's local day, FCR repeats and daily sums, e.g. after changing
    a metric setting or PORTAL_TIMEZONE."""
    from portal.metrics.stats import rebuild_all

    redated = rebuild_all()
    db.session.commit()
    click.echo(f"Metrics recomputed; {redated} interaction(s) moved to another day.")


def _default_plans() -> None:
    """Positions of scoring.md's table get their seeded plan when they have none."""
    from portal.accounts.models import Position
    from portal.scoring.services import ensure_default_plan

    for position in db.session.scalars(select(Position)):
        version = ensure_default_plan(None, position)
        if version is not None:
            click.echo(f"Default plan created for {position.name}.")


def _period(period_key: str):
    from portal.metrics.periods import PeriodKeyError, parse_period

    try:
        return parse_period(period_key)
    except PeriodKeyError as exc:
        fail(f"{exc}.")


@plans_cli.command("import")
@click.argument("path")
def plans_import(path: str) -> None:
    """Make the plan in a JSON file its position's plan from now on (a new version)."""
    import json

    from portal.scoring.plans import PlanErrors
    from portal.scoring.services import save_plan

    try:
        document = json.loads(_read(path).decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        fail(f"{path} is not a JSON file in UTF-8: {exc}.")
    documents = document if isinstance(document, list) else [document]
    with force_locale("en"):
        for number, item in enumerate(documents, start=1):
            try:
                version = save_plan(None, item, note=f"imported from {Path(path).name}")
            except PlanErrors as exc:
                db.session.rollback()
                where = f"plan {number}: " if len(documents) > 1 else ""
                for field, message in exc.errors.items():
                    click.echo(f"Error: {where}{field}: {message}", err=True)
                fail("Nothing was imported. Fix the fields above and import again.")
            click.echo(f"{version.plan.position.name}: version {version.number} in force.")
    db.session.commit()


@plans_cli.command("export")
@click.argument("position", required=False)
def plans_export(position: str | None) -> None:
    """Write the plans in force (or one position's) as JSON to standard output."""
    import json

    from portal.accounts.models import Position
    from portal.scoring.models import Plan

    query = select(Plan).join(Position).order_by(Position.name)
    if position:
        query = query.where(Position.name == position)
    found = [plan.current.document for plan in db.session.scalars(query)]
    if position and not found:
        fail(f"The position {position!r} has no plan.")
    json.dump(found[0] if position else found, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


@results_cli.command("export")
@click.option("--period", "period_key", required=True, help="2026-11, 2026-W47 or 2026-Q4")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def results_export(period_key: str, fmt: str) -> None:
    """Write the period's scores, ranks and tiers (provisional until closed) to standard output."""
    from portal.periods.services import frozen_results
    from portal.scoring.export import write_results

    period = _period(period_key)
    write_results(sys.stdout, period, fmt, frozen_results(period.key))


@periods_cli.command("close")
@click.argument("period_key")
@click.option("--force", is_flag=True, help="Close even with undecided appeals or running imports.")
@click.option("--reason", default="", help="Why a forced close could not wait.")
def periods_close(period_key: str, force: bool, reason: str) -> None:
    """Close one period now, exactly as the scheduler would."""
    from portal.periods.services import close_period, ensure_period

    def progress(row) -> None:
        if row.close_step == "certificates" and row.close_total:
            click.echo(f"{row.key}: certificates {row.close_done}/{row.close_total}", err=True)
        elif row.close_step == "freezing":
            click.echo(f"{row.key}: freezing results and nominating awards…", err=True)

    row = ensure_period(_period(period_key))
    db.session.commit()
    outcome = close_period(
        row,
        utcnow(),
        force=force,
        reason=reason or ("forced from the command line" if force else ""),
        progress=progress,
    )
    if outcome.status in ("held", "busy"):
        fail(outcome.message)
    click.echo(outcome.message)


@periods_cli.command("publish")
@click.argument("period_key")
def periods_publish(period_key: str) -> None:
    """Publish a closed period's results and awards (agents see them; points are granted)."""
    from portal.periods.models import PeriodRow
    from portal.periods.services import PeriodError, publish_period, render_certificates

    key = _period(period_key).key
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
    if row is None:
        fail(f"There is no period {key}.")
    now = utcnow()
    with force_locale("en"):
        try:
            count = publish_period(row, None, now)
        except PeriodError as exc:
            db.session.rollback()
            fail(str(exc.message))
    db.session.commit()
    render_certificates(row, now)
    click.echo(f"{key} published: results version {row.published_version}, {count} award(s).")


@awards_cli.command("list")
@click.option("--period", "period_key", required=True, help="2026-11, 2026-W47 or 2026-Q4")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def awards_list(period_key: str, fmt: str) -> None:
    """The period's awards: award, agent_no, name, status, certificate_no, pdf_path."""
    import csv
    import json

    from portal.awards.certificates import folder
    from portal.awards.models import Award
    from portal.periods.models import PeriodRow

    key = _period(period_key).key
    row = db.session.scalar(select(PeriodRow).where(PeriodRow.key == key))
    if row is None:
        fail(f"There is no period {key}.")
    awards = db.session.scalars(
        select(Award).where(Award.period_id == row.id).order_by(Award.award_type_id, Award.id)
    )
    rows = [
        {
            "award": award.award_type.code,
            "agent_no": award.agent.agent_no,
            "name": award.agent.name,
            "status": award.status,
            "certificate_no": award.certificate_no,
            "pdf_path": str((folder() / award.pdf_path).resolve()) if award.pdf_path else "",
        }
        for award in awards
    ]
    if fmt == "json":
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=AWARD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def init_app(app: Flask) -> None:
    for group in (
        users_cli,
        demo_cli,
        scheduler_cli,
        import_cli,
        metrics_cli,
        plans_cli,
        results_cli,
        periods_cli,
        awards_cli,
    ):
        app.cli.add_command(group)
