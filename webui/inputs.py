"""Untrusted request input stops here (issue 14), once, before any route runs.

Every request's path, query string and form fields, and every JSON body, are checked by
`check_request` (a `before_request` hook of the whole app, so no route can skip it):

* a JSON body is at most `JSON_LIMIT` bytes (1 MB; file uploads, and the few routes marked
  `@large_json` such as a designer's draft of a whole process bundle, keep the app's 16 MB
  request cap), and is parsed strictly: no `NaN` / `Infinity` (nor a number too large to be
  finite), nested at most `MAX_DEPTH` levels;
* no text anywhere — JSON keys and strings, query strings, form fields, the path — holds a NUL
  character (PostgreSQL cannot store one) or a lone surrogate (not encodable as UTF-8).

A refusal is a 400 (413 for an oversized body) with a Chinese message naming the field, and
nothing has been read by a route, let alone written. The request class parses JSON with the
same strict rules, so `request.get_json` anywhere gives what the hook checked.
"""

import json
import math
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from flask import Flask, Request, current_app, request

from engine import EngineError

JSON_LIMIT = 1024 * 1024
F = TypeVar("F", bound=Callable[..., Any])
MAX_DEPTH = 32
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


class BadInput(EngineError):
    code = "bad_request"
    status = 400


class BodyTooLarge(EngineError):
    code = "request_too_large"
    status = 413


def large_json(view: F) -> F:
    """Mark a route whose JSON body may exceed `JSON_LIMIT` (up to the app's request cap)."""
    view.large_json = True  # type: ignore[attr-defined]
    return view


def init_app(app: Flask) -> None:
    app.request_class = StrictRequest
    app.before_request(check_request)


def check_request() -> None:
    check_text(request.path, "网址路径")
    for key, value in request.args.items(multi=True):
        check_text(key, "查询参数名")
        check_text(value, f"查询参数 {key}", key)
    if (request.is_json or request.path.startswith("/api/")) and not _is_form():
        view = current_app.view_functions.get(request.endpoint or "")
        if not getattr(view, "large_json", False):
            _limit_body()
    if request.is_json and request.get_data(cache=True):
        request.get_json()  # strict (StrictRequest): refuses here, or caches the checked body
    elif _is_form():
        for key, value in request.form.items(multi=True):
            check_text(key, "表单字段名")
            check_text(value, f"表单字段 {key}", key)


def loads(raw: str | bytes) -> Any:
    """JSON as this application accepts it (the module's rules); BadInput otherwise."""
    try:
        data = json.loads(
            raw,
            parse_constant=_refuse_constant,
            parse_float=_finite,
        )
    except RecursionError:
        raise BadInput(f"请求内容嵌套层级过深（最多 {MAX_DEPTH} 层）") from None
    except UnicodeDecodeError:
        raise BadInput("请求体不是有效的 UTF-8 编码") from None
    except json.JSONDecodeError as exc:
        message = f"请求体不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列）"
        raise BadInput(message) from None
    except ValueError:  # an integer of more than 4300 digits
        raise BadInput("请求中的数字超出允许范围") from None
    _check_tree(data)
    return data


def check_text(value: str, where: str, field: str | None = None) -> None:
    """BadInput naming `where` (Chinese) and `field` (the key) if `value` holds a NUL or a lone
    surrogate."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return
    if found.group() == "\x00":
        message = f"{where}：含有不允许的控制字符（NUL），请删除后重试"
    else:
        message = f"{where}：含有无效的字符（不成对的代理项），请检查文字编码后重试"
    raise BadInput(message, **({"field": field} if field else {}))


_STRICT_JSON = SimpleNamespace(loads=loads, dumps=json.dumps)


class StrictRequest(Request):
    """`get_json` parses with `loads`. (Flask hands each request the app's JSON provider as
    `json_module`; the body is parsed strictly all the same.)"""

    @property
    def json_module(self) -> Any:  # type: ignore[override]
        return _STRICT_JSON

    @json_module.setter
    def json_module(self, _provider: Any) -> None:
        pass

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        raise BadInput("请求体必须是 JSON（Content-Type: application/json）")


def _is_form() -> bool:
    return request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded")


def _limit_body() -> None:
    cap = request.max_content_length  # the whole app's (MAX_CONTENT_LENGTH)
    if cap is not None and cap <= JSON_LIMIT:
        return  # already stricter
    if request.content_length is not None and request.content_length > JSON_LIMIT:
        raise BodyTooLarge(f"请求内容过大：JSON 请求体不能超过 {JSON_LIMIT // (1024 * 1024)} MB")
    request.max_content_length = JSON_LIMIT  # a body without Content-Length stops there too


def _refuse_constant(name: str) -> Any:
    raise BadInput(f"请求中含有无效的数字 {name}：JSON 不支持 NaN 和 Infinity")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput(f"请求中的数字 {text[:20]} 超出允许范围")
    return value


def _check_tree(data: Any) -> None:
    """Depth and texts of a parsed body, walked without recursion."""
    pending: list[tuple[Any, str, int]] = [(data, "", 1)]
    while pending:
        node, path, depth = pending.pop()
        if isinstance(node, str):
            check_text(node, _where(path), path or None)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise BadInput(f"请求内容嵌套层级过深（最多 {MAX_DEPTH} 层）")
        if isinstance(node, dict):
            for key, value in node.items():
                check_text(key, _where(path), path or None)
                pending.append((value, f"{path}.{key}" if path else key, depth + 1))
        else:
            pending.extend(
                (v, f"{path}.{i}" if path else str(i), depth + 1) for i, v in enumerate(node)
            )


def _where(path: str) -> str:
    return f"字段 {path}" if path else "请求内容"
