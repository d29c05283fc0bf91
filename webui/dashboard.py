"""领导驾驶舱: lights by unit, the overdue list, this month's on-time rate, open rectifications
and the steps waiting on leaders — charts drawn by ECharts (from npm), figures from plain SQL."""

from flask import Blueprint, current_app, render_template

from .auth import current_user, login_required
from .extensions import get_office

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.get("")
@login_required
def index() -> str:
    me = current_user()
    assert me is not None
    figures = get_office(current_app).dashboard(me["username"])
    chart = {
        "units": [row["unit"] for row in figures["lights_by_unit"]],
        "red": [row["red"] for row in figures["lights_by_unit"]],
        "yellow": [row["yellow"] for row in figures["lights_by_unit"]],
        "green": [row["green"] for row in figures["lights_by_unit"]],
        "rate": figures["month"]["rate"],
    }
    return render_template("dashboard/index.html", figures=figures, chart=chart)
