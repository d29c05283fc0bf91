"""A person's boxes — 待办 todo, 已办 done, 抄送 cc, 我发起的 started — from plain SQL tables.

No box deserializes a workflow. `todo` is the inbox (queries.inbox); the others are here.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from . import queries
from .actor import Actor
from .errors import InvalidData
from .models import CarbonCopy, HumanTask, ProcessInstance, ProcessVersion, Unit, User
from .status import OPEN_STATES, TaskRowKind, TaskRowState
from .workdays import WorkdayCalendar

BOXES = ("todo", "done", "cc", "started")
DONE_STATES = (TaskRowState.COMPLETED, TaskRowState.RETURNED, TaskRowState.WITHDRAWN)


def box(
    session: Session,
    actor: "Actor",
    name: str,
    page: int,
    per_page: int,
    now: datetime,
    calendar: WorkdayCalendar,
) -> dict[str, Any]:
    page, per_page = max(page, 1), min(max(per_page, 1), 500)
    if name == "todo":
        result = queries.inbox(session, actor, page, per_page, now, calendar)
    elif name == "done":
        result = _done(session, actor, page, per_page, now, calendar)
    elif name == "cc":
        result = _cc(session, actor, page, per_page)
    elif name == "started":
        result = _started(session, actor, page, per_page)
    else:
        message = f"未知的列表“{name}”，可选：{'、'.join(BOXES)}"
        raise InvalidData(message, {"box": message})
    return {**result, "box": name}


def _page(
    session: Session, query: Select[*tuple[Any, ...]], page: int, per_page: int
) -> tuple[int, Any]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.offset((page - 1) * per_page).limit(per_page)).all()
    return total or 0, rows


def _done(
    session: Session,
    actor: "Actor",
    page: int,
    per_page: int,
    now: datetime,
    calendar: WorkdayCalendar,
) -> dict[str, Any]:
    """What I completed, returned or withdrew (加签 signatures included), latest first."""
    assignee = aliased(User)
    query = (
        select(HumanTask, assignee.username, Unit.name, ProcessInstance.status)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .outerjoin(assignee, assignee.id == HumanTask.assignee_id)
        .outerjoin(Unit, Unit.id == HumanTask.unit_id)
        .where(HumanTask.completed_by_id == actor.id, HumanTask.state.in_(DONE_STATES))
        .order_by(HumanTask.ended_at.desc(), HumanTask.id)
    )
    total, rows = _page(session, query, page, per_page)
    items = []
    for task, username, unit, status in rows:
        item = queries.task_summary(task, username, unit, now, calendar)
        item.update(
            ended_at=task.ended_at.isoformat() if task.ended_at else None,
            instance_status=status,
        )
        items.append(item)
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def _cc(session: Session, actor: "Actor", page: int, per_page: int) -> dict[str, Any]:
    sender = aliased(User)
    query = (
        select(CarbonCopy, ProcessInstance, sender.username)
        .join(ProcessInstance, ProcessInstance.id == CarbonCopy.instance_id)
        .outerjoin(sender, sender.id == CarbonCopy.sender_id)
        .where(CarbonCopy.user_id == actor.id)
        .order_by(CarbonCopy.read_at.is_not(None), CarbonCopy.created_at.desc(), CarbonCopy.id)
    )
    total, rows = _page(session, query, page, per_page)
    items = [
        {
            "id": cc.id,
            "instance_id": cc.instance_id,
            "process": instance.process_key,
            "title": instance.title,
            "status": instance.status,
            "task_id": cc.task_id,
            "task": cc.task_title,
            "sender": username,
            "note": cc.note,
            "created_at": cc.created_at.isoformat(),
            "read_at": cc.read_at.isoformat() if cc.read_at else None,
        }
        for cc, instance, username in rows
    ]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def _started(session: Session, actor: "Actor", page: int, per_page: int) -> dict[str, Any]:
    query = (
        select(ProcessInstance, ProcessVersion.name)
        .join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)
        .where(ProcessInstance.started_by_id == actor.id)
        .order_by(ProcessInstance.started_at.desc(), ProcessInstance.id.desc())
    )
    total, rows = _page(session, query, page, per_page)
    current = _open_steps(session, [instance.id for instance, _ in rows])
    items = [
        {
            "id": instance.id,
            "process": instance.process_key,
            "process_name": name,
            "title": instance.title,
            "status": instance.status,
            "started_at": instance.started_at.isoformat(),
            "ended_at": instance.ended_at.isoformat() if instance.ended_at else None,
            "current": current.get(instance.id, []),
        }
        for instance, name in rows
    ]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def _open_steps(session: Session, instance_ids: list[int]) -> dict[int, list[str]]:
    """The titles of each instance's open steps: where my request stands."""
    found: dict[int, list[str]] = {}
    if not instance_ids:
        return found
    rows = session.execute(
        select(HumanTask.instance_id, HumanTask.title)
        .where(
            HumanTask.instance_id.in_(instance_ids),
            HumanTask.state.in_(OPEN_STATES),
            HumanTask.kind == TaskRowKind.TASK,
        )
        .order_by(HumanTask.created_at, HumanTask.id)
    )
    for instance_id, title in rows:
        found.setdefault(instance_id, []).append(title)
    return found
