"""`Engine`'s commands and reads for the web pages: task drafts, pickers, the dashboard."""

from typing import Any

from sqlalchemy import func, select

from . import acting, drafts
from .base import EngineBase
from .errors import Conflict, InvalidData, NotFound
from .models import HumanTask, Notification, ProcessInstance, ProcessVersion, Unit, User


class PageCommands(EngineBase):
    """Mixed into `Engine`."""

    def save_task_draft(
        self,
        task_id: str,
        data: dict[str, Any],
        *,
        user: str,
        opinion: str | None = None,
    ) -> dict[str, Any]:
        """Keep what `user` typed into an open task's form; nothing is validated yet."""
        if not isinstance(data, dict):
            raise InvalidData("表单数据必须是对象", {"data": "表单数据必须是对象"})
        with self.command(user) as (session, ctx):
            row = acting.task_row(session, task_id)
            actor = self._me(session, user)
            if row.state != "open":
                raise Conflict(acting.closed_refusal(row))
            acting.check_may_act(session, row, actor, "您不是该任务的办理人，不能保存草稿")
            return drafts.save(session, task_id, actor.id, data, opinion, ctx.now)

    def task_draft(self, task_id: str, user: str) -> dict[str, Any] | None:
        """`user`'s saved draft of an open task, or None."""
        with self.read_session() as session:
            user_id = session.scalar(select(User.id).where(User.username == user))
            return drafts.load(session, task_id, user_id) if user_id is not None else None

    def discard_task_draft(self, task_id: str, user: str, *, everyone: bool = False) -> int:
        with self.command(user) as (session, _ctx):
            actor = self._me(session, user)
            return drafts.discard(session, task_id, None if everyone else actor.id)

    def directory_choices(self) -> dict[str, list[dict[str, Any]]]:
        """Units and active people, for the unit/user pickers of forms."""
        with self.read_session() as session:
            units = session.execute(
                select(Unit.id, Unit.code, Unit.name, Unit.kind).order_by(Unit.id)
            ).all()
            names = {u.id: u.name for u in units}
            people = session.execute(
                select(User.username, User.display_name, User.unit_id)
                .where(User.active.is_(True))
                .order_by(User.id)
            ).all()
        return {
            "units": [{"code": u.code, "name": u.name, "kind": u.kind} for u in units],
            "users": [
                {"username": p.username, "name": p.display_name, "unit": names.get(p.unit_id)}
                for p in people
            ],
        }

    def unread_count(self, user: str) -> int:
        """Unread notifications, for the page header (one query on every page)."""
        with self.read_session() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .join(User, User.id == Notification.user_id)
                    .where(User.username == user, Notification.read_at.is_(None))
                )
                or 0
            )

    def instance_labels(self, instance_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Titles and process names of instances, for lists that show task rows."""
        if not instance_ids:
            return {}
        with self.read_session() as session:
            rows = session.execute(
                select(ProcessInstance.id, ProcessInstance.title, ProcessVersion.name)
                .join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)
                .where(ProcessInstance.id.in_(set(instance_ids)))
            ).all()
        return {r.id: {"title": r.title, "process_name": r.name} for r in rows}

    def field_titles(self, instance_id: int) -> dict[str, str]:
        """The Chinese titles of every form field of an instance's version, by key: the task
        page shows the data earlier steps produced under these names."""
        with self.read_session() as session:
            version_id = session.scalar(
                select(ProcessInstance.process_version_id).where(ProcessInstance.id == instance_id)
            )
            if version_id is None:
                raise NotFound(f"流程实例 {instance_id} 不存在")
            cache = self.__dict__.setdefault("_field_titles", {})  # per engine and version
            cached = cache.get(version_id)
            if cached is not None:  # versions never change
                return cached
            loaded = self.specs.get(session, version_id)
        titles: dict[str, str] = {}
        own = f"/{loaded.key}/"  # this process's own forms name a shared key first
        for path in sorted(loaded.forms, key=lambda p: own not in f"/{p}"):
            _collect_titles(loaded.forms[path], titles)
        cache[version_id] = titles
        return titles

    def completed_by(self, task_id: str, user: str) -> bool:
        """Whether `user` completed this step (the task page then offers 撤回)."""
        with self.read_session() as session:
            actor = self._me(session, user)
            row = session.get(HumanTask, task_id)
            return row is not None and row.completed_by_id == actor.id


def _collect_titles(node: Any, titles: dict[str, str]) -> None:
    if not isinstance(node, dict):
        return
    for key, prop in (node.get("properties") or {}).items():
        if isinstance(prop, dict):
            if prop.get("title"):
                titles.setdefault(key, str(prop["title"]))
            _collect_titles(prop, titles)
            _collect_titles(prop.get("items"), titles)
