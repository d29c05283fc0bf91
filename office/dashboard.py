"""The leaders' dashboard (领导驾驶舱): figures over tracked items and open tasks, in plain SQL.

Nothing here loads a workflow. Which roles count as leaders and which item kind is a
rectification are the caller's (domain) choice, passed in."""

from datetime import datetime, time
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from engine import items
from engine.lights import light
from engine.models import HumanTask, ProcessInstance, TrackedItem, Unit, User
from engine.workdays import BEIJING, WorkdayCalendar


def overview(
    session: Session,
    now: datetime,
    calendar: WorkdayCalendar,
    *,
    leader_roles: tuple[str, ...] = (),
    rectification_kind: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    units = dict(session.execute(select(Unit.id, Unit.name)).all())
    by_unit = lights_by_unit(session, now, calendar, units)
    return {
        "as_of": now.astimezone(BEIJING).isoformat(timespec="minutes"),
        "lights_by_unit": by_unit,
        "overdue": _listed(
            session,
            _open_items().order_by(TrackedItem.deadline),
            now,
            calendar,
            units,
            limit,
            "red",
            total=sum(row["red"] for row in by_unit),
        ),
        "month": month_on_time(session, now),
        "open_rectifications": _listed(
            session,
            _open_items()
            .where(TrackedItem.kind == (rectification_kind or ""))
            .order_by(TrackedItem.deadline.is_(None), TrackedItem.deadline),
            now,
            calendar,
            units,
            limit,
        ),
        "waiting_on_leaders": waiting_on(session, leader_roles, now, calendar, limit),
    }


def _open_items() -> Any:
    return select(TrackedItem).where(TrackedItem.closed_at.is_(None))


def lights_by_unit(
    session: Session, now: datetime, calendar: WorkdayCalendar, units: dict[int, str]
) -> list[dict[str, Any]]:
    """Open items per lead unit and light, worst units first. Green is what is neither red
    nor yellow, counted by subtraction (NULL-safe: items without a deadline or report cycle)."""
    open_items = select(TrackedItem.lead_unit_id, func.count()).where(
        TrackedItem.closed_at.is_(None)
    )
    counts: dict[int | None, dict[str, int]] = {}
    for unit_id, total in session.execute(open_items.group_by(TrackedItem.lead_unit_id)):
        counts[unit_id] = {"red": 0, "yellow": 0, "green": total}
    for colour in ("red", "yellow"):
        query = items.light_filter(open_items, colour, now, calendar)
        for unit_id, count in session.execute(query.group_by(TrackedItem.lead_unit_id)):
            counts[unit_id][colour] = count
            counts[unit_id]["green"] -= count
    rows = [
        {"unit": units.get(unit_id or 0, "未指定"), **row, "total": sum(row.values())}
        for unit_id, row in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["red"], -r["yellow"], -r["total"], r["unit"]))


def month_on_time(session: Session, now: datetime) -> dict[str, Any]:
    """Items closed this month (Beijing), and how many of them by their deadline."""
    local = now.astimezone(BEIJING)
    start = datetime.combine(local.date().replace(day=1), time(), BEIJING)
    closed_this_month = and_(TrackedItem.closed_at.is_not(None), TrackedItem.closed_at >= start)
    on_time = or_(TrackedItem.deadline.is_(None), TrackedItem.closed_at <= TrackedItem.deadline)
    closed, punctual = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((on_time, 1), else_=0)), 0),
        ).where(closed_this_month)
    ).one()
    return {
        "month": local.strftime("%Y-%m"),
        "closed": closed or 0,
        "on_time": int(punctual or 0),
        "rate": round(punctual / closed, 4) if closed else None,
    }


def waiting_on(
    session: Session,
    roles: tuple[str, ...],
    now: datetime,
    calendar: WorkdayCalendar,
    limit: int,
) -> list[dict[str, Any]]:
    """Open steps held by the given roles, oldest first: where leaders are the bottleneck."""
    if not roles:
        return []
    assignee = aliased(User)
    rows = session.execute(
        select(
            HumanTask.id,
            HumanTask.instance_id,
            HumanTask.title,
            HumanTask.role,
            HumanTask.created_at,
            HumanTask.due_at,
            ProcessInstance.title.label("instance_title"),
            assignee.display_name,
        )
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .outerjoin(assignee, assignee.id == HumanTask.assignee_id)
        .where(HumanTask.state == "open", HumanTask.role.in_(roles))
        .order_by(HumanTask.created_at, HumanTask.id)
        .limit(limit)
    ).all()
    return [
        {
            "task_id": r.id,
            "instance_id": r.instance_id,
            "title": r.title,
            "instance_title": r.instance_title,
            "role": r.role,
            "assignee": r.display_name,
            "created_at": r.created_at.isoformat(),
            "due_at": r.due_at.isoformat() if r.due_at else None,
            "light": light(r.due_at, now, calendar),
        }
        for r in rows
    ]


def _listed(
    session: Session,
    query: Any,
    now: datetime,
    calendar: WorkdayCalendar,
    units: dict[int, str],
    limit: int,
    colour: str | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """The first `limit` rows and how many there are (`total` when the caller knows it)."""
    if colour:
        query = items.light_filter(query, colour, now, calendar)
    if total is None:
        count = select(func.count()).select_from(query.order_by(None).subquery())
        total = session.scalar(count) or 0
    rows = session.scalars(query.limit(limit))
    return {"total": total, "items": [items.summary(r, units, now, calendar) for r in rows]}
