"""Figures for bulletins and evaluations, aggregated in SQL from the tracked-item ledger.

A period report answers, per lead unit, for one period (a month, a year) as of an instant:
how many items it leads, how many it closed in the period and how many of those on time, its red
and yellow items, missed progress reports, overdue counts, its open rectification tasks, and its
rank. Every figure is one grouped query over `tracked_item`; nothing loads a workflow.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.orm import Session

from engine import items, lights
from engine.models import TrackedItem, Unit
from engine.workdays import BEIJING, WorkdayCalendar

from .vocabulary import RECTIFICATION_KIND

UNASSIGNED = "未指定单位"
_PERIOD = re.compile(r"(?P<year>(19|20|21)\d\d)(-(?P<month>\d\d))?")


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    label: str

    def as_of(self, now: datetime) -> datetime:
        """Figures stand at the period's last instant once it is over, else now."""
        return min(now, self.end - timedelta(microseconds=1))

    @classmethod
    def month(cls, year: int, month: int) -> "Period":
        following = date(year + month // 12, month % 12 + 1, 1)
        return cls(_midnight(date(year, month, 1)), _midnight(following), f"{year}年{month}月")

    @classmethod
    def year(cls, year: int) -> "Period":
        return cls(_midnight(date(year, 1, 1)), _midnight(date(year + 1, 1, 1)), f"{year}年度")

    @classmethod
    def parse(cls, text: str) -> "Period":
        """`2026-11` → that month; `2026` → that year."""
        match = _PERIOD.fullmatch(str(text))
        if match is None or not 1 <= int(match["month"] or 1) <= 12:
            raise ValueError(f"期间“{text}”应写作 YYYY-MM 或 YYYY")
        if match["month"] is None:
            return cls.year(int(match["year"]))
        return cls.month(int(match["year"]), int(match["month"]))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), BEIJING)


def _rate(done: int, total: int) -> float | None:
    return round(done / total, 4) if total else None


def unit_figures(
    session: Session,
    kind: str,
    period: Period,
    now: datetime,
    calendar: WorkdayCalendar,
    *,
    rectification_kind: str = RECTIFICATION_KIND,
) -> list[dict[str, Any]]:
    """Per lead unit, ranked, as of the period's end (or now while it runs)."""
    as_of = period.as_of(now)
    item = TrackedItem
    open_at = or_(item.closed_at.is_(None), item.closed_at > as_of)
    in_scope = and_(
        item.kind == kind,
        item.created_at < period.end,
        or_(item.closed_at.is_(None), item.closed_at >= period.start),
    )
    closed_in = and_(item.closed_at >= period.start, item.closed_at < period.end)
    on_time = and_(closed_in, or_(item.deadline.is_(None), item.closed_at <= item.deadline))
    red = and_(open_at, item.deadline < as_of)
    yellow = and_(
        open_at,
        not_(red),
        or_(
            item.deadline < lights.yellow_threshold(as_of, calendar),
            item.next_report_due < as_of,
        ),
    )
    missed = and_(open_at, item.next_report_due < as_of)

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    rows = session.execute(
        select(
            item.lead_unit_id,
            func.count().label("total"),
            count(closed_in).label("closed"),
            count(on_time).label("closed_on_time"),
            count(red).label("red"),
            count(yellow).label("yellow"),
            count(missed).label("missed_reports"),
            func.coalesce(func.sum(item.overdue_count), 0).label("overdue"),
            func.coalesce(func.sum(item.extension_count), 0).label("extensions"),
        )
        .where(in_scope)
        .group_by(item.lead_unit_id)
    ).all()
    rectifications = _rectifications(session, rectification_kind, period, as_of)
    units = {u.id: u for u in session.scalars(select(Unit))}
    figures = []
    for row in rows:
        unit = units.get(row.lead_unit_id or 0)
        rect = rectifications.get(row.lead_unit_id, {})
        figures.append(
            {
                "unit": unit.name if unit else UNASSIGNED,
                "code": unit.code if unit else None,
                "total": int(row.total),
                "closed": int(row.closed),
                "closed_on_time": int(row.closed_on_time),
                "on_time_rate": _rate(int(row.closed_on_time), int(row.closed)),
                "red": int(row.red),
                "yellow": int(row.yellow),
                "missed_reports": int(row.missed_reports),
                "overdue": int(row.overdue),
                "extensions": int(row.extensions),
                "open_rectifications": rect.get("open", 0),
                "rectifications_closed": rect.get("closed", 0),
                "rectifications_on_time": rect.get("on_time", 0),
            }
        )
    return rank(figures)


def _rectifications(
    session: Session, kind: str, period: Period, as_of: datetime
) -> dict[int | None, dict[str, int]]:
    item = TrackedItem
    closed_in = and_(item.closed_at >= period.start, item.closed_at < period.end)
    on_time = and_(closed_in, or_(item.deadline.is_(None), item.closed_at <= item.deadline))
    open_at = and_(item.created_at < as_of, or_(item.closed_at.is_(None), item.closed_at > as_of))
    rows = session.execute(
        select(
            item.lead_unit_id,
            func.coalesce(func.sum(case((open_at, 1), else_=0)), 0),
            func.coalesce(func.sum(case((closed_in, 1), else_=0)), 0),
            func.coalesce(func.sum(case((on_time, 1), else_=0)), 0),
        )
        .where(item.kind == kind)
        .group_by(item.lead_unit_id)
    ).all()
    return {
        unit_id: {"open": int(o), "closed": int(c), "on_time": int(t)} for unit_id, o, c, t in rows
    }


def rank(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first: on-time rate (units without a closed item after those with one), then fewer
    red items, fewer missed reports, fewer overdue counts. Equal keys share a rank."""

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        rate = row["on_time_rate"]
        return (rate is None, -(rate or 0), row["red"], row["missed_reports"], row["overdue"])

    ordered = sorted(figures, key=lambda r: (key(r), r["unit"]))
    previous, position = None, 0
    for index, row in enumerate(ordered, start=1):
        if key(row) != previous:
            position, previous = index, key(row)
        row["rank"] = position
    return ordered


def period_report(
    session: Session,
    kind: str,
    period: Period,
    now: datetime,
    calendar: WorkdayCalendar,
    *,
    rectification_kind: str = RECTIFICATION_KIND,
) -> dict[str, Any]:
    """The whole bulletin: totals, per unit (ranked), and the red and yellow item lists."""
    as_of = period.as_of(now)
    by_unit = unit_figures(
        session, kind, period, now, calendar, rectification_kind=rectification_kind
    )
    closed = sum(r["closed"] for r in by_unit)
    on_time = sum(r["closed_on_time"] for r in by_unit)
    return {
        "kind": kind,
        "period": period.label,
        "period_start": period.start.date().isoformat(),
        "as_of": as_of.astimezone(BEIJING).isoformat(timespec="minutes"),
        "total": sum(r["total"] for r in by_unit),
        "closed": closed,
        "closed_on_time": on_time,
        "on_time_rate": _rate(on_time, closed),
        "missed_reports": sum(r["missed_reports"] for r in by_unit),
        "overdue": sum(r["overdue"] for r in by_unit),
        "open_rectifications": _open_count(session, rectification_kind, as_of),
        "by_unit": by_unit,
        "red_items": (red := _titles(session, kind, period, as_of, calendar, "red")),
        "yellow_items": (yellow := _titles(session, kind, period, as_of, calendar, "yellow")),
        "red": [row["title"] for row in red],  # plain titles, for scripts that join them
        "yellow": [row["title"] for row in yellow],
    }


def _open_count(session: Session, kind: str, as_of: datetime) -> int:
    item = TrackedItem
    return int(
        session.scalar(
            select(func.count())
            .select_from(item)
            .where(
                item.kind == kind,
                item.created_at < as_of,
                or_(item.closed_at.is_(None), item.closed_at > as_of),
            )
        )
        or 0
    )


def _titles(
    session: Session,
    kind: str,
    period: Period,
    as_of: datetime,
    calendar: WorkdayCalendar,
    colour: str,
) -> list[dict[str, Any]]:
    item = TrackedItem
    open_at = or_(item.closed_at.is_(None), item.closed_at > as_of)
    red = and_(open_at, item.deadline < as_of)
    condition = red
    if colour == "yellow":
        soon = item.deadline < lights.yellow_threshold(as_of, calendar)
        condition = and_(open_at, not_(red), or_(soon, item.next_report_due < as_of))
    rows = session.execute(
        select(item.id, item.title, item.deadline, Unit.name)
        .outerjoin(Unit, Unit.id == item.lead_unit_id)
        .where(item.kind == kind, item.created_at < period.end, condition)
        .order_by(item.deadline, item.id)
    ).all()
    return [
        {
            "id": row.id,
            "title": row.title,
            "unit": row.name or UNASSIGNED,
            "deadline": row.deadline.astimezone(BEIJING).date().isoformat() if row.deadline else "",
        }
        for row in rows
    ]


# ------------------------------------------------------------------- live figures
def item_report(
    session: Session, kind: str, now: datetime, calendar: WorkdayCalendar
) -> dict[str, Any]:
    """Live figures for a bulletin (周调度): per lead unit, and the red / yellow lists."""
    units = dict(session.execute(select(Unit.id, Unit.name)).all())
    rows = list(session.scalars(select(TrackedItem).where(TrackedItem.kind == kind)))
    by_unit: dict[str, dict[str, Any]] = {}
    for item in rows:
        row = by_unit.setdefault(
            units.get(item.lead_unit_id or 0, "未指定"),
            {
                "total": 0,
                "closed": 0,
                "closed_on_time": 0,
                "red": 0,
                "yellow": 0,
                "missed_reports": 0,
            },
        )
        colour = items.light(item, now, calendar)
        row["total"] += 1
        if colour != "green":
            row[colour] += 1
        if item.closed_at is not None:
            row["closed"] += 1
            row["closed_on_time"] += int(_closed_on_time(item))
        elif item.next_report_due is not None and item.next_report_due < now:
            row["missed_reports"] += 1
    for row in by_unit.values():
        row["on_time_rate"] = (
            round(row["closed_on_time"] / row["closed"], 4) if row["closed"] else None
        )
    listed = [items.summary(i, units, now, calendar) for i in rows]
    closed = [i for i in rows if i.closed_at is not None]
    on_time = sum(1 for i in closed if _closed_on_time(i))
    open_rectifications = (
        session.scalar(
            select(func.count())
            .select_from(TrackedItem)
            .where(TrackedItem.kind == RECTIFICATION_KIND, TrackedItem.closed_at.is_(None))
        )
        or 0
    )
    return {
        "kind": kind,
        "as_of": now.astimezone(BEIJING).isoformat(timespec="minutes"),
        "total": len(rows),
        "closed": len(closed),
        "on_time_rate": round(on_time / len(closed), 4) if closed else None,
        "by_unit": [{"unit": name, **row} for name, row in sorted(by_unit.items())],
        "red": [i["title"] for i in listed if i["light"] == "red"],
        "yellow": [i["title"] for i in listed if i["light"] == "yellow"],
        "missed_reports": sum(r["missed_reports"] for r in by_unit.values()),
        "open_rectifications": open_rectifications,
    }


def _closed_on_time(item: TrackedItem) -> bool:
    return item.closed_at is not None and (item.deadline is None or item.closed_at <= item.deadline)
