"""Designers' drafts: the files of a process bundle being edited, before a check and a deploy."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, intpk, json_doc, timestamp


class ProcessDraft(Base):
    """One draft per process: its BPMN, forms, DMN, scenario and settings files as text."""

    __tablename__ = "process_draft"

    id: Mapped[intpk]
    process_key: Mapped[str] = mapped_column(String(120), unique=True)
    files: Mapped[json_doc] = mapped_column(default=dict)  # {relative name: text}
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    updated_by: Mapped[str | None] = mapped_column(String(80))
    updated_at: Mapped[timestamp]
    # The last check: its result, and the hash of the files it checked (a deploy needs a pass
    # on exactly the files being deployed).
    checked_hash: Mapped[str | None] = mapped_column(String(64))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    check_result: Mapped[json_doc | None]
