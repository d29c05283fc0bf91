from datetime import UTC, date, datetime

import pytest

from engine import workdays
from engine.workdays import BEIJING, WorkdayCalendar


def bj(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def cal() -> WorkdayCalendar:
    return WorkdayCalendar()


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 2, 14), True),  # Saturday, official 调休 working day
        (date(2026, 2, 28), True),  # Saturday, 调休 working day
        (date(2026, 9, 20), True),  # Sunday, 调休 working day before National Day
        (date(2026, 10, 10), True),  # Saturday, 调休 working day after National Day
        (date(2026, 1, 2), False),  # Friday, day off substituted from 2026-01-04
        (date(2026, 1, 4), True),  # ... so that Sunday is worked
        (date(2027, 2, 8), False),  # Spring Festival (statutory)
        (date(2026, 3, 7), False),  # plain Saturday
        (date(2026, 3, 8), False),  # plain Sunday
        (date(2026, 3, 11), True),  # ordinary Wednesday
    ],
)
def test_is_workday(cal: WorkdayCalendar, day: date, expected: bool) -> None:
    assert cal.is_workday(day) is expected


@pytest.mark.parametrize("day", range(1, 8))
def test_national_day_week_2026_is_off(cal: WorkdayCalendar, day: int) -> None:
    assert not cal.is_workday(date(2026, 10, day))


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (bj(2026, 3, 6), 1, bj(2026, 3, 9)),  # Friday + 1 → Monday, same clock time
        (bj(2026, 3, 11, 15, 30), 2, bj(2026, 3, 13, 15, 30)),  # Wednesday + 2 → Friday
        (bj(2026, 3, 7), 1, bj(2026, 3, 10, 0)),  # Saturday → Monday 00:00, + 1 → Tuesday 00:00
        (bj(2026, 3, 8, 23, 59), 3, bj(2026, 3, 12, 0)),  # Sunday → Monday 00:00 + 3
        (bj(2026, 9, 30), 1, bj(2026, 10, 8)),  # across the National Day holiday
        (bj(2026, 9, 30), 3, bj(2026, 10, 10)),  # ... landing on the 调休 Saturday
        (bj(2026, 10, 3), 1, bj(2026, 10, 9, 0)),  # start inside the holiday
        (bj(2026, 2, 13, 9), 1, bj(2026, 2, 14, 9)),  # Friday + 1 → 调休 Saturday
        (bj(2026, 12, 24), 5, bj(2026, 12, 31)),
        (bj(2026, 12, 31, 15), 1, bj(2027, 1, 4, 15)),  # into 2027, past 元旦
        (bj(2026, 12, 24), 6, bj(2027, 1, 4)),
    ],
)
def test_add_workdays(cal: WorkdayCalendar, start: datetime, n: int, expected: datetime) -> None:
    assert cal.add_workdays(start, n) == expected


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (bj(2026, 3, 9), -1, bj(2026, 3, 6)),  # Monday - 1 → Friday
        (bj(2026, 10, 8), -1, bj(2026, 9, 30)),  # back across National Day
        (bj(2026, 2, 24, 9), -1, bj(2026, 2, 14, 9)),  # back over Spring Festival to 调休 Sat
        (bj(2026, 3, 7), -1, bj(2026, 3, 6, 0)),  # Saturday → Monday 00:00, - 1 → Friday 00:00
        (bj(2027, 1, 4, 15), -1, bj(2026, 12, 31, 15)),
    ],
)
def test_add_workdays_backwards(
    cal: WorkdayCalendar, start: datetime, n: int, expected: datetime
) -> None:
    assert cal.add_workdays(start, n) == expected


@pytest.mark.parametrize("start", [bj(2026, 3, 6), bj(2026, 9, 30, 8, 45), bj(2026, 12, 30)])
@pytest.mark.parametrize("n", [1, 3, 10])
def test_add_then_subtract_round_trips_on_working_days(
    cal: WorkdayCalendar, start: datetime, n: int
) -> None:
    assert cal.add_workdays(cal.add_workdays(start, n), -n) == start


def test_zero_returns_start_unchanged(cal: WorkdayCalendar) -> None:
    start = datetime(2026, 3, 7, 10, tzinfo=UTC)  # even on a weekend
    assert cal.add_workdays(start, 0) is start


def test_naive_datetime_rejected(cal: WorkdayCalendar) -> None:
    with pytest.raises(ValueError, match="时区"):
        cal.add_workdays(datetime(2026, 3, 6, 10), 1)


def test_counts_in_beijing_time_and_keeps_input_tzinfo(cal: WorkdayCalendar) -> None:
    # Friday 02:00 UTC = Friday 10:00 Beijing → Monday 10:00 Beijing = Monday 02:00 UTC
    result = cal.add_workdays(datetime(2026, 3, 6, 2, tzinfo=UTC), 1)
    assert result == datetime(2026, 3, 9, 2, tzinfo=UTC)
    assert result.tzinfo is UTC
    # Friday 20:00 UTC is already Saturday 04:00 in Beijing: a non-working start
    result = cal.add_workdays(datetime(2026, 3, 6, 20, tzinfo=UTC), 1)
    assert result == bj(2026, 3, 10, 0)
    assert result.tzinfo is UTC


def test_overrides_win_both_ways() -> None:
    wednesday, sunday = date(2026, 3, 11), date(2026, 3, 8)
    cal = WorkdayCalendar({wednesday: False, sunday: True, date(2026, 2, 14): False})
    assert not cal.is_workday(wednesday)
    assert cal.is_workday(sunday)
    assert not cal.is_workday(date(2026, 2, 14))  # also overrides an official 调休 day
    assert cal.add_workdays(bj(2026, 3, 10), 1) == bj(2026, 3, 12)  # skips the Wednesday
    assert cal.add_workdays(bj(2026, 3, 6), 1) == bj(2026, 3, 8)  # Friday + 1 → worked Sunday
    assert cal.add_workdays(bj(2026, 3, 7), 1) == bj(2026, 3, 9, 0)  # Saturday → Sunday 00:00 + 1


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 3, 6), date(2026, 3, 6), 0),
        (date(2026, 3, 6), date(2026, 3, 9), 1),  # (Fri, Mon]
        (date(2026, 3, 9), date(2026, 3, 6), -1),
        (date(2026, 9, 30), date(2026, 10, 11), 3),  # Oct 8, 9 and the 调休 Saturday Oct 10
        (date(2026, 10, 11), date(2026, 9, 30), -3),
        (date(2025, 12, 31), date(2026, 12, 31), 248),  # all of 2026
    ],
)
def test_workdays_between(cal: WorkdayCalendar, start: date, end: date, expected: int) -> None:
    assert cal.workdays_between(start, end) == expected


def test_workdays_between_matches_add_workdays(cal: WorkdayCalendar) -> None:
    start = bj(2026, 9, 28)
    for n in range(1, 15):
        assert cal.workdays_between(start.date(), cal.add_workdays(start, n).date()) == n


def test_years_without_official_data(cal: WorkdayCalendar) -> None:
    # holidays 0.109 carries the State Council notices up to 2026 only; 2027 is extrapolated
    # (statutory days, no 调休 working weekends) and 2099 likewise.
    assert cal.years_without_official_data([2099, 2026, 2027, 2025, 2026]) == [2027, 2099]
    assert cal.years_without_official_data(range(2001, 2027)) == []


def test_library_has_no_2027_adjusted_working_weekends(cal: WorkdayCalendar) -> None:
    # Documents why 2027 is flagged: without the notice, no weekend in 2027 is a working day.
    weekends = [date(2027, m, d) for m, d in ((1, 2), (1, 30), (2, 20), (5, 8), (9, 25), (10, 9))]
    assert not any(cal.is_workday(day) for day in weekends)


def test_one_library_object_grown_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    created = []
    real_china = workdays.holidays.China

    def counting_china(*args: object, **kwargs: object) -> object:
        created.append(1)
        return real_china(*args, **kwargs)

    monkeypatch.setattr(workdays.holidays, "China", counting_china)
    cal = WorkdayCalendar()
    for n in range(1, 30):
        cal.add_workdays(bj(2026, 12, 20), n)
    assert len(created) == 1
    assert cal._china.years == {2025, 2026, 2027, 2028}  # each year plus its neighbours, once


def test_add_three_workdays_checks_few_days(monkeypatch: pytest.MonkeyPatch) -> None:
    cal = WorkdayCalendar()
    calls = []
    original = cal.is_workday
    monkeypatch.setattr(cal, "is_workday", lambda day: calls.append(day) or original(day))
    assert cal.add_workdays(bj(2026, 9, 30), 3) == bj(2026, 10, 10)
    assert len(calls) <= 12
