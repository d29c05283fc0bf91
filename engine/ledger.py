"""The ledger (台账): tracked items filtered by kind, unit, source, status and light, from SQL."""

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import items
from .errors import InvalidData
from .models import TrackedItem, Unit
from .workdays import BEIJING, WorkdayCalendar


def ledger(
    session: Session,
    now: datetime,
    calendar: WorkdayCalendar,
    *,
    kind: str | None = None,
    unit: str | None = None,
    unit_ids: set[int] | None = None,
    source: str | None = None,
    status: str | None = None,
    light: str | None = None,
    closed: bool | None = None,
    period: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> dict[str, Any]:
    """`unit` filters by lead unit (code or name); `unit_ids`, when given, limits the ledger
    to what those units may see; `period` (`2027`, `2027-03`) to items due within it."""
    query = select(TrackedItem)
    if kind:
        query = query.where(TrackedItem.kind == kind)
    if unit:
        row = session.scalars(select(Unit).where(or_(Unit.code == unit, Unit.name == unit))).first()
        query = query.where(TrackedItem.lead_unit_id == (row.id if row else -1))
    if unit_ids is not None:
        query = query.where(TrackedItem.lead_unit_id.in_(unit_ids))
    if source:
        query = query.where(TrackedItem.source == source)
    if status:
        query = query.where(TrackedItem.status == status)
    if closed is not None:
        query = query.where(
            TrackedItem.closed_at.is_not(None) if closed else TrackedItem.closed_at.is_(None)
        )
    if period:
        start, end = period_bounds(period)
        query = query.where(TrackedItem.deadline >= start, TrackedItem.deadline < end)
    if light in ("red", "yellow", "green"):
        query = items.light_filter(query, light, now, calendar)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page, per_page = max(page, 1), min(max(per_page, 1), 500)
    rows = session.scalars(
        query.order_by(TrackedItem.deadline.is_(None), TrackedItem.deadline, TrackedItem.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    units = dict(session.execute(select(Unit.id, Unit.name)).all())
    return {
        "items": [items.summary(row, units, now, calendar) for row in rows],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """A year (`2027`) or a month (`2027-03`), as Beijing-time [start, end)."""
    try:
        if len(period) == 4:
            year = int(period)
            start, end = date(year, 1, 1), date(year + 1, 1, 1)
        else:
            year, month = (int(part) for part in period.split("-"))
            start = date(year, month, 1)
            end = date(year + month // 12, month % 12 + 1, 1)
    except ValueError as exc:
        raise InvalidData(
            "时段格式应为 2027 或 2027-03", {"period": "格式应为 YYYY 或 YYYY-MM"}
        ) from exc
    return (
        datetime.combine(start, time(), BEIJING),
        datetime.combine(end, time(), BEIJING),
    )
