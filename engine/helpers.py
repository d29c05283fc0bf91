"""Functions process definitions may call in scripts, conditions and timer expressions.

Registered in one place, so a designer can read the whole list here.
"""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from .clock import Clock
from .workdays import BEIJING, WorkdayCalendar


def script_helpers(clock: Clock, calendar: Callable[[], WorkdayCalendar]) -> dict[str, Any]:
    def now() -> str:
        """当前北京时间，ISO 格式。"""
        return clock.now().astimezone(BEIJING).isoformat(timespec="seconds")

    def today() -> str:
        return clock.now().astimezone(BEIJING).date().isoformat()

    def workdays_after(n: int, start: str | None = None) -> str:
        """N 个工作日之后（法定节假日与调休按国务院安排），ISO 格式，可用作定时器表达式。"""
        begin = datetime.fromisoformat(start) if start else clock.now()
        if begin.tzinfo is None:
            begin = begin.replace(tzinfo=BEIJING)
        return calendar().add_workdays(begin.astimezone(BEIJING), int(n)).isoformat()

    def days_after(n: float, start: str | None = None) -> str:
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
