"""抄送 (CC): copying an instance to people, who then see it read-only in their CC box.

A step copies when it completes if BPMN declares it (`ccUsers`, `ccRoles`; see
approval_steps), and the person handling a step may copy whom they choose. Copying someone
twice keeps one entry, marked unread again.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, directory, notifications
from .approval_steps import listed, properties
from .errors import NotFound
from .models import CarbonCopy, HumanTask, ProcessInstance

if TYPE_CHECKING:
    from .runtime import Run


def copy(
    session: Session,
    at: datetime,
    row: HumanTask,
    user_ids: Iterable[int],
    sender_id: int | None,
    note: str | None = None,
) -> list[int]:
    """Copy `row`'s instance to `user_ids`; returns who was copied (the sender never is)."""
    targets = sorted({u for u in user_ids if u != sender_id})
    existing = {
        c.user_id: c
        for c in session.scalars(
            select(CarbonCopy).where(
                CarbonCopy.instance_id == row.instance_id, CarbonCopy.user_id.in_(targets)
            )
        )
    }
    for user_id in targets:
        entry = existing.get(user_id) or CarbonCopy(instance_id=row.instance_id, user_id=user_id)
        entry.sender_id, entry.task_id, entry.task_title = sender_id, row.id, row.title
        entry.note, entry.created_at, entry.read_at = note, at, None
        session.add(entry)
    if targets:
        instance = session.get(ProcessInstance, row.instance_id)
        subject = (instance.title if instance else None) or row.title
        notifications.notify(
            session, targets, "cc", f"抄送：{subject}", at, body=note, instance_id=row.instance_id
        )
        audit.record_task(
            session,
            "instance_copied",
            at,
            row,
            actor_id=sender_id,
            reason=note,
            detail={"users": targets},
        )
    return targets


def declared(run: "Run", task: Any, row: HumanTask) -> None:
    """The copies the step's BPMN declares, sent as it completes. A bad expression must not
    stop the work: it is recorded for the designer and the step completes."""
    props = properties(task.task_spec)
    if not props.get("ccUsers") and not props.get("ccRoles"):
        return
    session = run.session
    user_ids = set()
    for role in listed(props.get("ccRoles")):
        user_ids.update(directory.holders(session, role, None))
    try:
        named = (
            run.workflow.script_engine.evaluate(task, props["ccUsers"])
            if "ccUsers" in props
            else []
        )
    except Exception as exc:  # noqa: BLE001 — any script failure becomes a warning
        audit.record(
            session,
            "cc_warning",
            run.ctx.now,
            instance_id=row.instance_id,
            task_id=row.id,
            reason=f"抄送人表达式 {props['ccUsers']} 求值失败：{exc}",
        )
        named = []
    for username in [named] if isinstance(named, str) else list(named or []):
        user = directory.user_by_name(session, str(username))
        if user is not None and user.active:
            user_ids.add(user.id)
    copy(session, run.ctx.now, row, user_ids, None)


def mark_read(session: Session, user_id: int, cc_id: int, at: datetime) -> dict[str, Any]:
    entry = session.get(CarbonCopy, cc_id)
    if entry is None or entry.user_id != user_id:
        raise NotFound("抄送记录不存在")
    entry.read_at = entry.read_at or at
    return {"id": entry.id, "instance_id": entry.instance_id, "read_at": entry.read_at.isoformat()}


def is_recipient(session: Session, instance_id: int, user_id: int) -> bool:
    """Whether the instance was copied to the user (the permission layer lets them read it)."""
    found = session.scalar(
        select(CarbonCopy.id).where(
            CarbonCopy.instance_id == instance_id, CarbonCopy.user_id == user_id
        )
    )
    return found is not None
