"""Deployed process definitions: immutable files per deployment, one version row per process."""

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, json_doc, name_str, timestamp


class Deployment(Base):
    __tablename__ = "deployment"

    id: Mapped[intpk]
    deployed_at: Mapped[timestamp]
    deployed_by: Mapped[str | None] = mapped_column(String(80))
    source: Mapped[str | None] = mapped_column(Text)

    files: Mapped[list["DeploymentFile"]] = relationship(
        back_populates="deployment", lazy="selectin", order_by="DeploymentFile.name"
    )


class DeploymentFile(Base):
    """One BPMN, DMN or form file exactly as deployed; never changed afterwards."""

    __tablename__ = "deployment_file"
    __table_args__ = (UniqueConstraint("deployment_id", "name"),)

    id: Mapped[intpk]
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(10))  # bpmn | dmn | form | meta
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))

    deployment: Mapped[Deployment] = relationship(back_populates="files")


class ProcessVersion(Base):
    """One version of one executable process; running instances keep the version they began on."""

    __tablename__ = "process_version"
    __table_args__ = (
        UniqueConstraint("key", "version"),
        Index("ix_process_version_key_hash", "key", "content_hash"),
    )

    id: Mapped[intpk]
    key: Mapped[str] = mapped_column(String(120))
    version: Mapped[int]
    name: Mapped[name_str]
    content_hash: Mapped[str] = mapped_column(String(64))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"))
    bpmn_file: Mapped[str] = mapped_column(String(255))
    start_roles: Mapped[json_doc] = mapped_column(default=list)
    timer_starts: Mapped[json_doc] = mapped_column(default=list)
    deployed_at: Mapped[timestamp]

    deployment: Mapped[Deployment] = relationship()  # loaded only on a spec-cache miss
