"""Health: is the database reachable, when is the next timer due."""

from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from .extensions import get_engine

bp = Blueprint("health", __name__)

_TITLES = {
    404: "页面不存在",
    405: "不支持该请求方法",
    413: "提交的内容过大",
    500: "系统出错，请稍后再试",
}


@bp.get("/health")
def health() -> tuple[dict[str, Any], int]:
    """For load balancers and monitors: 503 only when the database is unreachable; workers
    alive and the timer queue depth are reported (the console's 系统健康 page says more)."""
    engine = get_engine(current_app)
    try:
        due = engine.next_timer_due()
        figures = engine.health()
    except Exception as exc:  # the database is down: say so, don't crash
        return {"status": "error", "database": f"不可用：{type(exc).__name__}"}, 503
    return {
        "status": "ok",
        "database": "ok",
        "next_timer": due.isoformat() if due else None,
        "workers_alive": figures["workers_alive"],
        "queue_depth": figures["queue_depth"],
    }, 200


@bp.get("/")
def index() -> Response:
    """Home is the inbox (sign-in first when needed); /health and the console report status."""
    return redirect(url_for("inbox.index"))


@bp.app_errorhandler(HTTPException)
def page_error(exc: HTTPException) -> tuple[Any, int]:
    """Errors in Chinese: JSON under /api/ (an unknown API path never reaches the API
    blueprint's own handler), a small page elsewhere."""
    status = exc.code or 500
    title = _TITLES.get(status, "请求无法完成")
    if request.path.startswith("/api/"):
        return {"error": "not_found" if status == 404 else "http_error", "message": title}, status
    return render_template("error.html", title=title, message=None), status
