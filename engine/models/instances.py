"""Running state: instances, their human tasks, timers, message subscriptions."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, intpk, json_doc, name_str, timestamp


class ProcessInstance(Base):
    """One running process. `state` is the workflow's own serialized state, without the spec."""

    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_process_instance_key_status", "process_key", "status"),)

    id: Mapped[intpk]
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(default=1)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    parent_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_instance.id"), index=True
    )
    started_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_message: Mapped[str | None] = mapped_column(Text)
    error_task: Mapped[str | None] = mapped_column(String(200))
    # Whether `timer` / `message_subscription` rows are waiting for it: most commands then skip
    # reading those tables.
    has_timers: Mapped[bool] = mapped_column(default=False)
    has_subscriptions: Mapped[bool] = mapped_column(default=False)

    # Optimistic lock: an UPDATE that finds another revision raises StaleDataError (→ conflict).
    __mapper_args__ = {"version_id_col": revision}


class HumanTask(Base):
    """A ready user/manual task, mirrored from the workflow so inboxes never deserialize one."""

    __tablename__ = "human_task"
    __table_args__ = (
        Index("ix_human_task_state_assignee", "state", "assignee_id"),
        Index("ix_human_task_instance_state", "instance_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the SpiffWorkflow task id
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    process_key: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(200))  # BPMN element id
    title: Mapped[name_str]  # BPMN element name (Chinese)
    lane: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(200))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    form: Mapped[str | None] = mapped_column(String(255))
    instructions: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="open")
    # open | waiting (for 加签 signers) | completed | returned | withdrawn | cancelled
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[timestamp]
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    submitted: Mapped[json_doc | None]
    # Approval operations (engine/operations.py). A 加签 signer's row has kind "sign" and points
    # at the step's own row; only kind "task" rows mirror a workflow task.
    kind: Mapped[str] = mapped_column(String(10), default="task")  # task|sign
    parent_task_id: Mapped[str | None] = mapped_column(ForeignKey("human_task.id"), index=True)
    sign_mode: Mapped[str | None] = mapped_column(String(10))  # before|after while signers sign
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))  # 委派: delegator
    delegation: Mapped[str | None] = mapped_column(String(10))  # pending|resolved
    acted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # first claim/operation
    urge_count: Mapped[int] = mapped_column(default=0)
    last_urged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    return_reason: Mapped[str | None] = mapped_column(Text)  # why this step came back (退回)


class HumanTaskCandidate(Base):
    """Who may claim a task, resolved from lane role × unit when the task appears."""

    __tablename__ = "human_task_candidate"
    __table_args__ = (Index("ix_human_task_candidate_user", "user_id", "task_id"),)

    task_id: Mapped[str] = mapped_column(
        ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)


class Timer(Base):
    """A waiting timer. Workers claim due rows; each fires in its own transaction."""

    __tablename__ = "timer"
    __table_args__ = (Index("ix_timer_state_due", "state", "due_at"),)

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(20))  # boundary|intermediate|start
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    process_key: Mapped[str | None] = mapped_column(String(120))
    element: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[timestamp]
    state: Mapped[str] = mapped_column(
        String(20), default="waiting"
    )  # waiting|fired|cancelled|failed
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fire_count: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[json_doc | None]  # start timers: {"expression", "cycles", "duration"}


class MessageSubscription(Base):
    """An instance waiting for a BPMN message, with its correlation values."""

    __tablename__ = "message_subscription"

    id: Mapped[intpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    message: Mapped[str] = mapped_column(String(200), index=True)
    correlations: Mapped[json_doc] = mapped_column(default=dict)
