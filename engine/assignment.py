"""Who gets a task: lane → role, narrowed to a unit named by instance data; and when it is due.

User-task properties (`spiffworkflow:property`) this module reads:
  formJsonSchemaFilename  the form (relative to the BPMN file)
  unit                    expression → a unit id, code or name (e.g. `lead_unit`)
  assignee                `initiator`, or an expression → a username
  dueInWorkdays           working days after the task appears, e.g. `3`
  dueDate                 expression → an ISO date-time, e.g. `deadline`
"""

from datetime import datetime
from typing import Any, Protocol

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy.orm import Session

from . import audit, directory, notifications
from .context import Context
from .definitions import FORM_PROPERTY, LoadedVersion, bpmn_file_of, resolve_form
from .models import HumanTask, HumanTaskCandidate, ProcessInstance
from .status import TaskRowState
from .workdays import BEIJING


class Run(Protocol):
    """What opening a step reads of the command running the instance (runtime.Run): typed by
    shape, so the runtime that calls this module is not imported by it."""

    session: Session
    instance: ProcessInstance
    version: LoadedVersion
    workflow: BpmnWorkflow
    ctx: Context


def properties(task_spec: Any) -> dict[str, str]:
    return dict((getattr(task_spec, "extensions", None) or {}).get("properties") or {})


def open_human_task(run: Run, task: Any) -> HumanTask:
    spec = task.task_spec
    props = properties(spec)
    session, now = run.session, run.ctx.now
    unit_ref = _evaluate(run, task, props.get("unit"))
    unit = directory.find_unit(session, unit_ref)
    if props.get("unit") and unit is None:
        audit.record(
            session,
            "assignment_warning",
            now,
            instance_id=run.instance.id,
            task_id=str(task.id),
            reason=f"找不到任务指定的单位“{unit_ref}”（{props['unit']}），任务暂无人可办，"
            "请管理员改派",
        )
    assignee_id = _assignee(run, task, props.get("assignee"))
    form = props.get(FORM_PROPERTY)
    row = HumanTask(
        id=str(task.id),
        instance_id=run.instance.id,
        process_key=run.instance.process_key,
        name=spec.bpmn_id or spec.name,
        title=spec.bpmn_name or spec.bpmn_id or spec.name,
        lane=spec.lane,
        role=spec.lane,
        unit_id=unit.id if unit else None,
        assignee_id=assignee_id,
        form=resolve_form(bpmn_file_of(spec, run.version.bpmn_file), form) if form else None,
        instructions=(spec.extensions or {}).get("instructionsForEndUser"),
        state=TaskRowState.OPEN,
        due_at=_due(run, task, props),
        created_at=now,
    )
    session.add(row)  # flushed with its candidates; the unit of work inserts the task first
    # A unit named but not found must not widen the task to every unit: nobody gets it until an
    # admin reassigns it (the warning above says why).
    unit_missing = bool(props.get("unit")) and unit is None
    candidates = set()
    if spec.lane and not unit_missing:
        candidates = set(directory.holders(session, spec.lane, row.unit_id))
    if assignee_id:
        candidates.add(assignee_id)
    notifications.notify(
        session,
        candidates,
        "task",
        f"新待办：{row.title}",
        now,
        instance_id=run.instance.id,
        task_id=row.id,
    )
    for user_id in sorted(candidates):
        session.add(HumanTaskCandidate(task_id=row.id, user_id=user_id))
    audit.record(
        session,
        "task_created",
        now,
        instance_id=run.instance.id,
        task_id=row.id,
        task_title=row.title,
        detail={
            "role": row.role,
            "unit_id": row.unit_id,
            "assignee_id": assignee_id,
            "candidates": len(candidates),
        },
    )
    return row


def _evaluate(run: Run, task: Any, expression: str | None) -> Any:
    if not expression:
        return None
    try:
        return run.workflow.script_engine.evaluate(task, expression)
    except WorkflowException:
        raise
    except Exception as exc:  # surfaced as an instance error by the caller
        raise WorkflowException(f"表达式 {expression} 求值失败：{exc}") from exc


def _assignee(run: Run, task: Any, expression: str | None) -> int | None:
    if not expression:
        return None
    if expression.strip() == "initiator":
        return run.instance.started_by_id
    username = _evaluate(run, task, expression)
    user = directory.user_by_name(run.session, str(username)) if username else None
    return user.id if user else None


def _due(run: Run, task: Any, props: dict[str, str]) -> datetime | None:
    if props.get("dueInWorkdays"):
        return run.ctx.calendar.add_workdays(run.ctx.now, int(props["dueInWorkdays"]))
    value = _evaluate(run, task, props.get("dueDate"))
    if not value:
        return None
    due = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if due.tzinfo is None:
        due = due.replace(tzinfo=BEIJING)
    return due
