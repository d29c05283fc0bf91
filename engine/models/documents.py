"""Documents rendered from a process's .docx templates and kept with the instance."""

from sqlalchemy import ForeignKey, Index, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, timestamp


class Document(Base):
    """One generated file (会议纪要, 督办单, 通报 …); never changed after it is rendered."""

    __tablename__ = "document"
    __table_args__ = (
        Index("ix_document_instance", "instance_id", "id"),
        Index("ix_document_kind_created", "kind", "created_at"),
    )

    id: Mapped[intpk]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    number: Mapped[str | None] = mapped_column(String(80))  # 文号
    filename: Mapped[str] = mapped_column(String(255))
    template: Mapped[str] = mapped_column(String(255))
    task_name: Mapped[str | None] = mapped_column(String(120))  # the BPMN step that rendered it
    # Published county-wide (月度通报, 考核结果通报): every signed-in user may read it.
    public: Mapped[bool] = mapped_column(default=False, server_default=false())
    content: Mapped[bytes] = mapped_column(LargeBinary())
    created_at: Mapped[timestamp]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
