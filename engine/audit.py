"""The audit trail: one append-only row per thing that happened."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .bpmn import json_safe
from .models import Event

# Every kind of event the engine records (webui/labels.py names each one in Chinese;
# tests/test_labels.py checks this list against the engine's calls of record/record_task).
EVENT_KINDS: frozenset[str] = frozenset(
    {
        # instances
        "instance_started",
        "instance_completed",
        "instance_error",
        "instance_terminated",
        "instance_suspended",
        "instance_resumed",
        "instance_retried",
        "instance_reset",
        "instance_migrated",
        "instance_copied",
        "children_started",
        "document_rendered",
        "message_delivered",
        "cc_warning",
        "timer_fired",
        "timer_failed",
        "timer_retried",
        # human tasks
        "task_created",
        "task_claimed",
        "task_unclaimed",
        "task_completed",
        "task_returned",
        "task_withdrawn",
        "task_transferred",
        "task_delegated",
        "task_delegation_resolved",
        "task_reassigned",
        "task_urged",
        "task_escalated",
        "task_signed",
        "task_returned_to_pool",
        "signers_added",
        "signers_done",
        "assignment_warning",
        "attachment_added",
        "attachment_removed",
        # processes
        "process_deployed",
        "draft_saved",
        "draft_discarded",
        "bulk_operation",
        "calendar_changed",
        # accounts and the directory
        "access_denied",
        "sign_in_failed",
        "signed_in",
        "signed_out",
        "signed_out_everywhere",
        "token_issued",
        "token_revoked",
        "tokens_revoked",
        "user_added",
        "user_changed",
        "user_activated",
        "user_deactivated",
        "users_imported",
        "unit_added",
        "unit_changed",
        "role_added",
        "role_changed",
    }
)


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
