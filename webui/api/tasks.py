"""Tasks: the boxes, one task with its form, claim/complete, and the approval operations."""

from typing import Any

from flask import request

from engine import InvalidData

from . import bp
from .support import (
    body,
    engine,
    form_data,
    login_required,
    names,
    optional_body,
    paging,
    text,
    username,
    whole_number,
)

BOXES = ("todo", "done", "cc", "started")


@bp.get("/tasks")
@login_required
def tasks() -> dict[str, Any]:
    """?box=todo (default) | done | cc | started"""
    box = request.args.get("box", "todo")
    if box not in BOXES:
        raise InvalidData("box 只能是 todo、done、cc 或 started", {"box": "取值无效"})
    return engine().tasks(username(), box=box, **paging())


@bp.get("/tasks/<task_id>")
@login_required
def task(task_id: str) -> dict[str, Any]:
    return engine().task(task_id, username())


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> dict[str, Any]:
    return engine().claim(task_id, username())


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> dict[str, Any]:
    return engine().unclaim(task_id, username())


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete(task_id: str) -> dict[str, Any]:
    data = body()
    revision = data.get("instance_revision")
    if revision is not None:
        if not whole_number(revision, 0, 2**31 - 1):
            raise InvalidData("instance_revision 必须是整数", {"instance_revision": "应为整数"})
        revision = int(revision)
    return engine().complete(
        task_id,
        form_data(data),
        user=username(),
        opinion=text(data, "opinion"),
        expected_revision=revision,
    )


@bp.post("/tasks/<task_id>/transfer")
@login_required
def transfer(task_id: str) -> dict[str, Any]:
    data = body()
    return engine().transfer(
        task_id, text(data, "to") or "", user=username(), opinion=text(data, "opinion")
    )


@bp.post("/tasks/<task_id>/delegate")
@login_required
def delegate(task_id: str) -> dict[str, Any]:
    data = body()
    return engine().delegate(
        task_id, text(data, "to") or "", user=username(), opinion=text(data, "opinion")
    )


@bp.post("/tasks/<task_id>/add-signers")
@login_required
def add_signers(task_id: str) -> dict[str, Any]:
    data = body()
    before = data.get("before", True)
    if not isinstance(before, bool):
        raise InvalidData("before 必须是 true 或 false", {"before": "应为 true 或 false"})
    return engine().add_signers(
        task_id,
        names(data),
        user=username(),
        before=before,
        data=form_data(data),
        opinion=text(data, "opinion"),
    )


@bp.post("/tasks/<task_id>/return")
@login_required
def return_task(task_id: str) -> dict[str, Any]:
    data = body()
    reason = text(data, "reason") or text(data, "opinion")
    return engine().return_task(task_id, user=username(), reason=reason, to=text(data, "to"))


@bp.get("/tasks/<task_id>/return-targets")
@login_required
def return_targets(task_id: str) -> dict[str, Any]:
    return {"items": engine().return_targets(task_id, username())}


@bp.get("/tasks/<task_id>/transfer-candidates")
@login_required
def transfer_candidates(task_id: str) -> dict[str, Any]:
    """Who the task may be transferred or delegated to: the people who may hold its step."""
    return {"items": engine().transfer_candidates(task_id, username())}


@bp.post("/tasks/<task_id>/withdraw")
@login_required
def withdraw(task_id: str) -> dict[str, Any]:
    data = optional_body()
    return engine().withdraw(task_id, user=username(), opinion=text(data, "opinion"))


@bp.post("/tasks/<task_id>/urge")
@login_required
def urge(task_id: str) -> dict[str, Any]:
    data = optional_body()
    message = text(data, "message") or text(data, "opinion")
    return engine().urge(task_id, user=username(), message=message)


@bp.post("/tasks/<task_id>/cc")
@login_required
def cc(task_id: str) -> dict[str, Any]:
    data = body()
    return engine().cc(task_id, names(data), user=username(), opinion=text(data, "opinion"))


@bp.post("/cc/<int:cc_id>/read")
@login_required
def cc_read(cc_id: int) -> dict[str, Any]:
    return engine().mark_cc_read(cc_id, username())


@bp.post("/tasks/<task_id>/reassign")
@login_required
def reassign(task_id: str) -> dict[str, Any]:
    """Administrators only."""
    data = body()
    return engine().reassign(
        task_id, text(data, "to") or "", user=username(), reason=text(data, "reason")
    )
