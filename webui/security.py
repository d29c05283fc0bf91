"""Security defaults for every response: CSRF on page forms, headers, and audited refusals.

Engine errors become JSON under /api/ and a Chinese page elsewhere; every 403 is recorded in
the audit trail by `refused` — the one place pages and API share.
"""

from typing import Any

from flask import Flask, Response, current_app, g, render_template, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect

from engine import EngineError

from .app import get_engine

csrf = CSRFProtect()

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # bpmn-js and ECharts draw with inline styles; scripts come only from this server.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    ),
}


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    csrf.init_app(app)
    app.after_request(_security_headers)
    app.register_error_handler(EngineError, engine_error)
    app.register_error_handler(CSRFError, csrf_error)


def _security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/")


def caller() -> str | None:
    return g.get("username") or session.get("username")


def refused(message: str) -> None:
    """Audit a 403; a failure to write the audit row must not hide the refusal itself."""
    try:
        get_engine(current_app).record_refusal(
            caller(), f"{request.method} {request.path}", message
        )
    except Exception:  # pragma: no cover - the database is down; the 403 still stands
        current_app.logger.exception("could not audit a refusal")


def engine_error(exc: EngineError) -> tuple[Any, int]:
    if exc.status == 403:
        refused(exc.message)
    headers = {}
    if exc.status == 429 and "retry_after" in exc.detail:
        headers["Retry-After"] = str(exc.detail["retry_after"])
    if wants_json():
        return exc.to_dict(), exc.status, headers  # type: ignore[return-value]
    title = _TITLES.get(exc.status, "无法完成")
    page = render_template("error.html", title=title, message=exc.message)
    return page, exc.status, headers  # type: ignore[return-value]


def csrf_error(exc: CSRFError) -> tuple[Any, int]:
    message = "页面已过期或来源不明，请刷新页面后重新提交（您填写的内容未丢失时可直接重试）"
    if wants_json():
        return {"error": "csrf_failed", "message": message}, 400
    return render_template("error.html", title="提交未被接受", message=message), 400


_TITLES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权访问",
    404: "未找到",
    409: "操作冲突",
    422: "填写有误",
    429: "请稍后再试",
}
