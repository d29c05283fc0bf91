"""The approval operations Chinese offices expect, on top of SpiffWorkflow.

Each is one command (one transaction, under the instance's lock), checks who may do it, writes
an audit event and an opinion row (审批意见), and notifies the people it concerns. `Engine`
exposes them (approval_commands.py); the JSON API maps them to `/tasks/<id>/…`.

* 转办 `transfer`: the task becomes another person's. The workflow does not notice. Only
  someone who may hold the step is accepted (handover.py: the lane's role in the step's unit,
  office-wide holders of it, and the roles listed in `transferRoles`); so for 委派.
* 委派 `delegate`: the delegate handles the task and their completion goes back to the owner
  (`resolve`), who confirms and completes it. Their data is put on the task, not submitted.
* 加签 `signing.add_signers`: extra signers sign before the approver acts (前加签), or after
  the approver has given their data (后加签). The step completes only when all have signed.
* 会签 / 或签: a multi-instance user task whose `approvalMode` is `all` or `any` (see
  approval_steps). One approver's return returns the whole step.
* 退回 `returns.return_task`: to the previous human step, to the initiator, or to a step listed
  in `returnTargets`, with a mandatory reason. The returned-to person gets the step again with
  the reason and their earlier data. Inside parallel branches and 会签 steps, see rewind.
* 撤回 `returns.withdraw`: the completer takes a step back while nothing it opened has been
  claimed, completed or otherwise acted on (`HumanTask.acted_at`).
* 催办 `urging.urge_task`: counted on the task, logged and notified. Timers' automatic reminders
  call it too.
* 抄送 copies: declared in BPMN (`ccUsers`, `ccRoles`) or chosen by the sender; CC'd people
  see the instance read-only in their CC box and mark it read.
* Admin: `reassign` any open task to anyone (not bound by handover.py), `returns.reset` an
  instance to an earlier step.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from . import (
    acting,
    approval_views,
    audit,
    completion,
    copies,
    forms,
    handover,
    notifications,
    opinions,
    queries,
    returns,
    rewind,
    signing,
)
from .actor import Actor
from .errors import Conflict, InvalidData
from .models import HumanTask, User
from .runtime import Run
from .status import OPEN_STATES, Delegation, TaskRowKind


def complete(
    run: Run, row: HumanTask, data: dict[str, Any], actor: "Actor | None", opinion: str | None
) -> dict[str, Any]:
    """Complete whatever `row` is: a step, a 加签 signature, a delegate's answer, or — for a
    会签 approver whose form says `decision: return` — the return of the whole step."""
    actor_id = actor.id if actor else run.ctx.actor_id
    if actor is not None:
        acting.check_may_act(run.session, row, actor)
    if row.kind == TaskRowKind.SIGN:
        step = acting.task_row(run.session, row.parent_task_id or "")
        forms.check_fields(run.form_of(step), data)  # a signer's data stays on their own row
        return signing.sign(run, row, data, actor_id, opinion)
    task = run.ready_task(row.id)
    data = forms.accept(run.form_of(row), data, task.data)
    if row.delegation == Delegation.PENDING:
        return resolve(run, row, data, actor_id, opinion)
    if data.get("decision") == "return" and rewind.own_step(task) is not task:
        reason = acting.require_text(data.get("reason") or opinion, "reason", "请填写退回原因")
        return returns.return_task(run, row, actor_id, None, reason, data)
    stale = approval_views.stale_opinions(run.session, row, run.version.forms, task.data)
    task.data.update(dict.fromkeys(stale - data.keys()))  # this approval's own words only
    completion.finish(run, row, task, data, actor_id, opinion)
    return queries.instance_summary(run.instance, run.version)


# ------------------------------------------------------------------ 转办 / 委派
def transfer(
    session: Session,
    now: datetime,
    row: HumanTask,
    actor: "Actor",
    to: User,
    opinion: str | None,
    may_hold: handover.Rule,
) -> dict[str, Any]:
    _check_handover(session, row, actor, to, may_hold)
    row.assignee_id, row.acted_at = to.id, row.acted_at or now
    _handed_over(session, now, row, actor, to, "transfer", opinion)
    notifications.notify(
        session,
        [to.id],
        "task",
        f"转办：{row.title}",
        now,
        body=opinion,
        instance_id=row.instance_id,
        task_id=row.id,
    )
    return {"id": row.id, "assignee": to.username}


def delegate(
    session: Session,
    now: datetime,
    row: HumanTask,
    actor: "Actor",
    to: User,
    opinion: str | None,
    may_hold: handover.Rule,
) -> dict[str, Any]:
    _check_handover(session, row, actor, to, may_hold)
    if row.kind != TaskRowKind.TASK:
        raise Conflict("加签任务不能委派")
    row.owner_id, row.assignee_id, row.delegation = actor.id, to.id, Delegation.PENDING
    row.acted_at = row.acted_at or now
    _handed_over(session, now, row, actor, to, "delegate", opinion)
    notifications.notify(
        session,
        [to.id],
        "task",
        f"委派：{row.title}（处理后交回委派人确认）",
        now,
        body=opinion,
        instance_id=row.instance_id,
        task_id=row.id,
    )
    return {"id": row.id, "assignee": to.username, "owner": actor.username}


def resolve(
    run: Run, row: HumanTask, data: dict[str, Any], actor_id: int | None, opinion: str | None
) -> dict[str, Any]:
    """The delegate's answer: their data goes on the task and the task goes back to its owner."""
    session, now = run.session, run.ctx.now
    task = run.ready_task(row.id)
    before = dict(task.data)
    task.data.update(data)
    row.assignee_id, row.delegation = row.owner_id, Delegation.RESOLVED
    audit.record_task(
        session,
        "task_delegation_resolved",
        now,
        row,
        actor_id=actor_id,
        reason=opinion,
        data_change=audit.data_change(before, data),
    )
    opinions.record(session, now, row, "resolve", actor_id, opinion)
    notifications.notify(
        session,
        [row.owner_id] if row.owner_id else [],
        "task",
        f"委派任务已处理，请确认办理：{row.title}",
        now,
        body=opinion,
        instance_id=row.instance_id,
        task_id=row.id,
    )
    run.save()
    return queries.instance_summary(run.instance, run.version)


def reassign(
    session: Session, now: datetime, row: HumanTask, actor_id: int | None, to: User, reason: str
) -> dict[str, Any]:
    """An administrator gives any open task to someone; a pending delegation ends with it.
    Deliberately not bound by who may hold the step (handover.py): reassigning is how an
    administrator repairs a task nobody may hold (its unit not found, its people gone)."""
    acting.require_state(row, *OPEN_STATES)
    before = row.assignee_id
    row.assignee_id, row.owner_id, row.delegation = to.id, None, None
    audit.record_task(
        session,
        "task_reassigned",
        now,
        row,
        actor_id=actor_id,
        reason=reason,
        detail={
            "from": acting.usernames(session, [before] if before else []).get(before or 0),
            "to": to.username,
        },
    )
    opinions.record(session, now, row, "reassign", actor_id, reason, {"to": to.username})
    notifications.notify(
        session,
        [to.id],
        "task",
        f"管理员改派：{row.title}",
        now,
        body=reason,
        instance_id=row.instance_id,
        task_id=row.id,
    )
    return {"id": row.id, "assignee": to.username}


_HANDOVER_EVENTS = {"transfer": "task_transferred", "delegate": "task_delegated"}


def _check_handover(
    session: Session, row: HumanTask, actor: "Actor", to: User, may_hold: handover.Rule
) -> None:
    acting.require_state(row)
    acting.check_may_act(session, row, actor)
    if row.delegation == Delegation.PENDING:
        raise Conflict("委派中的任务不能再转办或委派，请等待被委派人处理")
    if to.id == actor.id:
        raise InvalidData("不能交给自己", {"to": "不能交给自己"})
    handover.check_target(session, row, may_hold, to)  # only someone who may hold the step


def _handed_over(
    session: Session,
    now: datetime,
    row: HumanTask,
    actor: "Actor",
    to: User,
    kind: str,
    opinion: str | None,
) -> None:
    detail = {"from": actor.username, "to": to.username}
    audit.record(
        session,
        _HANDOVER_EVENTS[kind],
        now,
        instance_id=row.instance_id,
        task_id=row.id,
        task_title=row.title,
        actor_id=actor.id,
        reason=opinion,
        detail=detail,
    )
    opinions.record(session, now, row, kind, actor.id, opinion, detail)


# ------------------------------------------------------------------ 催办


# ------------------------------------------------------------------ 抄送
def copy_task(
    session: Session,
    now: datetime,
    row: HumanTask,
    actor: "Actor",
    users: list[User],
    opinion: str | None,
) -> dict[str, Any]:
    """The person handling (or who handled) a step copies its instance to others."""
    if row.completed_by_id != actor.id and not actor.is_admin:
        acting.require_state(row, *OPEN_STATES)
        acting.check_may_act(session, row, actor)
    copied = copies.copy(session, now, row, [u.id for u in users], actor.id, opinion)
    names = acting.usernames(session, copied)
    opinions.record(session, now, row, "cc", actor.id, opinion, {"users": list(names.values())})
    return {"id": row.id, "copied": sorted(names.values())}
