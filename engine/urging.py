"""催办: the one urging mechanism, for people (the 催办 operation) and for timers (the `urge`
service-task handler): counted on the task, logged, and notified. A person urges one task at
most once per `INTERVAL` (`check_interval`); timers' reminders follow their own schedule."""

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import audit, notifications
from .errors import TooFrequent
from .models import Event, HumanTask, HumanTaskCandidate
from .status import TaskRowState

INTERVAL = timedelta(minutes=10)


def check_interval(session: Session, at: datetime, row: HumanTask, actor_id: int) -> None:
    """TooFrequent (429) if this person urged this task less than `INTERVAL` ago."""
    last = session.scalar(
        select(Event.at)
        .where(
            Event.at > at - INTERVAL,
            Event.kind == "task_urged",
            Event.task_id == row.id,
            Event.actor_id == actor_id,
        )
        .order_by(Event.at.desc())
        .limit(1)
    )
    if last is None:
        return
    wait = math.ceil((last + INTERVAL - at).total_seconds())
    minutes = max(1, math.ceil(wait / 60))
    raise TooFrequent(f"请勿频繁催办，{minutes} 分钟后可再次催办", retry_after=max(1, wait))


def urge_task(
    session: Session,
    at: datetime,
    row: HumanTask,
    *,
    message: str | None = None,
    actor_id: int | None = None,
    kind: str = "reminder",
    title: str | None = None,
    also: Iterable[int] = (),
) -> int:
    """The one 催办 mechanism, for people and for timers' automatic reminders: counts it on the
    task, logs it and notifies whoever can act (the assignee, else every candidate) and `also`.
    A task waiting for 加签 signers urges the signers. Returns how many were notified."""
    targets = _signers(session, row) if row.state == TaskRowState.WAITING else [row]
    session.execute(  # counted in SQL: two urges at once both count
        update(HumanTask)
        .where(HumanTask.id.in_({row.id, *(t.id for t in targets)}))
        .values(urge_count=HumanTask.urge_count + 1, last_urged_at=at)
    )
    people = set(also).union(*(_who_acts(session, target) for target in targets))
    audit.record(
        session,
        "task_escalated" if kind == "escalation" else "task_urged",
        at,
        instance_id=row.instance_id,
        task_id=row.id,
        task_title=row.title,
        actor_id=actor_id,
        reason=message,
        detail={"automatic": actor_id is None, "notified": len(people)},
    )
    return notifications.notify(
        session,
        people,
        kind,
        title or f"催办：{row.title}",
        at,
        body=message,
        instance_id=row.instance_id,
        task_id=row.id,
    )


def _signers(session: Session, row: HumanTask) -> list[HumanTask]:
    query = select(HumanTask).where(
        HumanTask.parent_task_id == row.id, HumanTask.state == TaskRowState.OPEN
    )
    return list(session.scalars(query))


def _who_acts(session: Session, row: HumanTask) -> set[int]:
    if row.assignee_id:
        return {row.assignee_id}
    return set(
        session.scalars(
            select(HumanTaskCandidate.user_id).where(HumanTaskCandidate.task_id == row.id)
        )
    )
