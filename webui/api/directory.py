"""The directory for pickers and pages: units, users (never a password), roles."""

from typing import Any

from flask import request

from . import bp
from .support import engine, login_required, paging, username


@bp.get("/units")
@login_required
def units() -> list[dict[str, Any]]:
    return engine().units(username(), kind=request.args.get("kind") or None)


@bp.get("/users")
@login_required
def users() -> dict[str, Any]:
    return engine().users(
        username(),
        unit=request.args.get("unit") or None,
        role=request.args.get("role") or None,
        q=request.args.get("q") or None,
        include_inactive=request.args.get("include_inactive") == "true",
        **paging(),
    )


@bp.get("/roles")
@login_required
def roles() -> list[dict[str, Any]]:
    return engine().roles(username())
