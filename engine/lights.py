"""Status lights (红黄绿灯): red overdue, yellow due within N working days, green otherwise."""

from datetime import datetime

from .workdays import BEIJING, WorkdayCalendar

YELLOW_WITHIN_WORKDAYS = 3


def light(
    due_at: datetime | None,
    now: datetime,
    calendar: WorkdayCalendar,
    yellow_within: int = YELLOW_WITHIN_WORKDAYS,
) -> str:
    if due_at is None:
        return "green"
    if due_at < now:
        return "red"
    today, due_day = now.astimezone(BEIJING).date(), due_at.astimezone(BEIJING).date()
    if (
        due_day - today
    ).days > yellow_within * 3 + 10:  # cheap exit: surely further than N workdays
        return "green"
    return "yellow" if calendar.workdays_between(today, due_day) <= yellow_within else "green"
