"""Processes the caller may start (who may start is declared with each process)."""

from typing import Any

from . import bp
from .support import engine, login_required, username


@bp.get("/processes")
@login_required
def processes() -> list[dict[str, Any]]:
    return engine().processes(username())
