"""Which instances a person may see, as one SQL condition; the instance list and diagram."""

from typing import TYPE_CHECKING, Any

from SpiffWorkflow import TaskState
from sqlalchemy import ColumnElement, exists, func, or_, select, true
from sqlalchemy.orm import Session

from .actor import Actor
from .bpmn import load_state
from .errors import Forbidden, InvalidData, NotFound
from .models import (
    CarbonCopy,
    DeploymentFile,
    HumanTask,
    HumanTaskCandidate,
    ProcessInstance,
    ProcessVersion,
    TaskHistory,
    TrackedItem,
    User,
)
from .status import InstanceStatus

if TYPE_CHECKING:
    from .definitions import SpecCache

STATUSES = tuple(InstanceStatus)  # running, completed, error, suspended, terminated


def visible(actor: "Actor") -> ColumnElement[bool]:
    """Admins and `sees_all` roles see everything; anyone else what they started, took part in
    (assignee, candidate, completer, owner, CC) and what concerns their unit (a task of the unit
    or a tracked item it leads)."""
    if actor.is_admin or actor.sees_all:
        return true()
    instance = ProcessInstance
    my_tasks = select(HumanTaskCandidate.task_id).where(HumanTaskCandidate.user_id == actor.id)
    took_part = or_(
        HumanTask.assignee_id == actor.id,
        HumanTask.completed_by_id == actor.id,
        HumanTask.owner_id == actor.id,
        HumanTask.id.in_(my_tasks),
        *([HumanTask.unit_id == actor.unit_id] if actor.unit_id is not None else []),
    )
    checks = [
        instance.started_by_id == actor.id,
        exists().where(HumanTask.instance_id == instance.id, took_part),
        exists().where(CarbonCopy.instance_id == instance.id, CarbonCopy.user_id == actor.id),
    ]
    if actor.unit_id is not None:
        checks.append(
            exists().where(
                TrackedItem.instance_id == instance.id, TrackedItem.lead_unit_id == actor.unit_id
            )
        )
    return or_(*checks)


def may_view(session: Session, instance_id: int, actor: "Actor") -> bool:
    query = select(ProcessInstance.id).where(ProcessInstance.id == instance_id, visible(actor))
    return session.scalar(query) is not None


def instance_list(
    session: Session,
    actor: "Actor",
    *,
    process: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> dict[str, Any]:
    """The instances `actor` may see, newest first; filter by process key and status."""
    if status is not None and status not in STATUSES:
        raise InvalidData("status 取值无效", {"status": "应为 " + "、".join(STATUSES) + " 之一"})
    query = select(ProcessInstance).where(visible(actor))
    if process:
        query = query.where(ProcessInstance.process_key == process)
    if status:
        query = query.where(ProcessInstance.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    starter = User.username.label("started_by")
    rows = session.execute(
        query.add_columns(ProcessVersion.version, ProcessVersion.name, starter)
        .join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)
        .outerjoin(User, User.id == ProcessInstance.started_by_id)
        .order_by(ProcessInstance.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return {
        "items": [
            {
                "id": row.ProcessInstance.id,
                "process": row.ProcessInstance.process_key,
                "process_name": row.name,
                "version": row.version,
                "status": row.ProcessInstance.status,
                "title": row.ProcessInstance.title,
                "started_by": row.started_by,
                "started_at": row.ProcessInstance.started_at.isoformat(),
                "ended_at": row.ProcessInstance.ended_at.isoformat()
                if row.ProcessInstance.ended_at
                else None,
            }
            for row in rows
        ],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


def diagram(
    session: Session, specs: "SpecCache", instance_id: int, actor: "Actor | None"
) -> dict[str, Any]:
    """The BPMN XML of the instance's own version, and which elements are done, current
    (a step waiting for a person or running) and waiting (a timer or message)."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"流程实例 {instance_id} 不存在")
    if actor is not None and not may_view(session, instance_id, actor):
        raise Forbidden("您无权查看该流程：它不属于您所在的单位，您也未参与办理")
    version = session.get(ProcessVersion, instance.process_version_id)
    assert version is not None
    xml = session.scalar(
        select(DeploymentFile.content).where(
            DeploymentFile.deployment_id == version.deployment_id,
            DeploymentFile.name == version.bpmn_file,
        )
    )
    loaded = specs.get(session, instance.process_version_id)
    workflow = load_state(instance.state, loaded.spec, loaded.subprocess_specs)
    done = set(
        session.scalars(select(TaskHistory.element).where(TaskHistory.instance_id == instance_id))
    )
    current, waiting = set(), set()
    for task in workflow.get_tasks():
        element = getattr(task.task_spec, "bpmn_id", None)
        if element is None:
            continue
        if task.state == TaskState.COMPLETED:
            done.add(element)
        elif task.state in (TaskState.READY, TaskState.STARTED, TaskState.ERROR):
            current.add(element)
        elif task.state == TaskState.WAITING:
            waiting.add(element)
    return {
        "id": instance_id,
        "process": instance.process_key,
        "version": version.version,
        "file": version.bpmn_file,
        "xml": xml,
        "completed": sorted(done - current - waiting),
        "current": sorted(current),
        "waiting": sorted(waiting - current),
    }
