"""JSON Schema forms as HTML: the fields to draw, and the typed data read back from a post.

`fields(schema, data, errors, choices)` turns a task's form into `Field`s that the macros in
`templates/forms.html` draw (labels, hints, per-field errors, the typed values kept);
`read(schema, form, files)` turns the posted form back into JSON the engine validates. Field
names are dotted paths (`decision_items.0.unit`), the same paths `InvalidData.errors` uses.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict

TEXTAREA_FROM = 200  # strings allowed to be longer than this get a text area
RADIO_UP_TO = 4  # at most this many choices are radio buttons, more become a select
BEIJING_OFFSET = "+08:00"
_NONE = object()


@dataclass
class Field:
    """One input (or group of inputs) of a form, ready to draw."""

    path: str  # dotted name: the input's name and the key of its error
    key: str
    title: str
    widget: str  # text|textarea|integer|number|date|datetime|select|radio|checkbox|checkboxes|
    #              unit|units|user|users|file|rows|readonly|hidden
    value: Any = None
    required: bool = False
    description: str | None = None
    error: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)
    minimum: Any = None
    maximum: Any = None
    max_length: int | None = None
    rows: list[list["Field"]] = field(default_factory=list)  # widget == "rows"
    template: list["Field"] = field(default_factory=list)  # an empty row, index `placeholder`
    placeholder: str = ""
    item_title: str = ""

    @property
    def input_id(self) -> str:
        return "f-" + self.path.replace(".", "-")

    @property
    def selected(self) -> set[str]:
        if isinstance(self.value, list):
            return {str(v) for v in self.value}
        return set() if self.value in (None, "") else {str(self.value)}


# ------------------------------------------------------------------------------ drawing
def fields(
    schema: dict[str, Any] | None,
    data: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    choices: dict[str, list[dict[str, Any]]] | None = None,
    *,
    skip: tuple[str, ...] = (),
) -> list[Field]:
    """The form's top-level fields, in the schema's order; `skip` leaves some out (the
    approval buttons draw `decision` themselves)."""
    if not schema:
        return []
    return _object_fields(schema, schema, "", data or {}, errors or {}, choices or {}, skip=skip)


def _object_fields(
    root: dict[str, Any],
    node: dict[str, Any],
    prefix: str,
    data: dict[str, Any],
    errors: dict[str, str],
    choices: dict[str, list[dict[str, Any]]],
    skip: tuple[str, ...] = (),
) -> list[Field]:
    required = set(node.get("required") or [])
    result = []
    for key, prop in (node.get("properties") or {}).items():
        if key in skip or not isinstance(prop, dict):
            continue
        prop = _resolve(root, prop)
        path = f"{prefix}{key}"
        value = data.get(key, _NONE) if isinstance(data, dict) else _NONE
        if value is _NONE:
            value = prop.get("default")
        result.append(_field(root, prop, path, key, value, key in required, errors, choices))
    return result


def _field(
    root: dict[str, Any],
    prop: dict[str, Any],
    path: str,
    key: str,
    value: Any,
    required: bool,
    errors: dict[str, str],
    choices: dict[str, list[dict[str, Any]]],
) -> Field:
    widget, options = _widget(root, prop, choices)
    made = Field(
        path=path,
        key=key,
        title=str(prop.get("title") or key),
        widget=widget,
        value=value,
        required=required,
        description=prop.get("description"),
        error=errors.get(path),
        options=options,
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        max_length=prop.get("maxLength"),
    )
    if widget == "datetime" and isinstance(value, str):
        made.value = value[:16]  # what <input type="datetime-local"> shows
    if widget == "rows":
        items = _resolve(root, prop.get("items") or {})
        made.item_title = str(items.get("title") or "一项")
        rows = value if isinstance(value, list) else []
        made.rows = [
            _object_fields(
                root, items, f"{path}.{i}.", row if isinstance(row, dict) else {}, errors, choices
            )
            for i, row in enumerate(rows)
        ]
        if not made.rows:  # one empty row to start from; empty rows are dropped on reading
            made.rows = [_object_fields(root, items, f"{path}.0.", {}, {}, choices)]
        made.placeholder = placeholder(path)
        made.template = _object_fields(root, items, f"{path}.{made.placeholder}.", {}, {}, choices)
        made.error = made.error or _first_error(errors, path)
    if widget == "file":
        made.value = [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
    return made


def placeholder(path: str) -> str:
    """The index placeholder of a list's new-row template, one per nesting depth, so adding a
    row inside a row just added replaces only its own level (`__i0__`, `__i1__` …)."""
    depth = sum(1 for part in path.split(".") if part.isdigit() or part.startswith("__i"))
    return f"__i{depth}__"


def _first_error(errors: dict[str, str], path: str) -> str | None:
    """An error about a row as a whole (e.g. minItems) shows at the list."""
    return errors.get(path)


def _widget(
    root: dict[str, Any], prop: dict[str, Any], choices: dict[str, list[dict[str, Any]]]
) -> tuple[str, list[tuple[str, str]]]:
    kind = _kind(prop)
    if prop.get("readOnly"):
        return "readonly", []
    if kind == "boolean":
        return "checkbox", []
    if kind in ("integer", "number"):
        return kind, []
    if kind == "array":
        return _array_widget(root, _resolve(root, prop.get("items") or {}), choices)
    options = _options(prop)
    if options:
        return ("radio" if len(options) <= RADIO_UP_TO else "select"), options
    return _string_widget(prop, choices)


def _array_widget(
    root: dict[str, Any], items: dict[str, Any], choices: dict[str, list[dict[str, Any]]]
) -> tuple[str, list[tuple[str, str]]]:
    if items.get("type") == "object":
        return ("file" if _is_attachment(items) else "rows"), []
    if items.get("format") == "unit":
        return "units", _unit_options(choices)
    if items.get("format") == "user":
        return "users", _user_options(choices)
    options = _options(items)
    if options:
        return "checkboxes", options
    return "textarea", []  # a list of free strings: one per line


def _string_widget(
    prop: dict[str, Any], choices: dict[str, list[dict[str, Any]]]
) -> tuple[str, list[tuple[str, str]]]:
    fmt = prop.get("format")
    if fmt == "unit":
        return "unit", _unit_options(choices)
    if fmt == "user":
        return "user", _user_options(choices)
    if fmt in ("date", "date-time"):
        return ("date" if fmt == "date" else "datetime"), []
    if fmt == "textarea" or (prop.get("maxLength") or 0) > TEXTAREA_FROM:
        return "textarea", []
    return "text", []


def _kind(prop: dict[str, Any]) -> Any:
    """The JSON type of a property; of `["number", "null"]`, the one that is not null."""
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if kinds else None
    return kind


def _options(prop: dict[str, Any]) -> list[tuple[str, str]]:
    if isinstance(prop.get("oneOf"), list) and all(
        isinstance(o, dict) and "const" in o for o in prop["oneOf"]
    ):
        return [(str(o["const"]), str(o.get("title") or o["const"])) for o in prop["oneOf"]]
    if isinstance(prop.get("enum"), list):
        return [(str(v), str(v)) for v in prop["enum"]]
    return []


def _unit_options(choices: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(u["code"], u["name"]) for u in choices.get("units", [])]


def _user_options(choices: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    return [
        (u["username"], f"{u['name']}（{u['unit']}）" if u.get("unit") else u["name"])
        for u in choices.get("users", [])
    ]


def _is_attachment(items: dict[str, Any]) -> bool:
    props = items.get("properties") or {}
    return "name" in props and "document_id" in props  # as engine.attachments.is_attachment


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (`#/$defs/attachment`)."""
    ref = node.get("$ref") if isinstance(node, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node if isinstance(node, dict) else {}
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


# ------------------------------------------------------------------------------ reading
# Keeps one uploaded file of the field at `path`: `{"name", "id", "size"}`, or None if refused.
Store = Callable[[str, FileStorage], dict[str, Any] | None]


def read(
    schema: dict[str, Any] | None,
    form: MultiDict[str, str],
    files: MultiDict[str, FileStorage] | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """The posted form as typed JSON. Text that is not a valid number is kept as text so the
    engine's validation names the field and the page shows what was typed. Uploaded files go
    to `store`; without one only their names are kept."""
    if not schema:
        return {}
    reader = _Reader(form, files or MultiDict(), store)
    return reader.object(schema, schema, "")


@dataclass
class _Reader:
    form: MultiDict[str, str]
    files: MultiDict[str, FileStorage]
    store: Store | None

    def object(self, root: dict[str, Any], node: dict[str, Any], prefix: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, prop in (node.get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            prop = _resolve(root, prop)
            value = self.value(root, prop, f"{prefix}{key}")
            if value is not _NONE:
                result[key] = value
        return result

    def value(self, root: dict[str, Any], prop: dict[str, Any], path: str) -> Any:
        form = self.form
        widget, _ = _widget(root, prop, {})
        if widget == "readonly":  # carried unchanged (a row is replaced as a whole)
            carried = form.get(f"{path}.__json")
            if carried is None:
                return _NONE
            try:
                return json.loads(carried)
            except ValueError:
                return _NONE
        if widget == "checkbox":
            return path in form and form.get(path) not in ("", "0", "false")
        if widget == "rows":
            items = _resolve(root, prop.get("items") or {})
            rows = (self.object(root, items, f"{path}.{i}.") for i in _row_indices(form, path))
            return [row for row in rows if _filled(row)]
        if widget == "file":
            return self.attachments(path)
        if widget in ("units", "users", "checkboxes"):
            return [v for v in form.getlist(path) if v != ""]
        if _kind(prop) == "array":  # free strings, one per line
            text = form.get(path, "")
            return [line.strip() for line in text.splitlines() if line.strip()]
        raw = form.get(path)
        if raw is None or raw.strip() == "":
            return _NONE
        raw = raw.strip() if widget != "textarea" else raw
        if widget in ("integer", "number"):
            return _number(raw, widget)
        if widget == "datetime":
            return _datetime(raw)
        return raw

    def attachments(self, path: str) -> list[dict[str, Any]]:
        """Files kept from before (ticked `.keep` names; their ids ride along in `.ref`
        hidden inputs) and the files uploaded now."""
        refs = _refs(self.form.getlist(f"{path}.ref"))
        kept = [refs.get(n) or {"name": n} for n in self.form.getlist(f"{path}.keep") if n]
        uploaded = []
        for upload in self.files.getlist(path):
            if not upload or not upload.filename:
                continue
            stored = self.store(path, upload) if self.store else {"name": upload.filename}
            if stored is not None:
                uploaded.append(stored)
        return kept + uploaded


def _refs(values: list[str]) -> dict[str, dict[str, Any]]:
    """`{"name", "id", "size"}` of earlier uploads, by name, from the page's hidden inputs."""
    found = {}
    for value in values:
        try:
            ref = json.loads(value)
        except ValueError:
            continue
        if isinstance(ref, dict) and isinstance(ref.get("name"), str):
            found[ref["name"]] = {k: ref[k] for k in ("name", "id", "size") if k in ref}
    return found


def _row_indices(form: MultiDict[str, str], path: str) -> list[int]:
    prefix = f"{path}."
    found = set()
    for name in form:
        if name.startswith(prefix):
            head = name[len(prefix) :].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _filled(row: dict[str, Any]) -> bool:
    return any(v not in (False, None, "", []) for v in row.values())


def _number(raw: str, widget: str) -> Any:
    try:
        number = float(raw)
    except ValueError:
        return raw
    if widget == "integer" and number.is_integer():
        return int(number)
    return int(number) if number.is_integer() and "." not in raw else number


def _datetime(raw: str) -> str:
    """`2027-01-08T09:00` from the browser → `2027-01-08T09:00:00+08:00` (Beijing)."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if parsed.tzinfo is not None:
        return parsed.isoformat()
    return parsed.strftime("%Y-%m-%dT%H:%M:%S") + BEIJING_OFFSET


def decision_options(schema: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An approval step's buttons (同意 / 退回 …), from its `decision` field; [] otherwise."""
    prop = ((schema or {}).get("properties") or {}).get("decision")
    if not isinstance(prop, dict):
        return []
    options = _options(prop)
    return options if {"approve", "return"} & {v for v, _ in options} else []
