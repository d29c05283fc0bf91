"""Status lights (红黄绿灯): red overdue, yellow due within N working days, green otherwise.

One rule for tasks and tracked items alike; `yellow_threshold` makes it expressible in SQL.
"""

from datetime import date, datetime, time, timedelta
from functools import lru_cache

from .workdays import BEIJING, WorkdayCalendar

YELLOW_WITHIN_WORKDAYS = 3


def light(due_at: datetime | None, now: datetime, calendar: WorkdayCalendar) -> str:
    if due_at is None:
        return "green"
    if due_at < now:
        return "red"
    return "yellow" if due_at < yellow_threshold(now, calendar) else "green"


def yellow_threshold(now: datetime, calendar: WorkdayCalendar) -> datetime:
    """The start (Beijing) of the (N+1)-th working day after today: whatever is due before it is
    due within N working days (Beijing dates; a due date on a day off counts with the working
    day before it)."""
    return _threshold(now.astimezone(BEIJING).date(), calendar, YELLOW_WITHIN_WORKDAYS)


@lru_cache(maxsize=64)  # one per day and calendar: the inbox asks once per row
def _threshold(today: date, calendar: WorkdayCalendar, within: int) -> datetime:
    day, counted = today, 0
    while counted <= within:
        day += timedelta(days=1)
        counted += calendar.is_workday(day)
    return datetime.combine(day, time(), BEIJING)
