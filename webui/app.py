"""The application factory: configuration from defaults, then the environment, then the caller."""

import os
import secrets
from typing import Any

from flask import Flask

from engine import Engine


def create_app(config: dict[str, Any] | None = None, engine: Engine | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("DATABASE_URL", "sqlite:///duban.db"),
        SECRET_KEY=os.environ.get("DUBAN_SECRET_KEY") or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if config:
        app.config.update(config)
    app.extensions["duban"] = engine or Engine(app.config["DATABASE_URL"])

    from . import api, health

    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    return app


def get_engine(app: Flask) -> Engine:
    return app.extensions["duban"]
