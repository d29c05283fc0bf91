"""Tracked items: recording them from processes, their lights, and live figures for reports.

Lights are derived, never stored: red = past its deadline and not closed; yellow = due within
three working days, or a periodic progress report is missing; green otherwise. The same rule is
expressible in SQL (see `light_filter`), so ledgers can filter by light without loading rows.
"""

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, not_, or_, select
from sqlalchemy.orm import Session

from . import directory, lights
from .errors import EngineError
from .models import TrackedItem
from .workdays import BEIJING, WorkdayCalendar


def parse_deadline(value: Any) -> datetime | None:
    """A date means "by the end of that day" (Beijing); a date-time is taken as given."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=BEIJING)
    text = str(value)
    if len(text) <= 10:
        day = datetime.fromisoformat(text).date()
        return datetime.combine(day, time(23, 59, 59), BEIJING)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def record(
    session: Session, instance_id: int, kind: str, key: str, fields: dict[str, Any], now: datetime
) -> TrackedItem:
    item = session.scalars(
        select(TrackedItem).where(
            TrackedItem.instance_id == instance_id, TrackedItem.kind == kind, TrackedItem.key == key
        )
    ).first()
    if item is None:
        item = TrackedItem(
            instance_id=instance_id,
            kind=kind,
            key=key,
            created_at=now,
            updated_at=now,
            cooperating_unit_ids=[],
            attributes={},
            # column defaults apply only at flush; _apply reads these before that
            report_cycle_days=7,
            progress=0,
            extension_count=0,
            overdue_count=0,
        )
        session.add(item)
    _apply(session, item, fields, now)
    item.updated_at = now
    session.flush()
    return item


# ------------------------------------------------------------------ rewinding
# `record_item` answers with the row as it wrote it, under this key, and the answer lands in
# the task data. A 退回/撤回/reset rewinds the data, so the data then holds the row as it was at
# the step the instance went back to, and `restore` puts the ledger back to match.
SNAPSHOT_KEY = "ledger_row"
_RESTORED = (
    "title",
    "source",
    "status",
    "lead_unit_id",
    "cooperating_unit_ids",
    "report_cycle_days",
    "progress",
    "last_progress",
    "extension_count",
    "closure_note",
    "attributes",
)
_RESTORED_TIMES = (
    "deadline",
    "original_deadline",
    "next_report_due",
    "last_report_at",
    "closed_at",
)


def snapshot(item: TrackedItem) -> dict[str, Any]:
    """The row's rewindable columns, as JSON."""
    row: dict[str, Any] = {"id": item.id}
    row.update({name: getattr(item, name) for name in _RESTORED})
    for name in _RESTORED_TIMES:
        value = getattr(item, name)
        row[name] = value.isoformat() if value is not None else None
    return row


def restore(session: Session, instance_id: int, data: dict[str, Any]) -> int:
    """Put this instance's ledger rows back as `data` last recorded them; how many changed.
    Overdues are facts, not steps: a return never takes one back."""
    restored = 0
    for row in _snapshots(data):
        item = session.get(TrackedItem, row.get("id"))
        if item is None or item.instance_id != instance_id:
            continue
        for name in _RESTORED:
            if name in row:
                setattr(item, name, row[name])
        for name in _RESTORED_TIMES:
            if name in row:
                setattr(item, name, datetime.fromisoformat(row[name]) if row[name] else None)
        restored += 1
    return restored


def _snapshots(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ledger snapshot in the data: a handler's answer, or a list of them (a loop's)."""
    found = []
    for value in data.values():
        for candidate in value if isinstance(value, list) else [value]:
            if isinstance(candidate, dict) and isinstance(candidate.get(SNAPSHOT_KEY), dict):
                found.append(candidate[SNAPSHOT_KEY])
    return found


def _apply(session: Session, item: TrackedItem, fields: dict[str, Any], now: datetime) -> None:
    for name in ("title", "source", "status", "last_progress", "closure_note"):
        if fields.get(name) is not None:
            setattr(item, name, str(fields[name]))
    if fields.get("lead_unit"):
        item.lead_unit_id = _unit_id(session, fields["lead_unit"])
    if fields.get("cooperating_units") is not None:
        item.cooperating_unit_ids = [_unit_id(session, u) for u in fields["cooperating_units"]]
    if fields.get("deadline"):
        item.deadline = parse_deadline(fields["deadline"])
        item.original_deadline = item.original_deadline or item.deadline
    if fields.get("report_cycle_days"):
        item.report_cycle_days = int(fields["report_cycle_days"])
    if fields.get("progress") is not None:
        item.progress = max(0, min(100, int(fields["progress"])))
    if fields.get("meeting_instance_id"):
        item.meeting_instance_id = int(fields["meeting_instance_id"])
    if isinstance(fields.get("attributes"), dict):
        item.attributes = {**(item.attributes or {}), **fields["attributes"]}
    _apply_events(item, fields, now)


def _apply_events(item: TrackedItem, fields: dict[str, Any], now: datetime) -> None:
    if fields.get("reported") or (
        item.next_report_due is None and fields.get("status") and not item.closed_at
    ):
        if fields.get("reported"):
            item.last_report_at = now
        item.next_report_due = now + timedelta(days=item.report_cycle_days)
    if fields.get("extended_to"):
        item.deadline = parse_deadline(fields["extended_to"])
        item.extension_count += 1
    if fields.get("overdue"):
        item.overdue_count += 1
    if fields.get("closed"):
        item.closed_at, item.next_report_due = now, None


def _unit_id(session: Session, ref: Any) -> int:
    unit = directory.find_unit(session, ref)
    if unit is None:
        raise EngineError(f"单位“{ref}”不存在")
    return unit.id


# --------------------------------------------------------------------- lights
def light(item: TrackedItem, now: datetime, calendar: WorkdayCalendar) -> str:
    if item.closed_at is not None:
        return "green"
    colour = lights.light(item.deadline, now, calendar)
    if colour == "green" and item.next_report_due is not None and item.next_report_due < now:
        return "yellow"  # a periodic progress report is missing
    return colour


def light_filter(
    query: Select[*tuple[Any, ...]], wanted: str, now: datetime, calendar: WorkdayCalendar
) -> Select[*tuple[Any, ...]]:
    """Narrow a query over TrackedItem to one light, in SQL: the same rule as `light`.
    Every comparison is guarded against NULL, or NOT(NULL) would drop rows from green."""
    deadline, report_due = TrackedItem.deadline, TrackedItem.next_report_due
    open_ = TrackedItem.closed_at.is_(None)
    red = and_(open_, deadline.is_not(None), deadline < now)
    soon = and_(deadline.is_not(None), deadline < lights.yellow_threshold(now, calendar))
    missing = and_(report_due.is_not(None), report_due < now)
    yellow = and_(open_, not_(red), or_(soon, missing))
    conditions = {"red": red, "yellow": yellow, "green": not_(or_(red, yellow))}
    return query.where(conditions[wanted])


def summary(
    item: TrackedItem, units: dict[int, str], now: datetime, calendar: WorkdayCalendar
) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "key": item.key,
        "instance_id": item.instance_id,
        "title": item.title,
        "source": item.source,
        "status": item.status,
        "lead_unit": units.get(item.lead_unit_id or 0),
        "cooperating_units": [units.get(u) for u in item.cooperating_unit_ids or []],
        "deadline": item.deadline.isoformat() if item.deadline else None,
        "progress": item.progress,
        "last_progress": item.last_progress,
        "last_report_at": item.last_report_at.isoformat() if item.last_report_at else None,
        "extension_count": item.extension_count,
        "overdue_count": item.overdue_count,
        "closed_at": item.closed_at.isoformat() if item.closed_at else None,
        "light": light(item, now, calendar),
    }
