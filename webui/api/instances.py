"""Instances: start one, list those I may see, one with its history, its diagram; admin actions."""

from typing import Any

from flask import request

from engine import EngineError

from . import bp
from .support import body, engine, form_data, login_required, optional_body, paging, text, username


@bp.post("/instances")
@login_required
def start_instance() -> tuple[dict[str, Any], int]:
    data = body()
    process = text(data, "process")
    if not process:
        raise EngineError("请指定要发起的流程（process）", error="bad_request")
    started = engine().start(process, form_data(data), user=username(), title=text(data, "title"))
    return started, 201


@bp.get("/instances")
@login_required
def instances() -> dict[str, Any]:
    return engine().instances(
        username(),
        process=request.args.get("process") or None,
        status=request.args.get("status") or None,
        **paging(),
    )


@bp.get("/instances/<int:instance_id>")
@login_required
def instance(instance_id: int) -> dict[str, Any]:
    return engine().instance(instance_id, username())


@bp.get("/instances/<int:instance_id>/diagram")
@login_required
def diagram(instance_id: int) -> dict[str, Any]:
    return engine().instance_diagram(instance_id, username())


@bp.post("/instances/<int:instance_id>/reset")
@login_required
def reset(instance_id: int) -> dict[str, Any]:
    """Administrators only: back to an earlier step (`to`: its element id)."""
    data = body()
    return engine().reset(
        instance_id, text(data, "to") or "", user=username(), reason=text(data, "reason")
    )


@bp.post("/instances/<int:instance_id>/retry")
@login_required
def retry(instance_id: int) -> dict[str, Any]:
    """Administrators only: run an instance in error again, optionally correcting data."""
    data = optional_body()
    return engine().retry(
        instance_id,
        user=username(),
        data=form_data(data),
        remove=data.get("remove"),
        reason=text(data, "reason") or "管理员重试",
    )


def _status_change(action: str, instance_id: int) -> dict[str, Any]:
    data = body()
    command = getattr(engine(), action)
    command(instance_id, user=username(), reason=text(data, "reason") or "")
    return engine().instance_summary(instance_id, username())


@bp.post("/instances/<int:instance_id>/suspend")
@login_required
def suspend(instance_id: int) -> dict[str, Any]:
    return _status_change("suspend", instance_id)


@bp.post("/instances/<int:instance_id>/resume")
@login_required
def resume(instance_id: int) -> dict[str, Any]:
    return _status_change("resume", instance_id)


@bp.post("/instances/<int:instance_id>/terminate")
@login_required
def terminate(instance_id: int) -> dict[str, Any]:
    return _status_change("terminate", instance_id)
