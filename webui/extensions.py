"""What every blueprint reaches for, kept in a leaf module: the engine an app was made with,
and the URL converter for row ids. Blueprints import this, never the application factory."""

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from engine import Engine
from office import Office

MAX_ROW_ID = 2**31 - 1


def get_engine(app: Flask) -> Engine:
    return app.extensions["duban"]


def get_office(app: Flask) -> Office:
    """The office's figures, dashboard and spreadsheets over the app's engine."""
    return app.extensions["duban_office"]


class RowIdConverter(IntegerConverter):
    """Row ids are 32-bit on PostgreSQL: a larger number in a URL is simply not found (404),
    rather than a database error."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)
