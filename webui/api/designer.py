"""Process designer (流程设计员): drafts, check, deploy, versions, diff and instance migration."""

from typing import Any

from flask import request

from engine import InvalidData
from engine.designer_commands import ANY_DRAFT

from ..inputs import large_json
from . import bp
from .support import body, engine, login_required, text, username

PREFIX = "/designer/processes/<key>"


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidData(f"{name} 必须是正整数", {name: "应为正整数"})
    return int(raw)


@bp.get("/designer/processes")
@login_required
def designer_processes() -> list[dict[str, Any]]:
    return engine().designer_processes(username())


@bp.get("/designer/roles")
@login_required
def designer_roles() -> list[str]:
    return engine().designer_roles(username())


@bp.get(PREFIX)
@login_required
def process_versions(key: str) -> dict[str, Any]:
    return engine().process_versions(key, username())


@bp.get(f"{PREFIX}/versions/<int:version>")
@login_required
def version_files(key: str, version: int) -> dict[str, Any]:
    return engine().version_files(key, version, username())


@bp.get(f"{PREFIX}/draft")
@login_required
def draft(key: str) -> dict[str, Any]:
    return engine().draft(key, username())


@bp.put(f"{PREFIX}/draft")
@login_required
@large_json  # a whole bundle: BPMN files may be up to 2 million characters each
def save_draft(key: str) -> dict[str, Any]:
    data = body()
    based_on = data.get("updated_at", ANY_DRAFT)  # the draft's updated_at the editor began with
    if based_on is not ANY_DRAFT and based_on is not None and not isinstance(based_on, str):
        raise InvalidData("updated_at 必须是文本或 null", {"updated_at": "应为文本或 null"})
    return engine().save_draft(key, data.get("files"), user=username(), based_on=based_on)


@bp.delete(f"{PREFIX}/draft")
@login_required
def discard_draft(key: str) -> tuple[str, int]:
    engine().discard_draft(key, user=username())
    return "", 204


@bp.post(f"{PREFIX}/draft/check")
@login_required
def check_draft(key: str) -> dict[str, Any]:
    return engine().check_draft(key, user=username())


@bp.post(f"{PREFIX}/draft/deploy")
@login_required
def deploy_draft(key: str) -> tuple[dict[str, Any], int]:
    return engine().deploy_draft(key, user=username()), 201


@bp.get(f"{PREFIX}/diff")
@login_required
def diff_versions(key: str) -> dict[str, Any]:
    old, new = _int_arg("old"), _int_arg("new")
    if old is None or new is None:
        raise InvalidData("请指定要比较的两个版本", {"old": "必填", "new": "必填"})
    return engine().diff_versions(key, old, new, username())


@bp.get(f"{PREFIX}/migration")
@login_required
def migration_check(key: str) -> dict[str, Any]:
    return engine().migration_check(key, to_version=_int_arg("to"), user=username())


@bp.post("/designer/migrations")
@login_required
def migrate_instances() -> dict[str, Any]:
    data = body()
    to_version = data.get("to_version")
    if to_version is not None and (not isinstance(to_version, int) or isinstance(to_version, bool)):
        raise InvalidData("to_version 必须是整数", {"to_version": "应为整数"})
    results = engine().migrate_instances(
        data.get("instances"), to_version=to_version, user=username(), reason=text(data, "reason")
    )
    return {"results": results}
