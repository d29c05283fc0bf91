"""The application factory: configuration from defaults, then the environment, then the caller."""

import os
from datetime import timedelta
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from engine import Engine
from office import Office

from .extensions import RowIdConverter


def create_app(config: dict[str, Any] | None = None, engine: Engine | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("DATABASE_URL", "sqlite:///duban.db"),
        SECRET_KEY=os.environ.get("DUBAN_SECRET_KEY"),  # else the stored one (webui/sessions.py)
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        IDENTITY_PROVIDER=os.environ.get("DUBAN_IDENTITY_PROVIDER"),
        PASSWORD_LOGIN=os.environ.get("DUBAN_PASSWORD_LOGIN", "1") != "0",
        # reverse proxies in front that set X-Forwarded-For/-Proto (the client address throttles
        # sign-ins): 0 when clients connect directly
        PROXY_HOPS=int(os.environ.get("DUBAN_PROXY_HOPS") or 0),
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.url_map.converters["int"] = RowIdConverter  # ids beyond 32 bits: 404, not a DB error
    if config:
        app.config.update(config)
    app.extensions["duban"] = engine or Engine(app.config["DATABASE_URL"])
    app.extensions["duban_office"] = Office(app.extensions["duban"])
    if app.config["PROXY_HOPS"]:
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from . import api, auth, health, identity, inputs, security, sessions

    app.session_interface = sessions.SharedKeySessionInterface()

    inputs.init_app(app)  # before anything reads the request
    security.init_app(app)
    app.extensions["duban_identity"] = identity.load_provider(app)
    app.jinja_env.globals["current_user"] = auth.current_user
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    register_pages(app)
    register_console(app)
    register_designer(app)
    security.csrf.exempt(api.bp)  # bearer tokens; session callers are checked in api.support
    return app


def register_pages(app: Flask) -> None:
    """The people's pages (issue 6): one blueprint per area."""
    from . import (
        dashboard,
        evaluation,
        inbox,
        instances,
        ledger,
        messages,
        pages,
        start,
        tasks,
        vendor,
    )

    for module in (pages, inbox, tasks, start, instances, ledger, dashboard, evaluation, messages):
        app.register_blueprint(module.bp)
    app.register_blueprint(vendor.bp)
    from . import bulletins

    app.register_blueprint(bulletins.bp)  # 月度通报 (issue 8)


def register_designer(app: Flask) -> None:
    """The process designer (issue 7): modeler, versions, diff, migration."""
    from . import designer

    app.register_blueprint(designer.bp)


def register_console(app: Flask) -> None:
    """The operations console (issue 7) and the Prometheus endpoint."""
    from . import console, console_directory, metrics

    for module in (console, console_directory, metrics):
        app.register_blueprint(module.bp)
