"""JSON Schema forms: checked at deploy; every submission is validated before the engine sees it."""

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

from .errors import InvalidData

_FORMAT_CHECKER = FormatChecker()
_DIRECTORY: ContextVar[dict[str, Callable[[str], bool]] | None] = ContextVar(
    "duban_form_directory", default=None
)

_TYPE_NAMES = {
    "string": "文本",
    "integer": "整数",
    "number": "数字",
    "boolean": "是/否",
    "array": "列表",
    "object": "对象",
    "null": "空值",
}


def check_schema(schema: Any) -> str | None:
    """None when `schema` is a valid draft 2020-12 schema, else a Chinese explanation."""
    if not isinstance(schema, dict):
        return "表单定义必须是 JSON 对象"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "（根）"
        return f"表单定义不是有效的 JSON Schema：{where} 处 {exc.message}"
    return None


def validate(
    schema: dict[str, Any], data: Any, known: dict[str, Callable[[str], bool]] | None = None
) -> None:
    """Raise InvalidData mapping each failing field path to a Chinese message.

    `known` checks the directory formats: {"unit": code exists?, "user": username exists?}."""
    token = _DIRECTORY.set(known or {})
    try:
        found = sorted(
            _cached_validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path))
        )
    finally:
        _DIRECTORY.reset(token)
    errors: dict[str, str] = {}
    for error in found:
        field = _field_path(error)
        errors.setdefault(field, _message(schema, error))
    if errors:
        raise InvalidData("表单填写有误，请按提示修改后重新提交", errors)


_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def _cached_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """Deployed forms never change, so one validator per schema object serves every submission."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, Draft202012Validator(schema, format_checker=_FORMAT_CHECKER))
        _VALIDATORS[id(schema)] = cached
    return cached[1]


def _directory_format(name: str) -> Callable[[object], bool]:
    """`"format": "unit"` / `"user"`: checked against the directory when the caller can."""

    def check(value: object) -> bool:
        exists = (_DIRECTORY.get() or {}).get(name)
        return exists is None or not isinstance(value, str) or value == "" or exists(value)

    return check


for _name in ("unit", "user"):
    _FORMAT_CHECKER.checks(_name)(_directory_format(_name))


def _field_path(error: ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = _missing_property(error)
        if missing:
            path.append(missing)
    return ".".join(path) or "_form"


def _missing_property(error: ValidationError) -> str | None:
    instance = error.instance if isinstance(error.instance, dict) else {}
    for name in error.validator_value or []:
        if name not in instance:
            return str(name)
    return None


def _title(schema: dict[str, Any], error: ValidationError, field: str | None = None) -> str:
    """The Chinese title of the field an error is about, falling back to its key."""
    node: Any = schema
    keys = [str(p) for p in error.absolute_path] + ([field] if field else [])
    for key in keys:
        if not isinstance(node, dict):
            break
        if key.isdigit() and "items" in node:
            node = node["items"]
            continue
        node = node.get("properties", {}).get(key, {})
    if isinstance(node, dict) and node.get("title"):
        return str(node["title"])
    return keys[-1] if keys else "表单"


def _message(schema: dict[str, Any], error: ValidationError) -> str:
    kind, expected = error.validator, error.validator_value
    if kind == "required":
        return f"请填写“{_title(schema, error, _missing_property(error))}”"
    title = _title(schema, error)
    messages = {
        "type": lambda: f"“{title}”应为{_TYPE_NAMES.get(str(expected), str(expected))}",
        "enum": lambda: f"“{title}”只能取以下值之一：{'、'.join(map(str, expected))}",
        "const": lambda: f"“{title}”必须为 {expected}",
        "minimum": lambda: f"“{title}”不能小于 {expected}",
        "maximum": lambda: f"“{title}”不能大于 {expected}",
        "exclusiveMinimum": lambda: f"“{title}”必须大于 {expected}",
        "exclusiveMaximum": lambda: f"“{title}”必须小于 {expected}",
        "minLength": lambda: f"“{title}”至少需要 {expected} 个字",
        "maxLength": lambda: f"“{title}”不能超过 {expected} 个字",
        "minItems": lambda: f"“{title}”至少需要 {expected} 项",
        "maxItems": lambda: f"“{title}”不能超过 {expected} 项",
        "pattern": lambda: f"“{title}”格式不正确",
        "format": lambda: f"“{title}”不是有效的{_FORMAT_NAMES.get(str(expected), str(expected))}",
        "additionalProperties": lambda: f"“{title}”包含表单未定义的字段",
    }
    return messages.get(kind, lambda: f"“{title}”填写不正确")()


_FORMAT_NAMES = {
    "date": "日期（YYYY-MM-DD）",
    "date-time": "日期时间",
    "unit": "单位",
    "user": "用户",
    "email": "电子邮箱",
    "uri": "网址",
}
