"""The app factory: configuration, extensions, blueprints, CLI and errors — nothing else."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import ROOT, load_config


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(app.instance_path))
    app.config.update(overrides or {})
    if hops := app.config["PROXY_FIX_HOPS"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from portal import cli, errors, extensions, models, pdf  # noqa: F401 - models: full metadata
    from portal.web import filters, i18n, layout, session

    extensions.db.init_app(app)
    extensions.migrate.init_app(
        app,
        extensions.db,
        directory=str(ROOT / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    extensions.csrf.init_app(app)
    extensions.htmx.init_app(app)
    extensions.babel.init_app(app, locale_selector=session.select_locale)
    i18n.init_app(app)
    session.init_app(app)
    filters.init_app(app)
    layout.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    if pdf.subsetting_missing():
        app.logger.warning(pdf.SUBSETTING_MISSING)

    from portal.accounts.views import bp as accounts_bp
    from portal.alerts.views import bp as alerts_bp
    from portal.api.admin import bp as api_tokens_bp
    from portal.api.views import bp as api_bp
    from portal.audit.views import bp as audit_bp
    from portal.awards.views import bp as awards_bp
    from portal.home.views import bp as home_bp
    from portal.leaderboards.views import bp as leaderboards_bp
    from portal.metrics.upload_views import bp as imports_bp
    from portal.metrics.views import bp as metrics_bp
    from portal.notifications.views import bp as notifications_bp
    from portal.periods.report_views import bp as period_reports_bp
    from portal.periods.views import bp as periods_bp
    from portal.qa.views import bp as qa_bp
    from portal.scoring.plan_views import bp as plans_bp
    from portal.scoring.views import bp as scoring_bp
    from portal.system.views import bp as system_bp

    for bp in (
        home_bp,
        accounts_bp,
        audit_bp,
        metrics_bp,
        scoring_bp,
        plans_bp,
        notifications_bp,
        alerts_bp,
        qa_bp,
        periods_bp,
        period_reports_bp,
        awards_bp,
        leaderboards_bp,
        imports_bp,
        system_bp,
        api_bp,
        api_tokens_bp,
    ):
        app.register_blueprint(bp)
    return app
