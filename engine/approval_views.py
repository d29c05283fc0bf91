"""What the task and instance views show about approvals: opinions, 退回 reasons, 委派 and
加签 state, 催办 counts and 抄送 — all from SQL rows."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from . import forms, opinions
from .actor import Actor
from .models import CarbonCopy, Event, HumanTask, Opinion, User
from .status import Delegation, TaskRowKind, TaskRowState


def may_view_task(row: HumanTask, actor: "Actor") -> bool:
    """Besides its assignee and candidates: its 委派 owner and whoever completed it."""
    return actor.id in (row.owner_id, row.completed_by_id)


def data_source_id(row: HumanTask) -> str:
    """The workflow task whose data a row shows: a signer sees the step they sign."""
    return row.parent_task_id if row.kind == TaskRowKind.SIGN and row.parent_task_id else row.id


def fresh_opinions(
    session: Session, row: HumanTask, schemas: dict[str, dict[str, Any]], data: dict[str, Any]
) -> dict[str, Any]:
    """Each approval's opinion starts empty. A step's data carries what every earlier step
    submitted, so an approval step would show another approval's decision, reason or opinion
    (审签 pre-filled with 审定议题's "同意，按议程准备。"). Its opinion fields show only what
    this same step was given: its own earlier run when re-opened by 退回/撤回, a delegate's
    answer, the approver's data while 后加签 signers sign. (The page lays a saved draft over
    this.) A signer's row shows the step it signs."""
    step = row
    if row.kind == TaskRowKind.SIGN and row.parent_task_id:
        step = session.get(HumanTask, row.parent_task_id) or row
    fields = _opinion_fields(session, step, schemas)
    if not fields:
        return data
    own: dict[str, Any] = {}
    earlier = _reopened_from(session, step)
    if earlier is not None and isinstance(earlier.submitted, dict):
        own.update(earlier.submitted)
    if step.delegation == Delegation.RESOLVED:
        own.update(_delegates_answer(session, step))
    if (
        step.state == TaskRowState.WAITING
        and step.sign_mode == "after"
        and isinstance(step.submitted, dict)
    ):
        own.update(step.submitted)
    shown = {key: value for key, value in data.items() if key not in fields}
    shown.update({key: value for key, value in own.items() if key in fields})
    return shown


def stale_opinions(
    session: Session, row: HumanTask, schemas: dict[str, dict[str, Any]], data: dict[str, Any]
) -> set[str]:
    """The opinion fields of `row`'s approval form whose value in `data` another step gave
    (see fresh_opinions): completing the step without them clears them, so the process, its
    documents and the next approval never take an earlier approval's words for this one's."""
    shown = fresh_opinions(session, row, schemas, data)
    return {key for key in data if key not in shown}


def _delegates_answer(session: Session, row: HumanTask) -> dict[str, Any]:
    """What the delegates put on the task (operations.resolve), from its audit events."""
    answer: dict[str, Any] = {}
    changes = session.scalars(
        select(Event.data_change)
        .where(
            Event.instance_id == row.instance_id,
            Event.task_id == row.id,
            Event.kind == "task_delegation_resolved",
        )
        .order_by(Event.id)
    )
    for change in changes:
        if isinstance(change, dict):
            answer.update({k: v.get("to") for k, v in change.items() if isinstance(v, dict)})
    return answer


def _opinion_fields(
    session: Session, row: HumanTask, schemas: dict[str, dict[str, Any]]
) -> set[str]:
    """An approval form's (it has `decision`) own fields: those its approver writes (not
    read-only), except what a non-approval step of the instance writes too — document fields
    an approver may amend keep their values."""
    schema = schemas.get(row.form) if row.form else None
    if not _is_approval(schema):
        return set()
    assert schema is not None
    fields = _writable(schema)
    others = session.scalars(
        select(HumanTask.form)
        .where(
            HumanTask.instance_id == row.instance_id,
            HumanTask.form.is_not(None),
            HumanTask.form != row.form,
        )
        .distinct()
    )
    for name in others:
        other = schemas.get(name or "")
        if other is not None and not _is_approval(other):
            fields -= _writable(other)
    return fields


def _is_approval(schema: dict[str, Any] | None) -> bool:
    return schema is not None and "decision" in forms.declared_fields(schema)


def _writable(schema: dict[str, Any]) -> set[str]:
    return {k for k, p in forms.declared_fields(schema).items() if not p.get("readOnly")}


def _reopened_from(session: Session, row: HumanTask) -> HumanTask | None:
    """The same step's earlier run that `row` re-opens after a 退回, reset (both leave their
    reason on the row) or 撤回 (the earlier run is `withdrawn`); None for a fresh run, such as
    the next round after the step itself returned the work."""
    runs = select(HumanTask).where(
        HumanTask.instance_id == row.instance_id,
        HumanTask.kind == TaskRowKind.TASK,
        HumanTask.name == row.name,
        HumanTask.id != row.id,
        HumanTask.state.in_((TaskRowState.COMPLETED, TaskRowState.WITHDRAWN)),
    )
    if row.assignee_id is not None:  # a 会签 approver: their own earlier vote
        runs = runs.where(HumanTask.completed_by_id == row.assignee_id)
    earlier = session.scalars(
        runs.outerjoin(Opinion, Opinion.task_id == HumanTask.id)  # opinion ids order runs
        .order_by(Opinion.id.desc().nulls_last(), HumanTask.ended_at.desc())
        .limit(1)
    ).first()
    if earlier is None:
        return None
    return (
        earlier
        if row.return_reason is not None or earlier.state == TaskRowState.WITHDRAWN
        else None
    )


def task_extras(session: Session, row: HumanTask) -> dict[str, Any]:
    owner = session.get(User, row.owner_id) if row.owner_id else None
    signer = aliased(User)
    signers = session.execute(
        select(HumanTask.id, HumanTask.state, signer.username)
        .outerjoin(signer, signer.id == HumanTask.assignee_id)
        .where(HumanTask.parent_task_id == row.id)
        .order_by(HumanTask.created_at, HumanTask.id)
    ).all()
    return {
        "parent_task_id": row.parent_task_id,
        "return_reason": row.return_reason,
        "delegation": row.delegation,
        "owner": owner.username if owner else None,
        "sign_mode": row.sign_mode,
        "last_urged_at": row.last_urged_at.isoformat() if row.last_urged_at else None,
        "signers": [{"id": i, "state": s, "user": u} for i, s, u in signers],
        "opinions": opinions.for_instance(session, row.instance_id),
    }


def instance_extras(session: Session, instance_id: int) -> dict[str, Any]:
    reader, sender = aliased(User), aliased(User)
    copies = session.execute(
        select(CarbonCopy, reader.username, sender.username)
        .join(reader, reader.id == CarbonCopy.user_id)
        .outerjoin(sender, sender.id == CarbonCopy.sender_id)
        .where(CarbonCopy.instance_id == instance_id)
        .order_by(CarbonCopy.id)
    ).all()
    return {
        "opinions": opinions.for_instance(session, instance_id),
        "cc": [
            {
                "user": user,
                "sender": by,
                "task": cc.task_title,
                "created_at": cc.created_at.isoformat(),
                "read_at": cc.read_at.isoformat() if cc.read_at else None,
            }
            for cc, user, by in copies
        ],
    }
