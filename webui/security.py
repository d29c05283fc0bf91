"""Security defaults for every response: CSRF on page forms, headers, and audited refusals.

Engine errors become JSON under /api/ and a Chinese page elsewhere; every 403 is recorded in
the audit trail by `refused` — the one place pages and API share.
"""

import uuid
from typing import Any

from flask import Flask, Response, current_app, g, render_template, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DBAPIError
from werkzeug.serving import WSGIRequestHandler

from engine import EngineError
from engine.errors import DatabaseUnavailable
from engine.reconnect import is_connection_error

from .extensions import get_engine

csrf = CSRFProtect()

HEADERS = {
    "Server": "duban",  # neither the software nor its version (see QuietRequestHandler)
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
    # Flask has the key already (None), so setdefault would never take: Lax unless configured
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    csrf.init_app(app)
    app.after_request(_security_headers)
    app.register_error_handler(EngineError, engine_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(DatabaseUnavailable, database_unavailable)
    app.register_error_handler(DBAPIError, database_error)
    app.register_error_handler(Exception, internal_error)


def _security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's server (`duban serve`, tests) without its own `Server: Werkzeug/… Python/…`
    header: responses carry only the application's neutral one."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())


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


def internal_error(exc: Exception) -> tuple[Any, int]:
    """A true fault: nothing was changed (the command's transaction rolled back); the trace is
    logged under an id the person can quote to an administrator."""
    trace_id = uuid.uuid4().hex[:12]
    current_app.logger.error(
        "internal error %s on %s %s", trace_id, request.method, request.path, exc_info=exc
    )
    message = f"系统内部错误，本次操作未做任何更改。请将错误编号 {trace_id} 告知系统管理员"
    if wants_json():
        return {"error": "internal_error", "message": message, "trace_id": trace_id}, 500
    return render_template("error.html", title="系统内部错误", message=message), 500


def database_unavailable(exc: Exception) -> tuple[Any, int, dict[str, str]]:
    """The database cannot be reached (the engine ran a call that lost its connection once more
    already): 503 in Chinese, the request may simply be repeated a little later."""
    current_app.logger.warning(
        "database unavailable on %s %s: %s", request.method, request.path, exc.__cause__ or exc
    )
    message = DatabaseUnavailable().message
    headers = {"Retry-After": "5"}
    if wants_json():
        return {"error": DatabaseUnavailable.code, "message": message}, 503, headers
    page = render_template("error.html", title="数据库暂时无法连接", message=message)
    return page, 503, headers


def database_error(exc: DBAPIError) -> tuple[Any, int] | tuple[Any, int, dict[str, str]]:
    """A database error that escaped the engine's calls: 503 when it is the connection, else a
    true fault (500)."""
    if is_connection_error(exc):
        return database_unavailable(exc)
    return internal_error(exc)


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
