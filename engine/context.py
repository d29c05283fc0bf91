"""The context one command runs in: its instant, calendar, script engine and acting user."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .clock import Clock
from .workdays import WorkdayCalendar


@dataclass
class Context:
    """What a command runs with: its clock, calendar, script engine and acting user."""

    clock: Clock
    calendar: WorkdayCalendar
    script_engine: Any
    actor_id: int | None = None
    specs: Any = None  # the engine's SpecCache, for handlers that start other processes
    now: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.now = self.clock.now()
