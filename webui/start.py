"""发起流程: the processes this person may start; starting one opens its first step."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine import InvalidData

from .auth import current_username, login_required
from .extensions import get_engine

bp = Blueprint("start", __name__, url_prefix="/start")


@bp.get("")
@login_required
def index() -> str:
    return render_template(
        "start/index.html", processes=get_engine(current_app).processes(current_username())
    )


@bp.post("/<key>")
@login_required
def start(key: str) -> Response:
    engine, user = get_engine(current_app), current_username()
    title = request.form.get("title", "").strip()
    if not title:
        flash("请填写标题，便于在待办和台账中辨认", "error")
        return redirect(url_for("start.index"))
    try:
        started = engine.start(key, {}, user=user, title=title)
    except InvalidData as exc:
        flash(exc.message, "error")
        return redirect(url_for("start.index"))
    flash(f"已发起“{title}”", "ok")
    first = _my_open_task(started["id"], user)
    if first:
        return redirect(url_for("tasks.show", task_id=first))
    return redirect(url_for("instances.show", instance_id=started["id"]))


def _my_open_task(instance_id: int, user: str) -> str | None:
    """The step the initiator fills in first (most processes start with one)."""
    todo = get_engine(current_app).tasks(user, box="todo", per_page=500)
    for task in todo["items"]:
        if task["instance_id"] == instance_id:
            return task["id"]
    return None
