"""Functions process definitions may call in scripts, conditions and timer expressions.

Registered in one place, so a designer can read the whole list here.
"""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from .clock import Clock
from .script_limits import check_days
from .workdays import BEIJING, WorkdayCalendar

# The functions every script and expression may call (see script_helpers); task data may not
# use these names, or it would hide them from every later script.
HELPER_NAMES = frozenset({"now", "today", "workdays_after", "days_after", "is_workday"})


def script_helpers(clock: Clock, calendar: Callable[[], WorkdayCalendar]) -> dict[str, Any]:
    def now() -> str:
        """当前北京时间，ISO 格式。"""
        return clock.now().astimezone(BEIJING).isoformat(timespec="seconds")

    def today() -> str:
        return clock.now().astimezone(BEIJING).date().isoformat()

    def workdays_after(n: int, start: str | None = None) -> str:
        """N 个工作日之后（法定节假日与调休按国务院安排），ISO 格式，可用作定时器表达式。"""
        count = int(n)
        check_days("workdays_after", count)  # counted day by day: a huge n would hold the server
        begin = datetime.fromisoformat(start) if start else clock.now()
        if begin.tzinfo is None:
            begin = begin.replace(tzinfo=BEIJING)
        return calendar().add_workdays(begin.astimezone(BEIJING), count).isoformat()

    def days_after(n: float, start: str | None = None) -> str:
        check_days("days_after", n)
        begin = datetime.fromisoformat(start) if start else clock.now()
        if begin.tzinfo is None:
            begin = begin.replace(tzinfo=BEIJING)
        return (begin.astimezone(BEIJING) + timedelta(days=n)).isoformat()

    def is_workday(day: str) -> bool:
        return calendar().is_workday(date.fromisoformat(day[:10]))

    return {
        "now": now,
        "today": today,
        "workdays_after": workdays_after,
        "days_after": days_after,
        "is_workday": is_workday,
    }
