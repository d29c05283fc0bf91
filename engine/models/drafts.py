"""Task form drafts: what someone typed into a task form and has not submitted yet."""

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, json_doc, timestamp


class TaskDraft(Base):
    """One draft per task and person; restored on the task page, deleted on completion."""

    __tablename__ = "task_draft"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[json_doc]
    opinion: Mapped[str | None] = mapped_column(Text)
    saved_at: Mapped[timestamp]
