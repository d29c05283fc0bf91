"""待办 / 已办 / 抄送 / 我发起的: my boxes, with lights, waiting times and one-click claim."""

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .auth import current_user, login_required
from .extensions import get_engine

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

BOXES = {"todo": "待办", "done": "已办", "cc": "抄送", "started": "我发起的"}
PER_PAGE = 50
SORTS = {
    "due": "按期限（最紧迫在前）",
    "waited": "按等待时间（最久在前）",
    "-due": "按期限（最晚在前）",
}


@bp.get("")
@login_required
def index() -> str:
    box = request.args.get("box", "todo")
    if box not in BOXES:
        box = "todo"
    sort = request.args.get("sort", "due") if box == "todo" else "due"
    if sort not in SORTS:
        sort = "due"
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    me = current_user()
    assert me is not None
    engine = get_engine(current_app)
    if sort == "due":  # the engine's own order: soonest due first, one page at a time
        result = engine.tasks(me["username"], box=box, page=page, per_page=PER_PAGE)
    else:  # another order over the whole inbox (up to 500 open tasks), then the page of it
        result = engine.tasks(me["username"], box=box, page=1, per_page=500)
        ordered = _sorted(result["items"], sort)
        result.update(items=ordered[(page - 1) * PER_PAGE : page * PER_PAGE], page=page)
        result["per_page"] = PER_PAGE
    if box in ("todo", "done"):
        labels = engine.instance_labels([t["instance_id"] for t in result["items"]])
        for task in result["items"]:
            label = labels.get(task["instance_id"], {})
            task["instance_title"] = label.get("title")
            task["process_name"] = label.get("process_name")
    return render_template(
        "inbox/index.html", box=box, boxes=BOXES, result=result, sort=sort, sorts=SORTS, me=me
    )


def _sorted(items: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """The engine lists the soonest due first; the page may re-order its rows."""
    if sort == "waited":
        return sorted(items, key=lambda t: t["created_at"])
    if sort == "-due":
        return sorted(
            items, key=lambda t: (t["due_at"] is not None, t["due_at"] or ""), reverse=True
        )
    return items


@bp.post("/claim/<task_id>")
@login_required
def claim(task_id: str) -> Response:
    me = current_user()
    assert me is not None
    get_engine(current_app).claim(task_id, me["username"])
    flash("已认领，任务已在您的名下", "ok")
    if request.form.get("open"):
        return redirect(url_for("tasks.show", task_id=task_id))
    return redirect(url_for("inbox.index"))


@bp.post("/cc/<int:cc_id>/read")
@login_required
def cc_read(cc_id: int) -> Response:
    """Open a copy (抄送) I received: it counts as read (已阅)."""
    me = current_user()
    assert me is not None
    get_engine(current_app).mark_cc_read(cc_id, me["username"])
    instance_id = request.form.get("instance_id", type=int)
    if instance_id:
        return redirect(url_for("instances.show", instance_id=instance_id))
    return redirect(url_for("inbox.index", box="cc"))
