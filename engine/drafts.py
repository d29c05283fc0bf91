"""Task form drafts: saved per task and person, restored on the task page, dropped on completion.

A draft is personal scratch, not workflow state: saving one writes no audit event."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from .models import TaskDraft


def save(
    session: Session,
    task_id: str,
    user_id: int,
    data: dict[str, Any],
    opinion: str | None,
    now: datetime,
) -> dict[str, Any]:
    row = session.get(TaskDraft, (task_id, user_id))
    if row is None:
        row = TaskDraft(task_id=task_id, user_id=user_id, data=data, saved_at=now)
        session.add(row)
    row.data, row.opinion, row.saved_at = data, opinion or None, now
    return as_dict(row)


def load(session: Session, task_id: str, user_id: int) -> dict[str, Any] | None:
    row = session.get(TaskDraft, (task_id, user_id))
    return as_dict(row) if row else None


def discard(session: Session, task_id: str, user_id: int | None = None) -> int:
    """Drop the drafts of a task (one person's, or everybody's once the task is done)."""
    query = delete(TaskDraft).where(TaskDraft.task_id == task_id)
    if user_id is not None:
        query = query.where(TaskDraft.user_id == user_id)
    result = cast("CursorResult[Any]", session.execute(query))  # DML: a row count
    return result.rowcount or 0


def as_dict(row: TaskDraft) -> dict[str, Any]:
    return {"data": row.data or {}, "opinion": row.opinion, "saved_at": row.saved_at.isoformat()}
