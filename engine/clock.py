"""The one source of "now".

Tests and `duban timers fire --now` move it; nothing else calls datetime.now.
"""

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move."""

    def __init__(self, at: datetime | None = None) -> None:
        self._at = (at or datetime.now(UTC)).astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("时间必须带时区")
        self._at = at.astimezone(UTC)

    def advance(self, **delta: float) -> datetime:
        self._at += timedelta(**delta)
        return self._at
