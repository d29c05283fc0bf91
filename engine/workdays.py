"""工作日日历: China's working days (法定节假日 off, 调休 working weekends on) plus admin overrides.

The schedule comes from the `holidays` package's China calendar. Only the years listed in the
package's static table (`ChinaStaticHolidays.special_public_holidays`) carry the State Council's
official notice; for any other year the package merely extrapolates the statutory holidays and
knows no 调休 working weekends — `years_without_official_data` reports those years so admins can
be warned and fill in overrides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from holidays.countries.china import ChinaStaticHolidays

BEIJING = ZoneInfo("Asia/Shanghai")
_ONE_DAY = timedelta(days=1)


class WorkdayCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        """`overrides` (admin corrections) win over the library: True = working, False = off."""
        self._overrides: dict[date, bool] = dict(overrides or {})
        self._china = holidays.China(years=())  # one object, grown lazily a year at a time
        self._loaded: set[int] = set()

    def _ensure_year(self, year: int) -> None:
        # A notice for year Y may declare working weekends in Y-1 (e.g. 2001-12-29 from the 2002
        # notice), so neighbouring years are loaded too. A lookup makes the library populate a year.
        for y in (year - 1, year, year + 1):
            if y not in self._loaded and 1 <= y <= 9999:
                self._loaded.add(y)
                _ = date(y, 7, 1) in self._china

    def is_workday(self, day: date) -> bool:
        if isinstance(day, datetime):
            day = day.date()
        if day in self._overrides:
            return self._overrides[day]
        self._ensure_year(day.year)
        return self._china.is_working_day(day)

    def _next_workday(self, day: date, step: int) -> date:
        day += step * _ONE_DAY
        while not self.is_workday(day):
            day += step * _ONE_DAY
        return day

    def add_workdays(self, start: datetime, n: int) -> datetime:
        """Deadline for "n个工作日内" from `start`, counted on the Beijing calendar.

        Rule: the deadline is at the same Beijing clock time on the n-th working day after the
        start day (Friday 10:00 + 1 → Monday 10:00, unless that Monday is a holiday). If `start`
        falls on a non-working day it is first moved to 00:00 of the next working day, so
        Saturday 10:00 + 1 → Tuesday 00:00, i.e. by the end of Monday. Negative `n` counts
        backwards with the same rule (Saturday 10:00 - 1 → Friday 00:00); n = 0 returns `start`
        unchanged. The result is in `start`'s tzinfo; naive datetimes raise ValueError.
        """
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start 必须是带时区的时间（aware datetime），不接受无时区的时间")
        if n == 0:
            return start
        local = start.astimezone(BEIJING)
        day, clock = local.date(), local.timetz()
        if not self.is_workday(day):
            day, clock = self._next_workday(day, 1), time(0, tzinfo=BEIJING)
        step = 1 if n > 0 else -1
        for _ in range(abs(n)):
            day = self._next_workday(day, step)
        return datetime.combine(day, clock).astimezone(start.tzinfo)

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative (minus those in (end, start]) if end < start."""
        if end < start:
            return -self.workdays_between(end, start)
        return sum(self.is_workday(start + i * _ONE_DAY) for i in range(1, (end - start).days + 1))

    def years_without_official_data(self, years: Iterable[int]) -> list[int]:
        """The given years (sorted, unique) for which the library has no official schedule."""
        official = ChinaStaticHolidays.special_public_holidays
        return sorted({y for y in years if y not in official})
