"""领导驾驶舱 figures over the API: the same engine call as the dashboard page."""

from typing import Any

from . import bp
from .support import login_required, office, username


@bp.get("/dashboard")
@login_required
def dashboard() -> dict[str, Any]:
    return office().dashboard(username())
