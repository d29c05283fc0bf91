"""加签: an approver asks more people to sign a step, before or after themselves.

The step's workflow task stays READY throughout; its human-task row waits (state `waiting`,
out of every inbox) while each signer has a row of their own (kind `sign`, pointing at the
step's row). Before-signing (前加签): when the last signer has signed, the step is the
approver's again. After-signing (后加签): the approver has already given their data; when
the last signer has signed, the step completes with it. A signer may also return the step.
Signers may be any active user, unlike 转办 / 委派 (handover.py): a signer adds a signature
(or returns the step) but never decides it — the approver's own data completes it.
"""

from typing import Any
from uuid import uuid4

from sqlalchemy import func, select

from . import acting, audit, completion, forms, notifications, opinions, queries
from .actor import Actor
from .bpmn import json_safe
from .errors import Conflict, InvalidData
from .models import HumanTask
from .runtime import Run
from .status import Delegation, TaskRowKind, TaskRowState


def add_signers(
    run: Run,
    row: HumanTask,
    actor: "Actor",
    usernames: Any,
    before: bool,
    data: dict[str, Any],
    opinion: str | None,
) -> dict[str, Any]:
    session, now = run.session, run.ctx.now
    if row.kind != TaskRowKind.TASK or row.delegation == Delegation.PENDING:
        raise Conflict("加签人或被委派人不能再加签")
    signers = acting.people(session, usernames, "users")
    if any(user.id == actor.id for user in signers):
        raise InvalidData("不能给自己加签", {"users": "不能给自己加签"})
    task = run.ready_task(row.id)  # the workflow must still be waiting for this step
    form = run.form_of(row)
    if before:
        forms.check_fields(form, data)  # 前加签: the approver fills the form after the signers
    else:
        data = forms.accept(form, data, task.data)
    row.assignee_id = row.assignee_id or actor.id
    row.state, row.acted_at = TaskRowState.WAITING, now
    row.sign_mode = "before" if before else "after"
    row.submitted = None if before else json_safe(data)
    for user in signers:
        session.add(_signer_row(row, user.id, now))
    names = [user.username for user in signers]
    detail = {"users": names, "before": before}
    audit.record_task(
        session,
        "signers_added",
        now,
        row,
        actor_id=actor.id,
        reason=opinion,
        detail=detail,
    )
    opinions.record(session, now, row, "add_signers", actor.id, opinion, detail)
    notifications.notify(
        session,
        [user.id for user in signers],
        "sign",
        f"加签：请签署“{row.title}”",
        now,
        body=opinion,
        instance_id=row.instance_id,
        task_id=row.id,
    )
    return {"id": row.id, "state": row.state, "signers": names, "before": before}


def sign(
    run: Run, row: HumanTask, data: dict[str, Any], actor_id: int | None, opinion: str | None
) -> dict[str, Any]:
    """A signer signs; the last signature gives the step back (before) or completes it (after)."""
    session, now = run.session, run.ctx.now
    row.state, row.ended_at, row.submitted = TaskRowState.COMPLETED, now, json_safe(data)
    row.completed_by_id, row.acted_at = actor_id, row.acted_at or now
    audit.record_task(
        session,
        "task_signed",
        now,
        row,
        actor_id=actor_id,
        reason=opinion,
    )
    opinions.record(session, now, row, "sign", actor_id, opinion)
    main = acting.task_row(session, row.parent_task_id or "")
    session.flush()
    if _open_signers(run, main) == 0:
        _all_signed(run, main)
    return queries.instance_summary(run.instance, run.version)


def _all_signed(run: Run, main: HumanTask) -> None:
    session, now = run.session, run.ctx.now
    mode, main.sign_mode = main.sign_mode, None
    audit.record_task(
        session,
        "signers_done",
        now,
        main,
        detail={"before": mode == "before"},
    )
    if mode == "before":
        main.state = TaskRowState.OPEN
        notifications.notify(
            session,
            [main.assignee_id] if main.assignee_id else [],
            "task",
            f"加签人已签署，请办理：{main.title}",
            now,
            instance_id=main.instance_id,
            task_id=main.id,
        )
        return
    main.state = TaskRowState.OPEN  # completion closes it again, as the approver's own completion
    task = run.ready_task(main.id)
    completion.finish(run, main, task, dict(main.submitted or {}), main.assignee_id, None)


def _open_signers(run: Run, main: HumanTask) -> int:
    return (
        run.session.scalar(
            select(func.count())
            .select_from(HumanTask)
            .where(HumanTask.parent_task_id == main.id, HumanTask.state == TaskRowState.OPEN)
        )
        or 0
    )


def _signer_row(main: HumanTask, user_id: int, now: Any) -> HumanTask:
    return HumanTask(
        id=str(uuid4()),
        instance_id=main.instance_id,
        process_key=main.process_key,
        name=main.name,
        title=f"{main.title}（加签）",
        unit_id=main.unit_id,
        assignee_id=user_id,
        state=TaskRowState.OPEN,
        due_at=main.due_at,
        created_at=now,
        kind=TaskRowKind.SIGN,
        parent_task_id=main.id,
    )
