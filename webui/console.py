"""运维控制台 (role 系统管理员): instances in error, 改派, timers, audit search, health.
The users/units/roles pages are in console_directory.py. Every action asks for a reason; the
engine checks the role (a refusal becomes the app's 403 page, audited)."""

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine import Engine, InvalidData
from engine.console import CONSOLE_STATUSES
from engine.console_commands import BULK_ACTIONS

from . import labels
from .auth import current_username, login_required
from .extensions import get_engine

bp = Blueprint("console", __name__, url_prefix="/console")

TABS = {
    "errors": "异常实例",
    "tasks": "待办改派",
    "timers": "定时器",
    "directory": "用户/单位/角色",
    "audit": "审计查询",
    "health": "系统健康",
}
INSTANCE_ACTIONS = {k: v[1] for k, v in BULK_ACTIONS.items() if v[0] == "instance"}
# the statuses the 异常实例 page filters on, error first (the page's default)
STATUSES = {status: labels.INSTANCE_STATUSES[status] for status in CONSOLE_STATUSES}


def engine() -> Engine:
    return get_engine(current_app)


me = current_username  # short: every console view passes it to the engine


def args(*names: str) -> dict[str, str]:
    return {name: request.args[name] for name in names if request.args.get(name)}


def back(default: str) -> Response:
    """Back to the page the form was on (a local path only)."""
    target = request.form.get("back") or ""
    if not target.startswith("/console") or target.startswith("//"):
        target = url_for(default)
    return redirect(target)


def failed(exc: InvalidData) -> None:
    details = [m for m in exc.errors.values() if m and m != exc.message]
    flash("；".join([exc.message, *details[:5]]), "error")


def carry_out(command: Callable[[], Any], done: Callable[[Any], str], then: str) -> Response:
    """Run one console command, flash what it did (`done` of its answer) or what was wrong
    with the form, then go to the page of endpoint `then`."""
    try:
        answer = command()
    except InvalidData as exc:
        failed(exc)
    else:
        flash(done(answer), "ok")
    return redirect(url_for(then))


@bp.get("/")
@login_required
def index() -> Response:
    return redirect(url_for("console.errors"))


# ------------------------------------------------------------------ errors
@bp.get("/errors")
@login_required
def errors() -> str:
    filters = args("status", "process", "since", "until", "page")
    try:
        result = engine().error_instances(me(), **filters)
    except InvalidData as exc:
        failed(exc)
        result, filters = engine().error_instances(me()), {}
    processes = [p["key"] for p in engine().processes(me())]
    return render_template(
        "console/errors.html",
        tab="errors",
        tabs=TABS,
        result=result,
        filters=filters,
        processes=processes,
        actions=INSTANCE_ACTIONS,
        statuses=STATUSES,
    )


@bp.post("/bulk")
@login_required
def bulk() -> Any:
    """One action on the ticked (or typed) ids; the page shows what happened to each."""
    action = request.form.get("action", "")
    ids: list[Any] = request.form.getlist("ids")
    typed = request.form.get("typed_ids", "")
    ids += [part for part in typed.replace("，", ",").replace(" ", ",").split(",") if part]
    try:
        result = engine().bulk(
            action,
            ids,
            user=me(),
            reason=request.form.get("reason"),
            to=request.form.get("to") or None,
        )
    except InvalidData as exc:
        failed(exc)
        return back("console.errors")
    label = BULK_ACTIONS[action][1]
    flash(
        f"{label}：成功 {result['done']} 项，失败 {result['failed']} 项",
        "ok" if not result["failed"] else "error",
    )
    return render_template(
        "console/bulk_result.html", tab=None, tabs=TABS, result=result, label=label
    )


@bp.get("/instances/<int:instance_id>/reset")
@login_required
def reset_form(instance_id: int) -> str:
    targets = engine().reset_targets(instance_id, me())
    detail = engine().instance(instance_id, me())
    return render_template(
        "console/reset.html", tab="errors", tabs=TABS, targets=targets, instance=detail
    )


# ------------------------------------------------------------------- tasks
@bp.get("/tasks")
@login_required
def tasks() -> str:
    filters: dict[str, Any] = args("process", "assignee", "instance_id", "page")
    filters["unclaimable"] = request.args.get("unclaimable") == "1"
    result = engine().console_tasks(me(), **filters)
    return render_template(
        "console/tasks.html", tab="tasks", tabs=TABS, result=result, filters=filters
    )


# ------------------------------------------------------------------ timers
@bp.get("/timers")
@login_required
def timers() -> str:
    minutes = request.args.get("late_minutes", "1")
    late_after = float(minutes) * 60 if minutes.replace(".", "", 1).isdigit() else 60.0
    view = engine().timers_overview(me(), late_after=late_after)
    return render_template(
        "console/timers.html", tab="timers", tabs=TABS, view=view, late_minutes=late_after / 60
    )


@bp.post("/timers/<int:timer_id>/retry")
@login_required
def retry_timer(timer_id: int) -> Response:
    return carry_out(
        lambda: engine().retry_timer(timer_id, user=me(), reason=request.form.get("reason")),
        lambda _answer: f"定时器 #{timer_id} 已重新排队，下一次轮询时触发",
        "console.timers",
    )


# ------------------------------------------------------------------- audit
@bp.get("/audit")
@login_required
def audit() -> str:
    filters: dict[str, Any] = args(
        "username", "unit", "process", "instance_id", "since", "until", "page"
    )
    if request.args.get("kind"):
        filters["kind"] = request.args["kind"]
    try:
        result = engine().audit_events(me(), **filters)
    except InvalidData as exc:
        failed(exc)
        result = {"items": [], "page": 1, "per_page": 50, "total": 0}
    return render_template(
        "console/audit.html",
        tab="audit",
        tabs=TABS,
        result=result,
        filters=filters,
        kinds=engine().audit_kinds(me()),
    )


# ------------------------------------------------------------------ health
@bp.get("/health")
@login_required
def health() -> str:
    return render_template(
        "console/health.html", tab="health", tabs=TABS, health=engine().health(me())
    )
