"""JSON API under /api/v1: the engine's commands and reads over HTTP, errors as JSON."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from engine import EngineError

from .app import get_engine

bp = Blueprint("api", __name__, url_prefix="/api/v1")
TOKEN_MAX_AGE = 12 * 3600


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="duban-api-token")


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[dict[str, Any], int]:
    return {"error": code, "message": message, **extra}, status


@bp.errorhandler(EngineError)
def engine_error(exc: EngineError) -> tuple[dict[str, Any], int]:
    return exc.to_dict(), exc.status


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[dict[str, Any], int]:
    messages = {
        400: "请求格式不正确",
        404: "资源不存在",
        405: "不支持该请求方法",
        413: "请求内容过大",
    }
    status = exc.code or 500
    return _error(
        status,
        exc.name.lower().replace(" ", "_"),
        messages.get(status, exc.description or "请求失败"),
    )


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _error(401, "unauthorized", "请先登录")
        try:
            g.username = _signer().loads(header.removeprefix("Bearer "), max_age=TOKEN_MAX_AGE)
        except SignatureExpired:
            return _error(401, "token_expired", "登录已过期，请重新登录")
        except BadSignature:
            return _error(401, "unauthorized", "登录凭证无效")
        return view(*args, **kwargs)

    return wrapped


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise EngineError("请求体必须是 JSON 对象")
    return body


@bp.post("/auth/token")
def token() -> tuple[dict[str, Any], int]:
    body = _body()
    user = get_engine(current_app).authenticate(
        str(body.get("username", "")), str(body.get("password", ""))
    )
    if user is None:
        return _error(401, "invalid_credentials", "用户名或密码错误")
    return {"token": _signer().dumps(user["username"]), "user": user}, 200


@bp.get("/processes")
@login_required
def processes() -> list[dict[str, Any]]:
    return get_engine(current_app).processes(g.username)


@bp.post("/instances")
@login_required
def start_instance() -> tuple[dict[str, Any], int]:
    body = _body()
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise EngineError("data 必须是 JSON 对象")
    started = get_engine(current_app).start(str(body.get("process", "")), data, user=g.username)
    return started, 201


@bp.get("/instances/<int:instance_id>")
@login_required
def instance(instance_id: int) -> dict[str, Any]:
    return get_engine(current_app).instance(instance_id, g.username)


@bp.get("/tasks")
@login_required
def tasks() -> dict[str, Any]:
    page = request.args.get("page", 1, type=int)
    per_page = request.args.get("per_page", 50, type=int)
    return get_engine(current_app).tasks(g.username, page=page, per_page=per_page)


@bp.get("/tasks/<task_id>")
@login_required
def task(task_id: str) -> dict[str, Any]:
    return get_engine(current_app).task(task_id, g.username)


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> dict[str, Any]:
    return get_engine(current_app).claim(task_id, g.username)


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> dict[str, Any]:
    return get_engine(current_app).unclaim(task_id, g.username)


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete(task_id: str) -> dict[str, Any]:
    body = _body()
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise EngineError("data 必须是 JSON 对象")
    return get_engine(current_app).complete(
        task_id, data, user=g.username, opinion=body.get("opinion")
    )
