"""A person's tasks and notifications: the boxes, claiming, completing."""

from typing import Any

from . import acting, attachments, audit, boxes, drafts, notifications, operations, queries
from .base import EngineBase
from .errors import Conflict, Forbidden, InvalidData
from .runtime import load_run
from .status import InstanceStatus, TaskRowState


class TaskCommands(EngineBase):
    """The inbox and its tasks, and the notifications beside it."""

    def notifications(
        self, user: str, *, unread_only: bool = False, page: int = 1, per_page: int = 50
    ) -> dict[str, Any]:
        with self.read_session() as session:
            actor = self.actor(session, user)
            assert actor is not None
            return notifications.for_user(
                session, actor.id, unread_only=unread_only, page=page, per_page=per_page
            )

    def mark_notifications_read(self, user: str, ids: list[int] | None = None) -> int:
        """Mark the given notifications (or all) of `user` as read."""
        with self.command(user) as (session, ctx):
            assert ctx.actor_id is not None
            return notifications.mark_read(session, ctx.actor_id, ids, ctx.now)

    def tasks(
        self, user: str, *, box: str = "todo", page: int = 1, per_page: int = 50
    ) -> dict[str, Any]:
        """A box of `user`'s: todo (the inbox), done, cc or started (see boxes.py)."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            assert actor is not None
            now, calendar = self.clock.now(), self.calendar(session)
            return boxes.box(session, actor, box, page, per_page, now, calendar)

    def task(self, task_id: str, user: str | None = None) -> dict[str, Any]:
        with self.read_session() as session:
            actor = self.actor(session, user)
            return queries.task_detail(
                session, self.specs, task_id, actor, self.clock.now(), self.calendar(session)
            )

    def claim(self, task_id: str, user: str) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            row = self._open_task(session, task_id)
            actor = self.actor(session, user)
            assert actor is not None
            if row.assignee_id == actor.id:
                return {"id": row.id, "assignee": actor.username}
            acting.check_may_act(session, row, actor, "您不是该任务的办理人，不能认领")
            row.assignee_id, row.acted_at = actor.id, row.acted_at or ctx.now
            audit.record_task(
                session,
                "task_claimed",
                ctx.now,
                row,
                actor_id=actor.id,
            )
            return {"id": row.id, "assignee": actor.username}

    def unclaim(self, task_id: str, user: str) -> dict[str, Any]:
        with self.command(user) as (session, ctx):
            row = self._open_task(session, task_id)
            if row.assignee_id != ctx.actor_id:
                actor = self.actor(session, user)
                if actor is not None and acting.held_by_another(session, row, actor):
                    raise Conflict(acting.held_refusal(session, row))
                raise Forbidden("只有认领人可以退回任务池")
            row.assignee_id = None
            audit.record_task(
                session,
                "task_unclaimed",
                ctx.now,
                row,
                actor_id=ctx.actor_id,
            )
            return {"id": row.id, "assignee": None}

    def complete(
        self,
        task_id: str,
        data: dict[str, Any] | None = None,
        *,
        user: str | None = None,
        opinion: str | None = None,
        expected_revision: int | None = None,
    ) -> dict[str, Any]:
        """Submit a task's form. `expected_revision`: the instance revision the caller saw; if
        another command changed the instance since, a Conflict instead of acting on stale data."""
        data = data or {}
        if not isinstance(data, dict):
            raise InvalidData("表单数据必须是对象", {"_form": "表单数据必须是对象"})
        with self.command(user) as (session, ctx):
            row = self._open_task(session, task_id)
            run = load_run(session, row.instance_id, self.specs, ctx)
            session.refresh(row)  # re-read under the instance lock
            # a racing command (or a deadline) closed it meanwhile
            if row.state != TaskRowState.OPEN:
                raise Conflict(acting.closed_refusal(row))
            if run.instance.status != InstanceStatus.RUNNING:
                raise Conflict(acting.STATUS_REFUSALS.get(run.instance.status, "流程不在运行中"))
            if expected_revision is not None and expected_revision != run.instance.revision:
                raise Conflict("流程已被他人更新，请刷新后再提交", error="stale_revision")
            actor = self.actor(session, user)
            drafts.discard(session, row.id)  # the submitted form supersedes every draft of it
            attachments.check_references(run, row, data)  # uploads of this instance only
            return operations.complete(run, row, data, actor, opinion)
