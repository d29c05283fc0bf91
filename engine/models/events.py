"""Append-only history: the audit trail and the task records compaction moved out of the tree."""

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, bigpk, json_doc, timestamp


class Event(Base):
    """Who did what, when, with which data change and why."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_instance_at", "instance_id", "id"),
        # one person's events of a kind, newest first (their failed sign-ins, their last sign-in)
        Index("ix_event_actor_kind", "actor_id", "kind", "id"),
    )

    id: Mapped[bigpk]
    at: Mapped[timestamp] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[str | None] = mapped_column(String(36))
    task_title: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    data_change: Mapped[json_doc | None]
    detail: Mapped[json_doc | None]


class TaskHistory(Base):
    """A finished workflow task removed from the live tree by compaction."""

    __tablename__ = "task_history"

    id: Mapped[bigpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    finished_at: Mapped[timestamp]
    data_delta: Mapped[json_doc | None]
