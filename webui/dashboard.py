"""领导驾驶舱: lights by unit, the overdue list, this month's on-time rate, open rectifications
and the steps waiting on leaders — charts drawn by ECharts (from npm), figures from plain SQL."""

from flask import Blueprint, current_app, render_template

from .app import get_engine
from .auth import current_user, login_required
from .pages import LEADER_ROLES

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

RECTIFICATION_KIND = "整改任务"


@bp.get("")
@login_required
def index() -> str:
    me = current_user()
    assert me is not None
    figures = get_engine(current_app).dashboard(
        me["username"], leader_roles=LEADER_ROLES, rectification_kind=RECTIFICATION_KIND
    )
    chart = {
        "units": [row["unit"] for row in figures["lights_by_unit"]],
        "red": [row["red"] for row in figures["lights_by_unit"]],
        "yellow": [row["yellow"] for row in figures["lights_by_unit"]],
        "green": [row["green"] for row in figures["lights_by_unit"]],
        "rate": figures["month"]["rate"],
    }
    return render_template("dashboard/index.html", figures=figures, chart=chart)
