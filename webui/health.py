"""Health: is the database reachable, when is the next timer due."""

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template, render_template_string, request
from werkzeug.exceptions import HTTPException

from engine.workdays import BEIJING

from .app import get_engine

bp = Blueprint("health", __name__)

_PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>督办 · 运行状态</title>
<h1>督办系统运行状态</h1><p>数据库：{{ database }}</p><p>下一个定时器：{{ next_timer or "无" }}</p>
<p>办理页面尚在建设中；目前可通过 JSON 接口 <code>/api/v1</code>
或命令行 <code>duban</code> 办理。</p>
</html>"""

_TITLES = {
    404: "页面不存在",
    405: "不支持该请求方法",
    413: "提交的内容过大",
    500: "系统出错，请稍后再试",
}


@bp.get("/health")
def health() -> tuple[dict[str, str | None], int]:
    engine = get_engine(current_app)
    try:
        due = engine.next_timer_due()
    except Exception as exc:  # the database is down: say so, don't crash
        return {"status": "error", "database": f"不可用：{type(exc).__name__}"}, 503
    return {"status": "ok", "database": "ok", "next_timer": due.isoformat() if due else None}, 200


@bp.get("/")
def index() -> str:
    body, _ = health()
    due = body.get("next_timer")
    shown = (
        datetime.fromisoformat(due).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if due else None
    )
    return render_template_string(_PAGE, database=body["database"], next_timer=shown)


@bp.app_errorhandler(HTTPException)
def page_error(exc: HTTPException) -> tuple[Any, int]:
    """Errors in Chinese: JSON under /api/ (an unknown API path never reaches the API
    blueprint's own handler), a small page elsewhere."""
    status = exc.code or 500
    title = _TITLES.get(status, "请求无法完成")
    if request.path.startswith("/api/"):
        return {"error": "not_found" if status == 404 else "http_error", "message": title}, status
    return render_template("error.html", title=title, message=None), status
