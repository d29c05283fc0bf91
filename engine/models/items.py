"""Tracked items (督办台账 rows): kept current by processes, read by ledgers, lights and reports."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, intpk, json_doc, timestamp


class TrackedItem(Base):
    __tablename__ = "tracked_item"
    __table_args__ = (
        UniqueConstraint("instance_id", "kind", "key"),
        Index("ix_tracked_item_kind_unit", "kind", "lead_unit_id"),
        Index("ix_tracked_item_kind_deadline", "kind", "closed_at", "deadline"),
    )

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(120), default="")
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str | None] = mapped_column(String(200))
    lead_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    cooperating_unit_ids: Mapped[json_doc] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(40), default="")
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    original_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    report_cycle_days: Mapped[int] = mapped_column(default=7)
    next_report_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress: Mapped[int] = mapped_column(default=0)
    last_progress: Mapped[str | None] = mapped_column(Text)
    extension_count: Mapped[int] = mapped_column(default=0)
    overdue_count: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closure_note: Mapped[str | None] = mapped_column(Text)
    meeting_instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    attributes: Mapped[json_doc] = mapped_column(default=dict)
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]
