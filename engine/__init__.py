"""duban's workflow engine: deploys and runs BPMN processes in SQL.

Free of the domain and of Flask."""

from . import scenarios
from .actor import Actor
from .clock import Clock, FixedClock, SystemClock
from .engine import Engine
from .errors import Conflict, DefinitionError, EngineError, Forbidden, InvalidData, NotFound

__all__ = [
    "Actor",
    "Clock",
    "Conflict",
    "DefinitionError",
    "Engine",
    "EngineError",
    "FixedClock",
    "Forbidden",
    "InvalidData",
    "NotFound",
    "SystemClock",
    "scenarios",
]
