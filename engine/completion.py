"""Completing a step: the one path every completion takes — a person's 办理 or 同意, a 会签
approver's vote, and the last 加签 signature that lets a waiting approval go through."""

from typing import Any

from SpiffWorkflow.exceptions import WorkflowException

from . import audit, copies, opinions
from .bpmn import json_safe
from .models import HumanTask, User
from .rewind import is_multi_approval
from .runtime import Run
from .status import InstanceStatus, TaskRowState


def finish(
    run: Run,
    row: HumanTask,
    task: Any,
    data: dict[str, Any],
    actor_id: int | None,
    opinion: str | None,
) -> None:
    """Put `data` (already accepted by its form, see forms.accept) on the READY `task`, close
    its row, run the workflow on, save."""
    session, now = run.session, run.ctx.now
    before = dict(task.data)
    task.data.update(data)
    _fill_vote(run, task, data, actor_id)
    row.state, row.ended_at, row.submitted = TaskRowState.COMPLETED, now, json_safe(data)
    row.completed_by_id, row.acted_at = actor_id, row.acted_at or now
    if row.assignee_id is None:
        row.assignee_id = actor_id
    audit.record_task(
        session,
        "task_completed",
        now,
        row,
        actor_id=actor_id,
        reason=opinion,
        data_change=audit.data_change(before, data),
    )
    opinions.record(session, now, row, opinions.completion_kind(data), actor_id, opinion)
    copies.declared(run, task, row)
    try:
        task.run()
    except WorkflowException as exc:
        run.fail(exc)
    if run.instance.status == InstanceStatus.RUNNING:
        run.advance()
    run.save()


def _fill_vote(run: Run, task: Any, data: dict[str, Any], actor_id: int | None) -> None:
    """A 会签 step with an output collection needs each approver's output item; a plain
    approval form does not fill it, so the engine records the submission (and who gave it)."""
    wrapper = task.parent
    if wrapper is None or not is_multi_approval(wrapper):
        return
    output = wrapper.task_spec.output_item
    if output is None or output.exists(task):
        return
    user = run.session.get(User, actor_id) if actor_id else None
    output.set(task, {**json_safe(data), "user": user.username if user else None})
