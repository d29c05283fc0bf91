"""The operations console over HTTP (role 系统管理员): instances in error and their repair (one or
in bulk), timers, the audit search, users/units/roles administration and health.
Documented in webui/openapi/console.yaml."""

from typing import Any

from flask import request

from engine import InvalidData

from . import bp
from .support import body, engine, login_required, text, username

FILTERS = ("status", "process", "since", "until", "page", "per_page")
AUDIT_FILTERS = ("username", "unit", "process", "instance_id", "since", "until", "page", "per_page")


def _args(*names: str) -> dict[str, Any]:
    return {name: request.args[name] for name in names if request.args.get(name)}


def _number(name: str, default: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not 0 <= value < 10**9:
        raise InvalidData(f"{name} 必须是非负数", {name: "应为非负数"})
    return value


# ------------------------------------------------------------------- repair
@bp.get("/console/errors")
@login_required
def error_instances() -> dict[str, Any]:
    return engine().error_instances(username(), **_args(*FILTERS))


@bp.get("/console/tasks")
@login_required
def console_tasks() -> dict[str, Any]:
    filters = _args("process", "assignee", "instance_id", "page", "per_page")
    filters["unclaimable"] = request.args.get("unclaimable") == "true"
    return engine().console_tasks(username(), **filters)


@bp.get("/console/instances/<int:instance_id>/reset-targets")
@login_required
def reset_targets(instance_id: int) -> list[dict[str, Any]]:
    return engine().reset_targets(instance_id, username())


@bp.post("/console/bulk")
@login_required
def bulk() -> dict[str, Any]:
    data = body()
    return engine().bulk(
        text(data, "action") or "",
        data.get("ids"),  # type: ignore[arg-type]  (checked by the engine)
        user=username(),
        reason=text(data, "reason"),
        to=text(data, "to"),
    )


# ------------------------------------------------------------------- timers
@bp.get("/console/timers")
@login_required
def timers() -> dict[str, Any]:
    limit = min(max(int(_number("limit", 50)), 1), 500)
    return engine().timers_overview(username(), late_after=_number("late_after", 60.0), limit=limit)


@bp.post("/console/timers/<int:timer_id>/retry")
@login_required
def retry_timer(timer_id: int) -> dict[str, Any]:
    return engine().retry_timer(timer_id, user=username(), reason=text(body(), "reason"))


# -------------------------------------------------------------------- audit
@bp.get("/audit")
@login_required
def audit() -> dict[str, Any]:
    filters: dict[str, Any] = _args(*AUDIT_FILTERS)
    kinds = [k for k in request.args.getlist("kind") if k]
    if kinds:
        filters["kind"] = kinds
    return engine().audit_events(username(), **filters)


# ----------------------------------------------------- users, units, roles
@bp.get("/console/directory")
@login_required
def directory() -> dict[str, Any]:
    return engine().directory_overview(username())


@bp.post("/users")
@login_required
def create_user() -> tuple[dict[str, Any], int]:
    return engine().create_user(body(), user=username()), 201


@bp.patch("/users/<name>")
@login_required
def update_user(name: str) -> dict[str, Any]:
    return engine().update_user(name, body(), user=username())


@bp.post("/users/<name>/deactivate")
@login_required
def deactivate_user(name: str) -> dict[str, Any]:
    return engine().deactivate_user(name, user=username(), reason=text(body(), "reason"))


@bp.post("/users/<name>/activate")
@login_required
def activate_user(name: str) -> dict[str, Any]:
    return engine().activate_user(name, user=username(), reason=text(body(), "reason"))


@bp.post("/users/<name>/sign-out")
@login_required
def sign_out_everywhere(name: str) -> dict[str, Any]:
    return engine().sign_out_everywhere(name, user=username(), reason=text(body(), "reason"))


@bp.post("/users/import")
@login_required
def import_users() -> tuple[dict[str, Any], int]:
    upload = request.files.get("file")
    if upload is None:
        raise InvalidData("请选择要导入的 .xlsx 文件", {"file": "请选择 .xlsx 文件"})
    return engine().import_users(upload.read(), user=username()), 201


@bp.post("/units")
@login_required
def create_unit() -> tuple[dict[str, Any], int]:
    return engine().create_unit(body(), user=username()), 201


@bp.patch("/units/<ref>")
@login_required
def update_unit(ref: str) -> dict[str, Any]:
    return engine().update_unit(ref, body(), user=username())


@bp.post("/roles")
@login_required
def create_role() -> tuple[dict[str, Any], int]:
    return engine().create_role(body(), user=username()), 201


@bp.patch("/roles/<name>")
@login_required
def update_role(name: str) -> dict[str, Any]:
    return engine().update_role(name, body(), user=username())


# ------------------------------------------------------------------- health
@bp.get("/console/health")
@login_required
def health() -> dict[str, Any]:
    return engine().health(username())
