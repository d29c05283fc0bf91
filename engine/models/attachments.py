"""Files uploaded into task forms (附件, 佐证材料), kept with the instance."""

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, timestamp


class Attachment(Base):
    """One uploaded file. Uploaded while a task is open (`task_id`); `instance_id` is set when
    a submitted form names it, so unused uploads never show on the instance."""

    __tablename__ = "attachment"
    __table_args__ = (
        Index("ix_attachment_instance", "instance_id", "id"),
        Index("ix_attachment_task", "task_id"),
    )

    id: Mapped[intpk]
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[str] = mapped_column(String(36))  # the task it was uploaded into
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(BigInteger())
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary())
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[timestamp]
