"""The audit trail: one append-only row per thing that happened."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .bpmn import json_safe
from .models import Event


def record(
    session: Session,
    kind: str,
    at: datetime,
    *,
    instance_id: int | None = None,
    task_id: str | None = None,
    task_title: str | None = None,
    actor_id: int | None = None,
    reason: str | None = None,
    data_change: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> Event:
    event = Event(
        kind=kind,
        at=at,
        instance_id=instance_id,
        task_id=task_id,
        task_title=task_title,
        actor_id=actor_id,
        reason=reason,
        data_change=json_safe(data_change) if data_change else None,
        detail=json_safe(detail) if detail else None,
    )
    session.add(event)
    return event


def record_task(
    session: Session,
    kind: str,
    at: datetime,
    task: Any,
    *,
    actor_id: int | None = None,
    reason: str | None = None,
    data_change: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> Event:
    """An event about one human task (`task` is a HumanTask row)."""
    return record(
        session,
        kind,
        at,
        instance_id=task.instance_id,
        task_id=task.id,
        task_title=task.title,
        actor_id=actor_id,
        reason=reason,
        data_change=data_change,
        detail=detail,
    )


def data_change(before: dict[str, Any], submitted: dict[str, Any]) -> dict[str, Any]:
    """{field: {"from": old, "to": new}} for each submitted field whose value changed."""
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in submitted.items()
        if before.get(key) != value
    }
