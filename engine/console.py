"""The operations console's read side: instances in error, open tasks, timers, the audit trail,
health and the figures /metrics exports. Plain SQL; nothing here deserializes a workflow."""

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from .errors import InvalidData
from .models import (
    Event,
    HumanTask,
    HumanTaskCandidate,
    ProcessInstance,
    ProcessVersion,
    Timer,
    Unit,
    User,
    WorkerHeartbeat,
)
from .status import OPEN_STATES, InstanceStatus
from .workdays import BEIJING

MAX_PER_PAGE = 200
MAX_PAGE = 100_000
MAX_ID = 2**31 - 1  # integer primary keys are 32-bit on PostgreSQL
LATE_SCAN = 2000  # how many recent firings the "fired late" list looks through
WORKER_GRACE = timedelta(seconds=60)  # a worker is alive while its beat is this fresh (at least)


# ------------------------------------------------------------------ filters
def parse_time(value: Any, field: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO date or date-time (Beijing time when it carries no offset); None when empty.
    A bare date as an upper bound means the end of that day."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=BEIJING)
    if isinstance(value, date):
        value = value.isoformat()
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(), tzinfo=BEIJING)
            return start + timedelta(days=1) if end_of_day else start
        parsed = datetime.fromisoformat(text)
    except ValueError:
        message = f"时间格式不正确：{text}（例如 2026-12-01 或 2026-12-01T09:00）"
        raise InvalidData(message, {field: message}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def parse_int(
    value: Any, field: str, default: int | None = None, *, maximum: int = MAX_ID
) -> int | None:
    """A whole number from 1 to `maximum` (ids are 32-bit in the database)."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidData("请填写整数", {field: "请填写整数"}) from None
    if not 1 <= number <= maximum:
        message = f"请填写 1 到 {maximum} 之间的整数"
        raise InvalidData(message, {field: message})
    return number


def is_id(value: Any) -> bool:
    """Whether `value` can be a row id at all (anything else matches nothing)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def as_id(value: Any) -> int | None:
    """`value` (an int or a string of ASCII digits) as a row id; None if it cannot be one."""
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
    return value if is_id(value) else None


def page_of(
    session: Session, query: Select[*tuple[Any, ...]], page: Any, per_page: Any
) -> tuple[list[Any], dict[str, int]]:
    """Run one page of `query`; the dict says which page and how many rows in all."""
    number = parse_int(page, "page", 1, maximum=MAX_PAGE) or 1
    size = min(parse_int(per_page, "per_page", 50) or 50, MAX_PER_PAGE)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.execute(query.limit(size).offset((number - 1) * size)))
    return rows, {"page": number, "per_page": size, "total": total or 0}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -------------------------------------------------------- instances in error
CONSOLE_STATUSES = (InstanceStatus.ERROR, InstanceStatus.SUSPENDED, InstanceStatus.RUNNING)


def error_instances(
    session: Session,
    *,
    status: str = InstanceStatus.ERROR,
    process: str | None = None,
    since: Any = None,
    until: Any = None,
    page: Any = 1,
    per_page: Any = 50,
) -> dict[str, Any]:
    """Instances in error (or, with `status`, suspended or running ones, to resume or
    terminate them), most recently changed first: message, failed step, when."""
    if status not in CONSOLE_STATUSES:
        message = f"状态只能是 {'、'.join(CONSOLE_STATUSES)}"
        raise InvalidData(message, {"status": message})
    last_error = (
        select(Event.instance_id, func.max(Event.id).label("event_id"))
        .where(Event.kind == "instance_error")
        .group_by(Event.instance_id)
        .subquery()
    )
    failure = aliased(Event)
    starter = aliased(User)
    query = (
        select(ProcessInstance, ProcessVersion.version, ProcessVersion.name, failure, starter)
        .join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)
        .outerjoin(last_error, last_error.c.instance_id == ProcessInstance.id)
        .outerjoin(failure, failure.id == last_error.c.event_id)
        .outerjoin(starter, starter.id == ProcessInstance.started_by_id)
        .where(ProcessInstance.status == status)
        .order_by(ProcessInstance.updated_at.desc(), ProcessInstance.id.desc())
    )
    if process:
        query = query.where(ProcessInstance.process_key == process)
    if (start := parse_time(since, "since")) is not None:
        query = query.where(ProcessInstance.updated_at >= start)
    if (end := parse_time(until, "until", end_of_day=True)) is not None:
        query = query.where(ProcessInstance.updated_at < end)
    rows, paging = page_of(session, query, page, per_page)
    items = [
        {
            "id": instance.id,
            "process": instance.process_key,
            "process_name": name,
            "version": version,
            "title": instance.title,
            "status": instance.status,
            "error": instance.error_message,
            "failed_step": event.task_title
            if event and instance.status == InstanceStatus.ERROR
            else None,
            "failed_task_id": instance.error_task,
            "failed_at": _iso(
                event.at if event and status == InstanceStatus.ERROR else instance.updated_at
            ),
            "started_by": who.username if who else None,
        }
        for instance, version, name, event, who in rows
    ]
    return {"items": items, **paging}


# ------------------------------------------------------------------ open tasks
def open_tasks(
    session: Session,
    *,
    process: str | None = None,
    assignee: str | None = None,
    instance_id: Any = None,
    unclaimable: bool = False,
    page: Any = 1,
    per_page: Any = 50,
) -> dict[str, Any]:
    """Open tasks across the system (for 改派). `unclaimable`: nobody may act on them."""
    owner = aliased(User)
    query = (
        select(HumanTask, owner.username, Unit.name)
        .outerjoin(owner, owner.id == HumanTask.assignee_id)
        .outerjoin(Unit, Unit.id == HumanTask.unit_id)
        .where(HumanTask.state.in_(OPEN_STATES))
        .order_by(HumanTask.created_at, HumanTask.id)
    )
    if process:
        query = query.where(HumanTask.process_key == process)
    if assignee:
        query = query.where(owner.username == assignee)
    if (number := parse_int(instance_id, "instance_id")) is not None:
        query = query.where(HumanTask.instance_id == number)
    if unclaimable:
        candidate = exists().where(HumanTaskCandidate.task_id == HumanTask.id)
        query = query.where(HumanTask.assignee_id.is_(None), ~candidate)
    rows, paging = page_of(session, query, page, per_page)
    items = [
        {
            "id": task.id,
            "instance_id": task.instance_id,
            "process": task.process_key,
            "name": task.name,
            "title": task.title,
            "state": task.state,
            "role": task.role,
            "unit": unit,
            "assignee": username,
            "due_at": _iso(task.due_at),
            "created_at": _iso(task.created_at),
        }
        for task, username, unit in rows
    ]
    return {"items": items, **paging}


# ---------------------------------------------------------------------- timers
def timers_overview(
    session: Session, now: datetime, *, late_after: float = 60.0, limit: int = 50
) -> dict[str, Any]:
    """What is due next (and already overdue: the queue), what fired late and by how much,
    and which firings failed."""
    waiting = session.execute(
        select(Timer, ProcessInstance.title)
        .outerjoin(ProcessInstance, ProcessInstance.id == Timer.instance_id)
        .where(Timer.state == "waiting")
        .order_by(Timer.due_at, Timer.id)
        .limit(limit)
    ).all()
    failed = session.execute(
        select(Timer, ProcessInstance.title)
        .outerjoin(ProcessInstance, ProcessInstance.id == Timer.instance_id)
        .where(Timer.state == "failed")
        .order_by(Timer.due_at.desc(), Timer.id.desc())
        .limit(limit)
    ).all()
    return {
        "now": now.isoformat(),
        "queue_depth": queue_depth(session, now),
        "due_next": [_timer(row, title, now) for row, title in waiting],
        "late": late_firings(session, late_after, limit),
        "failed": [_timer(row, title, now) for row, title in failed],
    }


def _timer(row: Timer, title: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "process": row.process_key,
        "element": row.element,
        "instance_id": row.instance_id,
        "instance_title": title,
        "due_at": _iso(row.due_at),
        "overdue_seconds": max((now - row.due_at).total_seconds(), 0.0),
        "state": row.state,
        "fire_count": row.fire_count,
        "fired_at": _iso(row.fired_at),
        "error": row.last_error,
    }


def late_firings(session: Session, late_after: float, limit: int) -> list[dict[str, Any]]:
    """Recent firings that came more than `late_after` seconds after their due time (each
    `timer_fired` event records `late_seconds`)."""
    events = session.execute(
        select(Event, ProcessInstance.process_key)
        .outerjoin(ProcessInstance, ProcessInstance.id == Event.instance_id)
        .where(Event.kind == "timer_fired")
        .order_by(Event.id.desc())
        .limit(LATE_SCAN)
    ).all()
    late = []
    for event, process in events:
        seconds = float((event.detail or {}).get("late_seconds") or 0)
        if seconds > late_after:
            late.append(
                {
                    "event_id": event.id,
                    "instance_id": event.instance_id,
                    "process": process,
                    "step": event.task_title,
                    "due_at": (event.detail or {}).get("due_at"),
                    "fired_at": _iso(event.at),
                    "late_seconds": seconds,
                    "late": describe_seconds(seconds),
                }
            )
            if len(late) >= limit:
                break
    return late


def describe_seconds(seconds: float) -> str:
    """5400 → "1 小时 30 分"; for people."""
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} 天" if days else "", f"{hours} 小时" if hours else ""]
    parts.append(f"{minutes} 分" if minutes or not (days or hours) else "")
    text = " ".join(part for part in parts if part)
    return text if seconds >= 60 else f"{int(seconds)} 秒"


def queue_depth(session: Session, now: datetime) -> int:
    """Timers due and not yet fired (what the workers still have to do)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Timer)
            .outerjoin(ProcessInstance, ProcessInstance.id == Timer.instance_id)
            .where(
                Timer.state == "waiting",
                Timer.due_at <= now,
                or_(Timer.instance_id.is_(None), ProcessInstance.status == InstanceStatus.RUNNING),
            )
        )
        or 0
    )


# ---------------------------------------------------------------------- audit
def audit_search(
    session: Session,
    *,
    username: str | None = None,
    unit: str | None = None,
    process: str | None = None,
    instance_id: Any = None,
    kind: str | list[str] | None = None,
    since: Any = None,
    until: Any = None,
    page: Any = 1,
    per_page: Any = 50,
) -> dict[str, Any]:
    """The audit trail across the system, newest first. `unit`: events by people of that unit
    (id, code or name); `process`: events of that process's instances."""
    actor = aliased(User)
    actor_unit = aliased(Unit)
    query = (
        select(Event, actor.username, actor.display_name, actor_unit.name, ProcessInstance)
        .outerjoin(actor, actor.id == Event.actor_id)
        .outerjoin(actor_unit, actor_unit.id == actor.unit_id)
        .outerjoin(ProcessInstance, ProcessInstance.id == Event.instance_id)
        .order_by(Event.id.desc())
    )
    if username:
        query = query.where(actor.username == username)
    if unit:
        conditions = [actor_unit.code == str(unit), actor_unit.name == str(unit)]
        if (unit_id := as_id(str(unit))) is not None:
            conditions.append(actor_unit.id == unit_id)
        query = query.where(or_(*conditions))
    if process:
        query = query.where(ProcessInstance.process_key == process)
    if (number := parse_int(instance_id, "instance_id")) is not None:
        query = query.where(Event.instance_id == number)
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    kinds = [k for k in kinds if k]
    if kinds:
        query = query.where(Event.kind.in_(kinds))
    if (start := parse_time(since, "since")) is not None:
        query = query.where(Event.at >= start)
    if (end := parse_time(until, "until", end_of_day=True)) is not None:
        query = query.where(Event.at < end)
    rows, paging = page_of(session, query, page, per_page)
    items = [
        {
            "id": event.id,
            "at": _iso(event.at),
            "kind": event.kind,
            "actor": who,
            "actor_name": who_name,
            "unit": unit_name,
            "instance_id": event.instance_id,
            "process": instance.process_key if instance else None,
            "task_id": event.task_id,
            "task_title": event.task_title,
            "reason": event.reason,
            "data_change": event.data_change,
            "detail": event.detail,
        }
        for event, who, who_name, unit_name, instance in rows
    ]
    return {"items": items, **paging}


def event_kinds(session: Session) -> list[str]:
    return sorted(session.scalars(select(Event.kind).distinct()))


# --------------------------------------------------------------------- health
def workers(session: Session, now: datetime) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen_at.desc()).limit(100)
    )
    return [
        {
            "name": row.name,
            "hostname": row.hostname,
            "pid": row.pid,
            "started_at": _iso(row.started_at),
            "last_seen_at": _iso(row.last_seen_at),
            "seconds_since": max((now - row.last_seen_at).total_seconds(), 0.0),
            "alive": is_alive(row, now),
            "stopped": row.stopped_at is not None,
            "loops": row.loops,
            "fired_total": row.fired_total,
            "last_error": row.last_error,
        }
        for row in rows
    ]


def is_alive(row: WorkerHeartbeat, now: datetime) -> bool:
    grace = max(WORKER_GRACE, timedelta(seconds=3 * row.interval_seconds))
    return row.stopped_at is None and now - row.last_seen_at <= grace


def counts(session: Session, now: datetime) -> dict[str, Any]:
    """The figures of the health page and /metrics, each one small query."""
    by_status = dict(
        session.execute(
            select(ProcessInstance.status, func.count()).group_by(ProcessInstance.status)
        ).all()
    )
    open_task = HumanTask.state.in_(OPEN_STATES)
    timers = dict(session.execute(select(Timer.state, func.count()).group_by(Timer.state)).all())
    return {
        "instances": {status: int(n) for status, n in by_status.items()},
        "open_tasks": session.scalar(select(func.count()).where(open_task)) or 0,
        "overdue_tasks": session.scalar(
            select(func.count()).where(open_task, HumanTask.due_at < now)
        )
        or 0,
        "timers": {state: int(n) for state, n in timers.items()},
        "queue_depth": queue_depth(session, now),
        "active_users": session.scalar(select(func.count()).where(User.active.is_(True))) or 0,
    }
