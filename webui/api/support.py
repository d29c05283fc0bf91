"""What every API route needs: the caller, the engine, and a checked JSON body."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request, session

from engine import Engine, EngineError, InvalidData
from engine.errors import NotSignedIn
from office import Office

from ..auth import current_user
from ..extensions import get_engine, get_office
from ..security import csrf

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def engine() -> Engine:
    return get_engine(current_app)


def office() -> Office:
    return get_office(current_app)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return header.removeprefix("Bearer ").strip() or None


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A bearer token, or the page session (then state changes need the CSRF header)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        if token:
            g.username = engine().token_user(token)
        elif session.get("username"):
            if request.method in UNSAFE_METHODS:
                csrf.protect()
            user = current_user()  # None if deactivated or the session was ended since
            if user is None:
                raise NotSignedIn("请先登录")
            g.username = user["username"]
        else:
            raise NotSignedIn("请先登录")
        return view(*args, **kwargs)

    return wrapped


def username() -> str:
    return g.username


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise EngineError("请求体必须是 JSON 对象", error="bad_request")
    return data


def optional_body() -> dict[str, Any]:
    return body() if request.get_data() else {}


def text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidData(f"{key} 必须是文本", {key: "必须是文本"})
    return value


def names(data: dict[str, Any], key: str = "users") -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidData("请选择人员", {key: "应为用户名列表"})
    return value


def form_data(data: dict[str, Any], key: str = "data") -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidData(f"{key} 必须是 JSON 对象", {key: "应为 JSON 对象"})
    return value


def paging() -> dict[str, int]:
    """`page` and `per_page` from the query string, checked (per_page at most 500)."""
    values = {}
    for key, default in (("page", 1), ("per_page", 50)):
        raw = request.args.get(key)
        if raw is None:
            values[key] = default
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidData(f"{key} 必须是正整数", {key: "应为正整数"})
        values[key] = min(int(raw), 500)
    return values


def whole_number(value: object, low: int, high: int) -> bool:
    """JSON has one number type: 12.0 is the integer 12 (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and low <= value <= high
