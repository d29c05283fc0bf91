"""领导驾驶舱 figures over the API: the same engine call as the dashboard page."""

from typing import Any

from ..pages import LEADER_ROLES
from . import bp
from .support import engine, login_required, username

RECTIFICATION_KIND = "整改任务"


@bp.get("/dashboard")
@login_required
def dashboard() -> dict[str, Any]:
    return engine().dashboard(
        username(), leader_roles=LEADER_ROLES, rectification_kind=RECTIFICATION_KIND
    )
