"""退回, 撤回 and an administrator's reset: the operations that send an instance back.

All three rewind the task tree to an earlier step (see rewind for what that means in
SpiffWorkflow terms) and then re-open that step for the person who did it before, with their
earlier data filled in and, for a return, the reason shown on the task and sent to them.
"""

from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, select

from . import acting, audit, directory, items, notifications, opinions, queries, rewind
from .actor import Actor
from .approval_steps import INITIATOR, listed, properties
from .bpmn import json_safe
from .errors import Conflict, Forbidden, InvalidData
from .models import HumanTask, HumanTaskCandidate, Notification, Opinion
from .runtime import Run, cancel_signers, current_data
from .status import Delegation, InstanceStatus, TaskRowKind, TaskRowState

PREVIOUS = "previous"


def return_task(
    run: Run,
    row: HumanTask,
    actor_id: int | None,
    to: Any,
    reason: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the step of `row` (or, for a signer's row, the step it signs) to an earlier one."""
    session, now = run.session, run.ctx.now
    main = (
        row if row.kind == TaskRowKind.TASK else acting.task_row(session, row.parent_task_id or "")
    )
    if main.delegation == Delegation.PENDING:
        raise Conflict("委派中的任务不能退回，请办理后交回委派人决定")
    task = run.ready_task(main.id)
    step = _choose(run, task, to)
    before = _ready_ids(run)
    for closing in {row.id: row, main.id: main}.values():
        closing.state = TaskRowState.RETURNED
        closing.ended_at, closing.completed_by_id = now, actor_id
        closing.acted_at = closing.acted_at or now
    cancel_signers(session, main, now)
    row.submitted = json_safe(data) if data else row.submitted
    detail = {"to": step.element, "to_title": step.title}
    audit.record_task(
        session,
        "task_returned",
        now,
        row,
        actor_id=actor_id,
        reason=reason,
        detail=detail,
    )
    opinions.record(session, now, row, "return", actor_id, reason, detail)
    run.operation = "退回"
    reopened = _restart(run, step.reset_point, before, reason)
    return {
        **queries.instance_summary(run.instance, run.version),
        "returned_to": step.title,
        "tasks": reopened,
    }


def targets(run: Run, row: HumanTask) -> list[dict[str, Any]]:
    """Where the step of `row` may be returned to, for the 退回 dialog."""
    task = run.ready_task(row.id if row.kind == TaskRowKind.TASK else row.parent_task_id or "")
    steps = rewind.targets(task)
    allowed = set(listed(properties(task.task_spec).get("returnTargets")))
    found = []
    initiator = _initiator_step(run, steps)
    for index, step in enumerate(steps):
        kinds = [PREVIOUS] if index == 0 else []
        kinds += [INITIATOR] if step is initiator else []
        kinds += ["allowed"] if step.element in allowed else []
        if kinds:
            found.append({"to": step.element, "title": step.title, "kinds": kinds})
    return found


def withdraw(run: Run, row: HumanTask, actor: "Actor", opinion: str | None) -> dict[str, Any]:
    """The completer takes a step back while nobody has acted on what it opened."""
    session, now = run.session, run.ctx.now
    if row.kind != TaskRowKind.TASK:
        raise Conflict("加签意见不能撤回")
    if row.completed_by_id != actor.id:
        raise Forbidden("只有办理人本人可以撤回")
    acting.require_state(row, TaskRowState.COMPLETED)
    task = _in_tree(run, row.id)
    next_rows = _untouched_next(run, task)
    before = _ready_ids(run)
    row.state = TaskRowState.WITHDRAWN
    audit.record_task(
        session,
        "task_withdrawn",
        now,
        row,
        actor_id=actor.id,
        reason=opinion,
    )
    opinions.record(session, now, row, "withdraw", actor.id, opinion)
    run.operation = "撤回"
    reopened = _restart(run, task, before, None)
    _tell_withdrawn(run, next_rows, row.title)
    return {**queries.instance_summary(run.instance, run.version), "tasks": reopened}


def reset(run: Run, to: Any, actor_id: int | None, reason: str) -> dict[str, Any]:
    """An administrator sends a running (or failed) instance back to an earlier step."""
    step = next(
        (
            s
            for task in _live(run)
            for s in rewind.targets(task, same_round=False)
            if s.element == to
        ),
        None,
    )
    if step is None:
        raise InvalidData("找不到可重置到的步骤", {"to": f"当前步骤之前没有“{to}”"})
    failed = [t for t in _live(run) if t.state == TaskState.ERROR]
    if any(not rewind.is_below(t, step.reset_point) for t in failed):
        raise Conflict("出错的步骤不在重置范围内，请重置到更早的步骤或先重试")
    before = _ready_ids(run)
    audit.record(
        run.session,
        "instance_reset",
        run.ctx.now,
        instance_id=run.instance.id,
        actor_id=actor_id,
        reason=reason,
        detail={"to": step.element, "to_title": step.title},
    )
    run.instance.status = InstanceStatus.RUNNING
    run.instance.error_message, run.instance.error_task = None, None
    run.operation = "重置"
    reopened = _restart(run, step.reset_point, before, reason)
    return {
        **queries.instance_summary(run.instance, run.version),
        "reset_to": step.title,
        "tasks": reopened,
    }


# ------------------------------------------------------------------ choosing
def _choose(run: Run, task: Any, to: Any) -> rewind.Step:
    steps = rewind.targets(task)
    if not steps:
        raise Conflict("本步骤之前没有可退回的步骤")
    if to in (None, "", PREVIOUS):
        return steps[0]
    if to == INITIATOR:
        step = _initiator_step(run, steps)
        if step is None:
            raise Conflict("发起人没有办理过本步骤之前的步骤，不能退回发起人")
        return step
    allowed = listed(properties(task.task_spec).get("returnTargets"))
    if to != steps[0].element and to not in allowed:
        raise InvalidData("不能退回到该步骤", {"to": f"流程未允许本步骤退回到“{to}”"})
    step = next((s for s in steps if s.element == to), None)
    if step is None:
        raise InvalidData("不能退回到该步骤", {"to": f"“{to}”不在本步骤之前，不能退回"})
    return step


def _initiator_step(run: Run, steps: list[rewind.Step]) -> rewind.Step | None:
    """The earliest step the instance's initiator completed, within reach."""
    ids = [str(s.task.id) for s in steps]
    done_by = dict(
        run.session.execute(
            select(HumanTask.id, HumanTask.completed_by_id).where(HumanTask.id.in_(ids))
        ).all()
    )
    starter = run.instance.started_by_id
    return next(
        (s for s in reversed(steps) if starter and done_by.get(str(s.task.id)) == starter), None
    )


# ------------------------------------------------------------------ re-opening
def _restart(run: Run, reset_point: Any, before: set[str], reason: str | None) -> list[str]:
    """Rewind, run on, and give each re-opened step its earlier data and earlier person."""
    last_run = run.session.get(HumanTask, str(reset_point.id))  # the reset step's own row
    rewind.rewind(reset_point)
    run.advance()
    reopened = [
        t
        for t in run.workflow.get_tasks(state=TaskState.READY, manual=True)
        if str(t.id) not in before
    ]
    if not any(t is reset_point or rewind.is_below(t, reset_point) for t in reopened):
        raise Conflict(_taken_away(run, reset_point))
    earlier = {
        str(t.id): last_run if t is reset_point and last_run else _earlier_row(run, t)
        for t in reopened
    }
    for task in reopened:
        prior = earlier[str(task.id)]
        if prior is not None and prior.submitted:
            task.data.update(prior.submitted)
    items.restore(run.session, run.instance.id, current_data(run.workflow))
    run.save()
    for task_id, prior in earlier.items():
        _reopen_row(run, task_id, prior, reason)
    return list(earlier)


def _taken_away(run: Run, reset_point: Any) -> str:
    """Why the step would not stay open: its own deadline timer, already past, fires at once
    (an overdue 整改落实 goes straight back to 约谈). Re-opening it would only repeat that."""
    title = rewind.Step(reset_point, reset_point).title
    fired = next(
        (
            t
            for t in (reset_point.parent.children if reset_point.parent else [])
            if getattr(t.task_spec, "cancel_activity", False) and t.state == TaskState.COMPLETED
        ),
        None,
    )
    if fired is None:
        return f"「{title}」重新打开后流程会立即离开该步骤，不能{run.operation}到这里"
    timer = fired.task_spec.bpmn_name or rewind.element(fired)
    return (
        f"「{title}」已过「{timer}」时限，重新打开后会立即再次触发，不能{run.operation}到该步骤；"
        "请在当前步骤中办理（如确定新的期限）"
    )


def _earlier_row(run: Run, task: Any) -> HumanTask | None:
    query = (
        select(HumanTask)
        .where(
            HumanTask.instance_id == run.instance.id,
            HumanTask.kind == TaskRowKind.TASK,
            HumanTask.name == rewind.element(task),
            HumanTask.state.in_((TaskRowState.COMPLETED, TaskRowState.WITHDRAWN)),
        )
        .outerjoin(Opinion, Opinion.task_id == HumanTask.id)  # opinion ids order rows in time
        .order_by(Opinion.id.desc().nulls_last(), HumanTask.ended_at.desc())
    )
    if rewind.own_step(task) is not task:  # a 会签 instance: the same approver's earlier vote
        query = query.where(HumanTask.completed_by_id == _approver(run, task))
    return run.session.scalars(query.limit(1)).first()


def _approver(run: Run, task: Any) -> int | None:
    expression = properties(task.task_spec).get("assignee")
    if not expression:
        return None
    try:
        username = run.workflow.script_engine.evaluate(task, expression)
    except Exception:  # noqa: BLE001 — no earlier vote to show is not an error
        return None
    user = directory.user_by_name(run.session, str(username))
    return user.id if user else None


def _reopen_row(run: Run, task_id: str, prior: HumanTask | None, reason: str | None) -> None:
    row = run.session.get(HumanTask, task_id)
    if row is None or row.state != TaskRowState.OPEN:
        return
    row.return_reason = reason
    if prior is not None and row.assignee_id is None:
        row.assignee_id = prior.completed_by_id
        # the pool was told of a new task that is now the earlier person's; nobody saw it yet
        run.session.execute(
            delete(Notification).where(
                Notification.task_id == row.id,
                Notification.kind == "task",
                Notification.user_id != row.assignee_id,
            )
        )
    if reason and row.assignee_id:
        notifications.notify(
            run.session,
            [row.assignee_id],
            "return",
            f"退回：{row.title}",
            run.ctx.now,
            body=reason,
            instance_id=row.instance_id,
            task_id=row.id,
        )


# ------------------------------------------------------------------ withdrawing
def _in_tree(run: Run, task_id: str) -> Any:
    try:
        task = run.workflow.get_task_from_id(UUID(task_id))
    except Exception as exc:  # noqa: BLE001 — pruned: the process has long moved on
        raise Conflict("下一步已办理，不能撤回") from exc
    if rewind.own_step(task) is not task:
        raise Conflict("会签/或签中的单人意见不能撤回，请由下一步退回")
    return task


def _untouched_next(run: Run, task: Any) -> list[HumanTask]:
    if any(rewind.finished_human_tasks(task)):
        raise Conflict("下一步已办理，不能撤回")
    rows = [run.session.get(HumanTask, str(t.id)) for t in rewind.live_human_tasks(task)]
    if any(r is None or r.state != TaskRowState.OPEN or r.acted_at is not None for r in rows):
        raise Conflict("下一步已开始办理，不能撤回")
    return [r for r in rows if r is not None]


def _tell_withdrawn(run: Run, rows: list[HumanTask], title: str) -> None:
    people: set[int] = set()
    for row in rows:
        people |= {row.assignee_id} if row.assignee_id else set(_candidates(run, row))
    notifications.notify(
        run.session,
        people,
        "withdraw",
        f"上一步“{title}”已撤回，相关待办已取消",
        run.ctx.now,
        instance_id=run.instance.id,
    )


def _candidates(run: Run, row: HumanTask) -> list[int]:
    return list(
        run.session.scalars(
            select(HumanTaskCandidate.user_id).where(HumanTaskCandidate.task_id == row.id)
        )
    )


def _ready_ids(run: Run) -> set[str]:
    return {str(t.id) for t in run.workflow.get_tasks(state=TaskState.READY, manual=True)}


def _live(run: Run) -> list[Any]:
    """Where the instance stands: its open user tasks, and a failed task if there is one."""
    return [
        t
        for t in run.workflow.get_tasks()
        if (t.state == TaskState.READY and t.task_spec.manual) or t.state == TaskState.ERROR
    ]
