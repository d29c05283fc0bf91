"""Sending and reading in-app notifications."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from .models import Notification


def notify(
    session: Session,
    user_ids: Iterable[int],
    kind: str,
    title: str,
    at: datetime,
    *,
    body: str | None = None,
    instance_id: int | None = None,
    task_id: str | None = None,
) -> int:
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            title=title,
            body=body,
            instance_id=instance_id,
            task_id=task_id,
            created_at=at,
        )
        for user_id in sorted(set(user_ids))
    ]
    session.add_all(rows)
    return len(rows)


def for_user(
    session: Session, user_id: int, *, unread_only: bool = False, page: int = 1, per_page: int = 50
) -> dict[str, Any]:
    where = [Notification.user_id == user_id]
    if unread_only:
        where.append(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(Notification).where(*where)) or 0
    unread = (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )
    rows = session.scalars(
        select(Notification)
        .where(*where)
        .order_by(Notification.id.desc())
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    )
    items = [
        {
            "id": n.id,
            "kind": n.kind,
            "title": n.title,
            "body": n.body,
            "instance_id": n.instance_id,
            "task_id": n.task_id,
            "created_at": n.created_at.isoformat(),
            "read_at": n.read_at.isoformat() if n.read_at else None,
        }
        for n in rows
    ]
    return {"items": items, "total": total, "unread": unread, "page": page, "per_page": per_page}


def mark_read(session: Session, user_id: int, ids: Iterable[int] | None, at: datetime) -> int:
    query = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    result = cast(
        "CursorResult[Any]", session.execute(query.values(read_at=at))
    )  # DML: a row count
    return result.rowcount or 0
