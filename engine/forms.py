"""JSON Schema forms: checked at deploy; every submission is validated before the engine sees it.

A submission is its form: a step writes only the fields its form declares (`accept`), its
read-only fields keep their stored values, and no form may declare a name that scripts use
(`reserved_fields`), so a submission can neither move another step's variables nor hide a helper.
"""

from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

from .errors import InvalidData
from .helpers import HELPER_NAMES
from .sandbox import SCRIPT_NAMES

# Data keys that would shadow what scripts call: helpers, builtins, the sandbox's guards.
RESERVED_NAMES = HELPER_NAMES | SCRIPT_NAMES
_SHOWN_KEYS = 10  # a refusal names at most this many unknown keys
_COMBINATORS = ("allOf", "anyOf", "oneOf")

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


def is_reserved(name: str) -> bool:
    """Whether task data may not use `name`: script helpers, builtins, and `_`-names."""
    return name in RESERVED_NAMES or name.startswith("_")


def reserved_fields(schema: Any) -> list[str]:
    """The fields of a form that would shadow a script name (refused at deploy)."""
    if not isinstance(schema, dict):
        return []
    return sorted(name for name in declared_fields(schema) if is_reserved(name))


def declared_fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The top-level fields a form declares (also inside if/then/else, allOf/anyOf/oneOf and
    dependentSchemas), each with its schema."""
    fields: dict[str, dict[str, Any]] = {}
    for part in _top_level_parts(schema):
        for name, prop in (part.get("properties") or {}).items():
            fields.setdefault(name, prop if isinstance(prop, dict) else {})
    return fields


def _top_level_parts(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield schema
    for key in ("if", "then", "else"):
        if isinstance(schema.get(key), dict):
            yield from _top_level_parts(schema[key])
    for key in _COMBINATORS:
        for part in schema.get(key) or []:
            if isinstance(part, dict):
                yield from _top_level_parts(part)
    for part in (schema.get("dependentSchemas") or {}).values():
        if isinstance(part, dict):
            yield from _top_level_parts(part)


def accept(
    schema: dict[str, Any] | None,
    data: Any,
    stored: Mapping[str, Any],
    known: dict[str, Callable[[str], bool]] | None = None,
) -> dict[str, Any]:
    """What a submission may write: the fields `schema` declares, read-only ones left out.

    Unknown keys, and any data for a step without a form, are refused naming the keys; the
    rest is validated with the read-only fields at their `stored` values."""
    fields = check_fields(schema, data)
    if schema is None:
        return {}
    check_sizes(data)
    accepted = {k: v for k, v in data.items() if not fields[k].get("readOnly")}
    kept = {
        name: stored[name]
        for name, prop in fields.items()
        if prop.get("readOnly") and stored.get(name) is not None
    }
    validate(schema, {**accepted, **kept}, known)
    return accepted


# Bounds on any submission, whatever its form says: the longest text a form field takes is a
# few thousand characters; numbers must survive JSON (and JavaScript) unchanged.
MAX_TEXT = 20_000
MAX_ITEMS = 1_000
MAX_DEPTH = 8
MAX_INTEGER = 2**53 - 1


def check_sizes(data: Any) -> None:
    """Refuse values no form can mean: huge texts or lists, deep nesting, unsafe numbers."""
    errors: dict[str, str] = {}
    stack: list[tuple[str, Any, int]] = [(str(k), v, 1) for k, v in data.items()]
    while stack and len(errors) < _SHOWN_KEYS:
        path, value, depth = stack.pop()
        problem = _size_problem(value, depth)
        if problem:
            errors.setdefault(path, problem)
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}", v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", v, depth + 1) for i, v in enumerate(value))
    if errors:
        raise InvalidData("提交的内容超出允许的范围，请检查后重新提交", errors)


def _size_problem(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return f"内容过长（最多 {MAX_TEXT} 个字）"
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value) or "\x00" in value:
            return "含有无法保存的字符"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not abs(value) <= MAX_INTEGER:  # written so that NaN fails it too
            return "数值超出允许范围"
    elif isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            return "嵌套层级过深"
        if len(value) > MAX_ITEMS:
            return f"项数过多（最多 {MAX_ITEMS} 项）"
    return None


def check_fields(schema: dict[str, Any] | None, data: Any) -> dict[str, dict[str, Any]]:
    """Refuse keys `schema` does not declare (any key when there is no form); the fields."""
    if not isinstance(data, dict):
        raise InvalidData("表单数据必须是对象", {"_form": "表单数据必须是对象"})
    fields = declared_fields(schema) if schema is not None else {}
    unknown = [key for key in data if key not in fields]
    if unknown and schema is None:
        raise InvalidData(
            f"该步骤没有表单，不接受提交的数据：{_listed(unknown)}",
            {key: "该步骤没有表单，不能提交此字段" for key in _first(unknown)},
        )
    if unknown:
        raise InvalidData(
            f"提交中包含表单未定义的字段：{_listed(unknown)}",
            {key: "表单未定义该字段，不能提交" for key in _first(unknown)},
        )
    return fields


def _first(keys: Any) -> list[str]:
    """The unknown keys a refusal names: the first few, each cut short."""
    return [k if len(k) <= 40 else k[:40] + "…" for k in map(str, list(keys)[:_SHOWN_KEYS])]


def _listed(keys: Any) -> str:
    names = _first(keys)
    more = len(keys) - len(names)
    return "、".join(names) + (f" 等 {len(keys)} 个" if more > 0 else "")


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
