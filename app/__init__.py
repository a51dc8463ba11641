"""Slotbook application factory."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.config import PROJECT_ROOT, Config
from app.extensions import csrf, db, login_manager, migrate

__version__ = "0.1.0"


def create_app(config: Config | None = None) -> Flask:
    """Build the app. ``config`` defaults to one read from the environment."""
    config = config or Config()
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_object(config)
    from app import logs, secret_links

    secret_links.init_app(app)  # no link or API token in any log line or Referer
    logs.init_app(app)  # text or JSON lines, request ids, the optional error tracker

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "basic"

    from app.public.limits import init_limits

    init_limits(app)

    from app.guard import init_guard

    init_guard(app)  # before the blueprints: their <int:...> rules use its id converter

    _import_models()
    with app.app_context():
        from app.database import install_sqlite_hooks

        install_sqlite_hooks(db.engine)

    _register_blueprints(app)
    _register_errors(app)
    _register_template_helpers(app)
    _register_write_lock(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _import_models() -> None:
    """Every model module, so metadata (and Alembic) sees every table."""
    import app.accounts.models
    import app.accounts.passwords  # outbox: invitation and reset emails
    import app.admin.branding_models
    import app.admin.models
    import app.bookings.models

    # Outbox consumers register themselves on import.
    import app.bookings.writeback
    import app.connections.models
    import app.notifications.mailer
    import app.notifications.models
    import app.notifications.planner
    import app.notifications.sms
    import app.outbox
    import app.polls.models
    import app.teams.attendance_models
    import app.teams.meetings  # outbox: Teams meetings (and the booking rules it registers)
    import app.teams.models
    import app.webhooks.handler  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from app.accounts.hours_routes import bp as hours_bp
    from app.accounts.profile_routes import bp as profile_bp
    from app.accounts.profile_routes import links_bp as password_links_bp
    from app.accounts.routes import bp as accounts_bp
    from app.accounts.tokens_routes import bp as tokens_bp
    from app.admin.booking_types_routes import bp as booking_types_bp
    from app.admin.branding_routes import bp as branding_bp
    from app.admin.groups_routes import bp as groups_bp
    from app.admin.people_routes import bp as people_bp
    from app.admin.routes import bp as admin_bp
    from app.admin.settings_routes import bp as settings_screens_bp
    from app.api import bp as api_bp
    from app.bookings.capacity_routes import bp as capacity_bp
    from app.bookings.learner_routes import bp as learner_bp
    from app.bookings.routes import bp as bookings_bp
    from app.calendar.routes import bp as calendar_bp
    from app.connections.routes import bp as connections_bp
    from app.notifications.feed_routes import bp as feeds_bp
    from app.notifications.routes import bp as notifications_bp
    from app.polls.routes import bp as polls_bp
    from app.public.routes import bp as public_bp
    from app.webhooks.routes import bp as webhooks_bp

    app.register_blueprint(accounts_bp)
    app.register_blueprint(hours_bp)
    app.register_blueprint(profile_bp)
    app.register_blueprint(tokens_bp)
    app.register_blueprint(password_links_bp)
    app.register_blueprint(bookings_bp)
    app.register_blueprint(calendar_bp)
    app.register_blueprint(capacity_bp)
    app.register_blueprint(learner_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(booking_types_bp)
    app.register_blueprint(branding_bp)
    app.register_blueprint(groups_bp)
    app.register_blueprint(people_bp)
    app.register_blueprint(settings_screens_bp)
    app.register_blueprint(polls_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(connections_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(webhooks_bp)
    from app.teams.attendance_routes import bp as otj_bp

    app.register_blueprint(otj_bp)  # Teams attendance review and /reports/otj (T3, T4)
    from app.health import bp as health_bp

    app.register_blueprint(health_bp)  # /healthz and /readyz: no sign-in (load balancers)
    # The API authenticates only with bearer tokens, never cookies, so a forged cross-site
    # request carries no credentials and CSRF tokens have nothing to protect (app/api/auth.py).
    csrf.exempt(api_bp)


def _register_write_lock(app: Flask) -> None:
    """State-changing requests open their transaction as writers (see app/database.py)."""
    from app.database import begin_write

    @app.before_request
    def _writers_first():
        if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
            begin_write()


def _register_errors(app: Flask) -> None:
    from app.api.errors import http_error_response, is_api_request

    def page(code: int, title: str, message: str, exc=None):
        if exc is not None and is_api_request():  # e.g. an unknown path under /api/: JSON
            return http_error_response(exc)
        template = (
            "errors/_message.html" if request.headers.get("HX-Request") else "errors/page.html"
        )
        return render_template(template, code=code, title=title, message=message), code

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return page(
            400, "Your form expired", "Reload the page and try again. (" + exc.description + ")"
        )

    @app.errorhandler(403)
    def forbidden(exc):
        return page(403, "Not allowed", "You do not have permission to do that.", exc)

    @app.errorhandler(404)
    def not_found(exc):
        return page(404, "Not found", "There is nothing here, or you may not see it.", exc)

    @app.errorhandler(405)
    def not_allowed(exc):
        return page(405, "Not allowed", "That action is not available here.", exc)

    @app.errorhandler(HTTPException)
    def other_http_error(exc: HTTPException):
        # 400 (refused input, app/guard.py), 410, 413, 422, ...: our page, never Werkzeug's.
        return page(exc.code or 400, exc.name, exc.description or exc.name, exc)

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError):
        from app.extensions import db

        db.session.rollback()  # nothing half-done is committed by whatever renders next
        message = "Something went wrong on our side; nothing was changed. Try again later."
        return page(500, "Something went wrong", message, exc)


def _register_template_helpers(app: Flask) -> None:
    from app.accounts.permissions import Perm
    from app.templating import audit_value, local_time

    app.jinja_env.filters["local"] = local_time
    app.jinja_env.filters["audit_value"] = audit_value
    app.jinja_env.globals["Perm"] = Perm
    from app.teams.service import is_organiser, teams_available, waiting_text

    app.jinja_env.globals["teams_waiting_text"] = waiting_text  # templates/teams/_meeting.html
    app.jinja_env.globals["teams_is_organiser"] = is_organiser  # ... Start meeting or Join
    app.jinja_env.globals["teams_available"] = teams_available  # forms offer Teams only then
