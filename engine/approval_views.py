"""What the task and instance views show about approvals: opinions, 退回 reasons, 委派 and
加签 state, 催办 counts and 抄送 — all from SQL rows."""

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from . import opinions
from .models import CarbonCopy, HumanTask, User

if TYPE_CHECKING:
    from .engine import Actor


def may_view_task(row: HumanTask, actor: "Actor") -> bool:
    """Besides its assignee and candidates: its 委派 owner and whoever completed it."""
    return actor.id in (row.owner_id, row.completed_by_id)


def data_source_id(row: HumanTask) -> str:
    """The workflow task whose data a row shows: a signer sees the step they sign."""
    return row.parent_task_id if row.kind == "sign" and row.parent_task_id else row.id


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
