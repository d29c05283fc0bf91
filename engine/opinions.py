"""审批意见: what people say when they act on a step, kept as rows in the order they were given.

Every completion and every approval operation writes one row, with or without text; a return
must carry its reason. `engine.instance(id)` and `engine.task(id)` list them in order.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .bpmn import json_safe
from .models import HumanTask, Opinion, User

DECISIONS = {"approve", "return", "reject"}


def record(
    session: Session,
    at: datetime,
    row: HumanTask,
    kind: str,
    actor_id: int | None,
    text: str | None,
    detail: dict[str, Any] | None = None,
) -> Opinion:
    opinion = Opinion(
        instance_id=row.instance_id,
        task_id=row.id,
        task_title=row.title,
        actor_id=actor_id,
        kind=kind,
        text=(text or "").strip() or None,
        detail=json_safe(detail) if detail else None,
        at=at,
    )
    session.add(opinion)
    return opinion


def completion_kind(data: dict[str, Any]) -> str:
    """An approval form's `decision` names the opinion (同意/退回); other forms just complete."""
    decision = data.get("decision")
    return decision if isinstance(decision, str) and decision in DECISIONS else "complete"


def for_instance(session: Session, instance_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Opinion, User.username, User.display_name)
        .outerjoin(User, User.id == Opinion.actor_id)
        .where(Opinion.instance_id == instance_id)
        .order_by(Opinion.id)
    ).all()
    return [
        {
            "id": o.id,
            "at": o.at.isoformat(),
            "kind": o.kind,
            "task_id": o.task_id,
            "task": o.task_title,
            "actor": username,
            "actor_name": name,
            "text": o.text,
            "detail": o.detail,
        }
        for o, username, name in rows
    ]
