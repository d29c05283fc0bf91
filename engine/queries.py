"""The read side: inboxes, task and instance views, startable processes. Plain SQL; listing never
deserializes a workflow (only the single-instance and single-task views load one)."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from . import approval_views, instance_views, items
from .actor import Actor
from .bpmn import json_safe, load_state
from .errors import Forbidden, NotFound
from .lights import light
from .models import (
    Event,
    HumanTask,
    HumanTaskCandidate,
    ProcessInstance,
    ProcessVersion,
    TrackedItem,
    Unit,
    User,
)
from .runtime import current_data
from .status import OPEN_STATES, TaskRowState
from .workdays import WorkdayCalendar

if TYPE_CHECKING:
    from .definitions import SpecCache


# ----------------------------------------------------------------- processes
def startable_processes(session: Session, actor: "Actor | None") -> list[dict[str, Any]]:
    newest = (
        select(ProcessVersion.key, func.max(ProcessVersion.version).label("version"))
        .group_by(ProcessVersion.key)
        .subquery()
    )
    versions = session.scalars(
        select(ProcessVersion)
        .join(
            newest,
            and_(ProcessVersion.key == newest.c.key, ProcessVersion.version == newest.c.version),
        )
        .order_by(ProcessVersion.key)
    )
    return [
        {"key": v.key, "name": v.name, "version": v.version, "start_roles": v.start_roles}
        for v in versions
        if actor is None or may_start(actor, v)
    ]


def may_start(actor: "Actor", version: ProcessVersion) -> bool:
    roles = set(version.start_roles or [])
    return actor.is_admin or not roles or bool(roles & actor.roles)


# --------------------------------------------------------------------- tasks
def is_candidate(session: Session, row: HumanTask, actor: "Actor") -> bool:
    return session.get(HumanTaskCandidate, (row.id, actor.id)) is not None


def may_act_on(session: Session, row: HumanTask, actor: "Actor") -> bool:
    if row.assignee_id is not None:
        return row.assignee_id == actor.id
    return is_candidate(session, row, actor)


def _visible_to(actor: "Actor") -> Any:
    candidate = exists().where(
        HumanTaskCandidate.task_id == HumanTask.id, HumanTaskCandidate.user_id == actor.id
    )
    return or_(HumanTask.assignee_id == actor.id, and_(HumanTask.assignee_id.is_(None), candidate))


def inbox(
    session: Session,
    actor: "Actor",
    page: int,
    per_page: int,
    now: datetime,
    calendar: WorkdayCalendar,
) -> dict[str, Any]:
    """The actor's open tasks: assigned to them, or claimable by them. Soonest due first."""
    page, per_page = max(page, 1), min(max(per_page, 1), 500)
    where = and_(HumanTask.state == TaskRowState.OPEN, _visible_to(actor))
    assignee = aliased(User)
    # Plain rows with just the listed columns: no ORM objects to build, the inbox stays cheap.
    rows = session.execute(
        select(
            *SUMMARY_COLUMNS,
            assignee.username.label("assignee_name"),
            Unit.name.label("unit_name"),
            func.count().over().label("total"),  # the page and the count in one round trip
        )
        .outerjoin(assignee, assignee.id == HumanTask.assignee_id)
        .outerjoin(Unit, Unit.id == HumanTask.unit_id)
        .where(where)
        .order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.created_at, HumanTask.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    items = [task_summary(row, row.assignee_name, row.unit_name, now, calendar) for row in rows]
    if rows:
        total = rows[0].total
    else:  # past the last page: the window had no row to count on
        total = session.scalar(select(func.count()).select_from(HumanTask).where(where)) or 0
    return {"items": items, "page": page, "per_page": per_page, "total": total}


SUMMARY_COLUMNS = (
    HumanTask.id,
    HumanTask.instance_id,
    HumanTask.process_key,
    HumanTask.name,
    HumanTask.title,
    HumanTask.role,
    HumanTask.state,
    HumanTask.created_at,
    HumanTask.due_at,
    HumanTask.kind,
    HumanTask.urge_count,
    HumanTask.return_reason,
)


def task_summary(
    task: Any,  # a HumanTask, or a row of SUMMARY_COLUMNS
    assignee: str | None,
    unit: str | None,
    now: datetime,
    calendar: WorkdayCalendar,
) -> dict[str, Any]:
    return {
        "id": task.id,
        "instance_id": task.instance_id,
        "process": task.process_key,
        "name": task.name,
        "title": task.title,
        "role": task.role,
        "unit": unit,
        "assignee": assignee,
        "state": task.state,
        "created_at": task.created_at.isoformat(),
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "light": light(task.due_at, now, calendar) if task.state == TaskRowState.OPEN else None,
        "kind": task.kind,  # task | sign (a 加签 signature)
        "urge_count": task.urge_count,
        "returned": task.return_reason is not None,
    }


def task_detail(
    session: Session,
    specs: "SpecCache",
    task_id: str,
    actor: "Actor | None",
    now: datetime,
    calendar: WorkdayCalendar,
) -> dict[str, Any]:
    task = session.get(HumanTask, task_id)
    if task is None:
        raise NotFound("任务不存在")
    if actor is not None and not (
        actor.is_admin
        or may_act_on(session, task, actor)
        or is_candidate(session, task, actor)  # also once a colleague has claimed it
        or approval_views.may_view_task(task, actor)
    ):
        raise Forbidden("您无权查看该任务")
    instance = session.get(ProcessInstance, task.instance_id)
    assert instance is not None
    version = specs.get(session, instance.process_version_id)
    assignee = session.get(User, task.assignee_id) if task.assignee_id else None
    unit = session.get(Unit, task.unit_id) if task.unit_id else None
    detail = task_summary(
        task, assignee.username if assignee else None, unit.name if unit else None, now, calendar
    )
    detail["form"] = version.forms.get(task.form) if task.form else None
    detail["instructions"] = task.instructions
    detail["instance_revision"] = instance.revision
    live = task.state in OPEN_STATES
    detail["data"] = (
        approval_views.fresh_opinions(
            session, task, version.forms, _task_data(instance, version, task)
        )
        if live
        else task.submitted
    )
    detail.update(approval_views.task_extras(session, task))
    return detail


def _task_data(instance: ProcessInstance, version: Any, task: HumanTask) -> dict[str, Any]:
    from uuid import UUID

    workflow = load_state(instance.state, version.spec, version.subprocess_specs)
    try:
        source = approval_views.data_source_id(task)
        return json_safe(workflow.get_task_from_id(UUID(source)).data)
    except Exception:  # the task left the tree (completed elsewhere); show nothing stale
        return {}


# ----------------------------------------------------------------- instances
def instance_summary(instance: ProcessInstance, version: Any) -> dict[str, Any]:
    """`version`: the ProcessVersion row or the cached LoadedVersion (both carry `.version`)."""
    return {
        "id": instance.id,
        "process": instance.process_key,
        "version": version.version if version else None,
        "status": instance.status,
        "title": instance.title,
        "revision": instance.revision,
        "error": instance.error_message,
    }


def instance_detail(
    session: Session,
    specs: "SpecCache",
    instance_id: int,
    actor: "Actor | None",
    now: datetime,
    calendar: WorkdayCalendar,
) -> dict[str, Any]:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"流程实例 {instance_id} 不存在")
    if actor is not None and not may_view_instance(session, instance, actor):
        raise Forbidden("您无权查看该流程：它不属于您所在的单位，您也未参与办理")
    version = session.get(ProcessVersion, instance.process_version_id)
    loaded = specs.get(session, instance.process_version_id)
    workflow = load_state(instance.state, loaded.spec, loaded.subprocess_specs)
    assignee = aliased(User)
    tasks = session.execute(
        select(HumanTask, assignee.username, Unit.name)
        .outerjoin(assignee, assignee.id == HumanTask.assignee_id)
        .outerjoin(Unit, Unit.id == HumanTask.unit_id)
        .where(HumanTask.instance_id == instance_id)
        .order_by(HumanTask.created_at)
    ).all()
    actor_user = aliased(User)
    events = session.execute(
        select(Event, actor_user.username)
        .outerjoin(actor_user, actor_user.id == Event.actor_id)
        .where(Event.instance_id == instance_id)
        .order_by(Event.id)
    ).all()
    detail = instance_summary(instance, version)
    detail.update(
        {
            "process_name": version.name if version else instance.process_key,
            "started_at": instance.started_at.isoformat(),
            "ended_at": instance.ended_at.isoformat() if instance.ended_at else None,
            "parent_instance_id": instance.parent_instance_id,
            "parent": _linked(session, [instance.parent_instance_id])[0]
            if instance.parent_instance_id
            else None,
            "children": _linked(session, _child_ids(session, instance_id)),
            "items": _items_of(session, instance_id, now, calendar),
            "data": json_safe(current_data(workflow)),
            "tasks": [task_summary(t, u, n, now, calendar) for t, u, n in tasks],
            "history": [_event_dict(e, username) for e, username in events],
            **approval_views.instance_extras(session, instance_id),
        }
    )
    return detail


def _event_dict(event: Event, username: str | None) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "task_id": event.task_id,
        "task": event.task_title,
        "actor": username,
        "reason": event.reason,
        "data_change": event.data_change,
        "detail": event.detail,
    }


def may_view_instance(session: Session, instance: ProcessInstance, actor: "Actor") -> bool:
    return instance_views.may_view(session, instance.id, actor)


def _child_ids(session: Session, instance_id: int) -> list[int]:
    return list(
        session.scalars(
            select(ProcessInstance.id)
            .where(ProcessInstance.parent_instance_id == instance_id)
            .order_by(ProcessInstance.id)
        )
    )


def _linked(session: Session, ids: Sequence[int | None]) -> list[dict[str, Any]]:
    """Parent or child instances as links: each end of a hand-off shows the other."""
    rows = session.execute(
        select(ProcessInstance, ProcessVersion.name)
        .join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)
        .where(ProcessInstance.id.in_([i for i in ids if i]))
        .order_by(ProcessInstance.id)
    ).all()
    return [
        {
            "id": i.id,
            "process": i.process_key,
            "process_name": name,
            "title": i.title,
            "status": i.status,
        }
        for i, name in rows
    ]


def _items_of(
    session: Session, instance_id: int, now: datetime, calendar: WorkdayCalendar
) -> list[dict[str, Any]]:
    rows = list(
        session.scalars(
            select(TrackedItem)
            .where(TrackedItem.instance_id == instance_id)
            .order_by(TrackedItem.id)
        )
    )
    units = dict(session.execute(select(Unit.id, Unit.name)).all()) if rows else {}
    return [items.summary(row, units, now, calendar) for row in rows]
