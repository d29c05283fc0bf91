"""JSON API under /api/v1: the engine's commands and reads over HTTP, errors as JSON."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from engine import EngineError, InvalidData

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
    """?box=todo (default) | done | cc | started"""
    page = request.args.get("page", 1, type=int)
    per_page = request.args.get("per_page", 50, type=int)
    box = request.args.get("box", "todo")
    return get_engine(current_app).tasks(g.username, box=box, page=page, per_page=per_page)


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


# ------------------------------------------------- approval operations (engine/operations.py)
def _optional_body() -> dict[str, Any]:
    return _body() if request.get_data() else {}


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidData(f"{key} 必须是文本", {key: "必须是文本"})
    return value


def _names(body: dict[str, Any], key: str = "users") -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidData("请选择人员", {key: "应为用户名列表"})
    return value


@bp.post("/tasks/<task_id>/transfer")
@login_required
def transfer(task_id: str) -> dict[str, Any]:
    body = _body()
    return get_engine(current_app).transfer(
        task_id, _text(body, "to") or "", user=g.username, opinion=_text(body, "opinion")
    )


@bp.post("/tasks/<task_id>/delegate")
@login_required
def delegate(task_id: str) -> dict[str, Any]:
    body = _body()
    return get_engine(current_app).delegate(
        task_id, _text(body, "to") or "", user=g.username, opinion=_text(body, "opinion")
    )


@bp.post("/tasks/<task_id>/add-signers")
@login_required
def add_signers(task_id: str) -> dict[str, Any]:
    body = _body()
    before = body.get("before", True)
    if not isinstance(before, bool):
        raise InvalidData("before 必须是 true 或 false", {"before": "应为 true 或 false"})
    return get_engine(current_app).add_signers(
        task_id,
        _names(body),
        user=g.username,
        before=before,
        data=body.get("data"),
        opinion=_text(body, "opinion"),
    )


@bp.post("/tasks/<task_id>/return")
@login_required
def return_task(task_id: str) -> dict[str, Any]:
    body = _body()
    reason = _text(body, "reason") or _text(body, "opinion")
    return get_engine(current_app).return_task(
        task_id, user=g.username, reason=reason, to=_text(body, "to")
    )


@bp.get("/tasks/<task_id>/return-targets")
@login_required
def return_targets(task_id: str) -> dict[str, Any]:
    return {"items": get_engine(current_app).return_targets(task_id, g.username)}


@bp.post("/tasks/<task_id>/withdraw")
@login_required
def withdraw(task_id: str) -> dict[str, Any]:
    body = _optional_body()
    return get_engine(current_app).withdraw(
        task_id, user=g.username, opinion=_text(body, "opinion")
    )


@bp.post("/tasks/<task_id>/urge")
@login_required
def urge(task_id: str) -> dict[str, Any]:
    body = _optional_body()
    message = _text(body, "message") or _text(body, "opinion")
    return get_engine(current_app).urge(task_id, user=g.username, message=message)


@bp.post("/tasks/<task_id>/cc")
@login_required
def cc(task_id: str) -> dict[str, Any]:
    body = _body()
    return get_engine(current_app).cc(
        task_id, _names(body), user=g.username, opinion=_text(body, "opinion")
    )


@bp.post("/cc/<int:cc_id>/read")
@login_required
def cc_read(cc_id: int) -> dict[str, Any]:
    return get_engine(current_app).mark_cc_read(cc_id, g.username)


@bp.post("/tasks/<task_id>/reassign")
@login_required
def reassign(task_id: str) -> dict[str, Any]:
    """Administrators only."""
    body = _body()
    return get_engine(current_app).reassign(
        task_id, _text(body, "to") or "", user=g.username, reason=_text(body, "reason")
    )


@bp.post("/instances/<int:instance_id>/reset")
@login_required
def reset(instance_id: int) -> dict[str, Any]:
    """Administrators only: back to an earlier step (`to`: its element id)."""
    body = _body()
    return get_engine(current_app).reset(
        instance_id, _text(body, "to") or "", user=g.username, reason=_text(body, "reason")
    )
