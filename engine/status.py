"""The statuses and states the engine stores as short strings, named once.

Each member is a `str` equal to its value (`InstanceStatus.RUNNING == "running"`), so the
database columns, SQL comparisons, JSON answers and f-strings see exactly the stored string.
This module imports nothing from the engine: every other module may use it."""

from enum import StrEnum


class InstanceStatus(StrEnum):
    """A process instance's `status` (`process_instance.status`)."""

    RUNNING = "running"
    COMPLETED = "completed"
    ERROR = "error"  # a script or service task failed; an administrator retries it
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class TaskRowState(StrEnum):
    """A human-task row's `state` (`human_task.state`): the engine's own bookkeeping of a step,
    not SpiffWorkflow's `TaskState` of the workflow task it mirrors."""

    OPEN = "open"
    WAITING = "waiting"  # for its 加签 signers
    COMPLETED = "completed"
    RETURNED = "returned"  # 退回
    WITHDRAWN = "withdrawn"  # 撤回
    CANCELLED = "cancelled"  # the workflow took the step away; a signer's row, with its step


class TaskRowKind(StrEnum):
    """A human-task row's `kind`: the step itself, or one 加签 signer's row pointing at it."""

    TASK = "task"
    SIGN = "sign"


class Delegation(StrEnum):
    """A human-task row's `delegation` (委派), when it has one: the delegate acts on it, or has
    acted and the step is back with its owner."""

    PENDING = "pending"
    RESOLVED = "resolved"


LIVE_STATUSES = (InstanceStatus.RUNNING, InstanceStatus.SUSPENDED)
"""Statuses of an instance not ended: its workflow moves on (running) or will once resumed."""
OPEN_STATES = (TaskRowState.OPEN, TaskRowState.WAITING)
"""Row states of a step still to act on: open, or waiting for its 加签 signers."""
