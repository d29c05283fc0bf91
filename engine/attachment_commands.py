"""`Engine`'s attachments: upload into an open task, download, and an instance's list."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from . import acting, attachments, audit, instance_views
from .base import EngineBase
from .errors import Forbidden, NotFound
from .models import Attachment


class AttachmentCommands(EngineBase):
    """Mixed into `Engine`: 附件 / 佐证材料 uploaded through task forms."""

    attachment_limit = attachments.MAX_BYTES
    attachment_quota_files = attachments.QUOTA_FILES
    attachment_quota_bytes = attachments.QUOTA_BYTES

    def add_attachment(
        self,
        task_id: str,
        name: str,
        content_type: str | None,
        data: bytes,
        user: str | None,
    ) -> dict[str, Any]:
        """Keep one uploaded file for an open task the caller may act on. `content_type` is
        what the browser claimed; the stored type follows from the (checked) file extension."""
        with self.command(user) as (session, ctx):
            row = self._open_task(session, task_id)
            actor = self.actor(session, user)
            if actor is not None and not actor.is_admin:
                acting.check_may_act(session, row, actor)
            clean, stored_type = attachments.checked_upload(name, data, self.attachment_limit)
            attachments.check_quota(
                session,
                row,
                ctx.actor_id,
                len(data),
                self.attachment_quota_files,
                self.attachment_quota_bytes,
            )
            made = attachments.new_attachment(row, clean, stored_type, data, ctx.actor_id, ctx.now)
            session.add(made)
            session.flush()
            audit.record_task(
                session,
                "attachment_added",
                ctx.now,
                row,
                actor_id=ctx.actor_id,
                detail={"attachment_id": made.id, "name": clean, "size": made.size},
            )
            return attachments.summary(made)

    def remove_unused_attachments(
        self, days: int = attachments.UNUSED_DAYS, now: datetime | None = None
    ) -> int:
        """Delete uploads no submitted form named, more than `days` old, whose task is no longer
        open (attachments.remove_unused), as the system. Returns how many were removed."""
        with self.command(at=now) as (session, ctx):
            return attachments.remove_unused(session, ctx.now, days)

    def attachment(self, attachment_id: int, user: str | None) -> tuple[str, str, bytes]:
        """(name, content type, bytes) of one attachment, for someone who may view its instance."""
        with self.read_session() as session:
            row = session.get(Attachment, attachment_id)
            if row is None:
                raise NotFound(f"附件 {attachment_id} 不存在")
            self._may_view_attachments(session, attachments.instance_of(session, row), user)
            return row.name, row.content_type, row.data

    def instance_attachments(self, instance_id: int, user: str | None) -> list[dict[str, Any]]:
        """The files the instance's submitted forms name, oldest first."""
        with self.read_session() as session:
            self._may_view_attachments(session, instance_id, user)
            return attachments.of_instance(session, instance_id)

    def _may_view_attachments(
        self, session: Session, instance_id: int | None, user: str | None
    ) -> None:
        actor = self.actor(session, user)
        if instance_id is None:
            raise NotFound("附件所属的流程不存在")
        if actor is not None and not instance_views.may_view(session, instance_id, actor):
            raise Forbidden("您无权查看该附件：它所属的流程不属于您所在的单位，您也未参与办理")
