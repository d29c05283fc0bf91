"""Approval records: 审批意见 (opinions, in order on an instance's timeline) and 抄送 (copies)."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, bigpk, intpk, json_doc, timestamp


class Opinion(Base):
    """What a person said when acting on a step: 同意, 退回 with its reason, 转办 …"""

    __tablename__ = "opinion"
    __table_args__ = (Index("ix_opinion_instance", "instance_id", "id"),)

    id: Mapped[bigpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[str | None] = mapped_column(String(36))
    task_title: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # approve|return|complete|transfer|delegate|resolve|add_signers|sign|withdraw|urge|cc|...
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[json_doc | None]
    at: Mapped[timestamp]


class CarbonCopy(Base):
    """An instance copied (抄送) to a user, who sees it read-only in the CC box."""

    __tablename__ = "carbon_copy"
    __table_args__ = (
        UniqueConstraint("instance_id", "user_id"),
        Index("ix_carbon_copy_user_read", "user_id", "read_at"),
    )

    id: Mapped[intpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))  # None: by BPMN
    task_id: Mapped[str | None] = mapped_column(String(36))
    task_title: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[timestamp]
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
