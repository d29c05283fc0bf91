"""`Engine`'s operations-console commands (role 系统管理员): instances in error, bulk repairs,
timers, the audit search, user/unit/role administration, worker heartbeats and health.

Reads use one read session; each change is one transaction. A bulk repair runs every item in
its own transaction through the single-item command, so one failure leaves the others done,
and answers per id.
"""

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from SpiffWorkflow import TaskState
from sqlalchemy import text
from sqlalchemy.orm import Session

from . import administration, audit, console, rewind, user_import
from .approval_commands import ApprovalCommands
from .bpmn import load_state
from .errors import Conflict, EngineError, Forbidden, InvalidData, NotFound
from .instance_commands import InstanceCommands
from .models import ProcessInstance, Timer, WorkerHeartbeat
from .status import InstanceStatus

if TYPE_CHECKING:
    from .runtime import Context

LOG = logging.getLogger(__name__)
MAX_BULK = 500
# action → (what the ids are, the Chinese label)
BULK_ACTIONS = {
    "retry": ("instance", "重试"),
    "suspend": ("instance", "挂起"),
    "resume": ("instance", "恢复"),
    "terminate": ("instance", "终止"),
    "reset": ("instance", "重置"),
    "reassign": ("task", "改派"),
}


class ConsoleCommands(ApprovalCommands, InstanceCommands):
    """Mixed into `Engine`."""

    # ------------------------------------------------------------- reading
    def error_instances(self, user: str | None = None, **filters: Any) -> dict[str, Any]:
        """Instances in error; filters: status (error, suspended, running), process, since,
        until, page, per_page."""
        with self._console_read(user) as session:
            return console.error_instances(session, **filters)

    def console_tasks(self, user: str | None = None, **filters: Any) -> dict[str, Any]:
        """Open tasks across the system; filters: process, assignee, instance_id, unclaimable."""
        with self._console_read(user) as session:
            return console.open_tasks(session, **filters)

    def timers_overview(
        self, user: str | None = None, *, late_after: float = 60.0, limit: int = 50
    ) -> dict[str, Any]:
        with self._console_read(user) as session:
            return console.timers_overview(
                session, self.clock.now(), late_after=late_after, limit=limit
            )

    def audit_events(self, user: str | None = None, **filters: Any) -> dict[str, Any]:
        """The audit trail across the system. Filters: username, unit, process, instance_id,
        kind (one or a list), since, until (ISO dates or date-times), page, per_page."""
        with self._console_read(user) as session:
            return console.audit_search(session, **filters)

    def audit_kinds(self, user: str | None = None) -> list[str]:
        with self._console_read(user) as session:
            return console.event_kinds(session)

    def reset_targets(self, instance_id: int, user: str | None = None) -> list[dict]:
        """The earlier steps an instance can be reset to: {element, title}."""
        with self._console_read(user) as session:
            instance = (
                session.get(ProcessInstance, instance_id) if console.is_id(instance_id) else None
            )
            if instance is None:
                raise NotFound("流程实例不存在")
            version = self.specs.get(session, instance.process_version_id)
            workflow = load_state(instance.state, version.spec, version.subprocess_specs)
            live = [
                t
                for t in workflow.get_tasks()
                if t.state == TaskState.ERROR or (t.state == TaskState.READY and t.task_spec.manual)
            ]
            found: dict[str, str] = {}
            for task in live:
                for step in rewind.targets(task, same_round=False):
                    found.setdefault(step.element, step.title)
            return [{"element": element, "title": title} for element, title in found.items()]

    # --------------------------------------------------------------- bulk
    def bulk(
        self,
        action: str,
        ids: list[Any],
        *,
        user: str | None,
        reason: str | None,
        to: str | None = None,
    ) -> dict[str, Any]:
        """Run `action` on each id, each in its own transaction. `to`: the step (reset) or the
        person (reassign). Answers {action, done, failed, results: [{id, ok, message, ...}]}."""
        with self.read_session() as session:  # who asks comes before what is asked
            self._require_console(session, user)
        if action not in BULK_ACTIONS:
            message = f"不支持的操作：{action}"
            raise InvalidData(message, {"action": message})
        reason = self._console_reason(reason)
        kind, label = BULK_ACTIONS[action]
        targets = _bulk_ids(ids, kind)
        if action in ("reset", "reassign") and not (isinstance(to, str) and to.strip()):
            message = "请选择重置到的步骤" if action == "reset" else "请选择改派给谁"
            raise InvalidData(message, {"to": message})
        results = [self._bulk_one(action, target, user, reason, to) for target in targets]
        done = sum(1 for r in results if r["ok"])
        with self.command(user) as (session, ctx):
            audit.record(
                session,
                "bulk_operation",
                ctx.now,
                actor_id=ctx.actor_id,
                reason=reason,
                detail={
                    "action": action,
                    "label": label,
                    "to": to,
                    "done": [r["id"] for r in results if r["ok"]],
                    "failed": {str(r["id"]): r["message"] for r in results if not r["ok"]},
                },
            )
        return {"action": action, "done": done, "failed": len(results) - done, "results": results}

    def _bulk_one(
        self, action: str, target: Any, user: str | None, reason: str, to: str | None
    ) -> dict[str, Any]:
        try:
            if action == "retry":
                answer = self.retry(target, user=user, reason=reason)
            elif action == "reset":
                answer = self.reset(target, to or "", user=user, reason=reason)
            elif action == "reassign":
                answer = self.reassign(target, to or "", user=user, reason=reason)
            else:
                getattr(self, action)(target, user=user, reason=reason)
                answer = {}
        except EngineError as exc:
            return {"id": target, "ok": False, "error": exc.code, "message": exc.message}
        except Exception as exc:  # a bug must not stop the other items (nor hide their results)
            LOG.exception("bulk %s failed on %s", action, target)
            message = f"系统内部错误（{type(exc).__name__}），已记录日志"
            return {"id": target, "ok": False, "error": "internal", "message": message}
        return {"id": target, "ok": True, "message": "已完成", **_brief(answer)}

    # -------------------------------------------------------------- timers
    def retry_timer(self, timer_id: int, *, user: str | None, reason: str | None) -> dict:
        """Put a failed timer back in the queue; the next worker loop fires it again."""
        reason = self._console_reason(reason)
        with self._console_command(user) as (session, ctx):
            row = session.get(Timer, timer_id) if console.is_id(timer_id) else None
            if row is None:
                raise NotFound("定时器不存在")
            if row.state != "failed":
                raise Conflict("只有触发失败的定时器可以重试")
            error, row.state, row.last_error = row.last_error, "waiting", None
            audit.record(
                session,
                "timer_retried",
                ctx.now,
                instance_id=row.instance_id,
                task_id=row.task_id,
                actor_id=ctx.actor_id,
                reason=reason,
                detail={"timer": row.id, "element": row.element, "error": error},
            )
            return {"id": row.id, "state": row.state, "due_at": row.due_at.isoformat()}

    # ----------------------------------------------------- administration
    def directory_overview(self, user: str | None = None) -> dict[str, Any]:
        with self._console_read(user) as session:
            return administration.overview(session)

    def create_user(self, fields: dict[str, Any], *, user: str | None) -> dict:
        with self._console_command(user) as (session, ctx):
            created = administration.create_user(session, _fields(fields), ctx.now, ctx.actor_id)
            return administration.user_dict(created)

    def update_user(
        self, username: str, fields: dict[str, Any], *, user: str | None
    ) -> dict[str, Any]:
        with self._console_command(user) as (session, ctx):
            row = administration.existing_user(session, username)
            changed = administration.update_user(
                session, row, _fields(fields), ctx.now, ctx.actor_id
            )
            return administration.user_dict(changed)

    def deactivate_user(
        self, username: str, *, user: str | None, reason: str | None
    ) -> dict[str, Any]:
        """Deactivate; the user's open tasks go back to their unit's pool."""
        reason = self._console_reason(reason)
        with self._console_command(user) as (session, ctx):
            row = administration.existing_user(session, username)
            returned = administration.deactivate_user(session, row, reason, ctx.now, ctx.actor_id)
            return {**administration.user_dict(row), "tasks_returned": returned}

    def activate_user(
        self, username: str, *, user: str | None, reason: str | None
    ) -> dict[str, Any]:
        reason = self._console_reason(reason)
        with self._console_command(user) as (session, ctx):
            row = administration.existing_user(session, username)
            administration.activate_user(session, row, reason, ctx.now, ctx.actor_id)
            return administration.user_dict(row)

    def sign_out_everywhere(
        self, username: str, *, user: str | None, reason: str | None
    ) -> dict[str, Any]:
        """强制退出: end every page session and API token of `username` (audited)."""
        reason = self._console_reason(reason)
        with self._console_command(user) as (session, ctx):
            row = administration.existing_user(session, username)
            return administration.sign_out_everywhere(session, row, reason, ctx.now, ctx.actor_id)

    def import_users(self, content: bytes, *, user: str | None) -> dict[str, Any]:
        """Users from an .xlsx sheet (columns 用户名, 姓名, 单位, 角色, 密码): all or none."""
        with self._console_command(user) as (session, ctx):
            created = user_import.import_users(session, content, ctx.now, ctx.actor_id)
            return {"imported": len(created), "users": created}

    def create_unit(self, fields: dict[str, Any], *, user: str | None) -> dict:
        with self._console_command(user) as (session, ctx):
            unit = administration.create_unit(session, _fields(fields), ctx.now, ctx.actor_id)
            return administration.unit_dict(session, unit)

    def update_unit(
        self, unit: str | int, fields: dict[str, Any], *, user: str | None
    ) -> dict[str, Any]:
        with self._console_command(user) as (session, ctx):
            row = administration.find_unit(session, unit)
            if row is None:
                raise NotFound(f"单位“{unit}”不存在")
            changed = administration.update_unit(
                session, row, _fields(fields), ctx.now, ctx.actor_id
            )
            return administration.unit_dict(session, changed)

    def create_role(self, fields: dict[str, Any], *, user: str | None) -> dict:
        with self._console_command(user) as (session, ctx):
            role = administration.create_role(session, _fields(fields), ctx.now, ctx.actor_id)
            return administration.role_dict(role)

    def update_role(self, name: str, fields: dict[str, Any], *, user: str | None) -> dict[str, Any]:
        with self._console_command(user) as (session, ctx):
            role = administration.existing_role(session, name)
            changed = administration.update_role(
                session, role, _fields(fields), ctx.now, ctx.actor_id
            )
            return administration.role_dict(changed)

    # ------------------------------------------------------ health, workers
    def worker_heartbeat(
        self,
        *,
        name: str | None = None,
        interval: float = 5.0,
        fired: int = 0,
        error: str | None = None,
        stopping: bool = False,
    ) -> str:
        """Record that this worker process is alive (called by `duban worker` every loop)."""
        hostname = socket.gethostname()
        name = name or f"{hostname}:{os.getpid()}"
        with self.command() as (session, ctx):
            row = session.get(WorkerHeartbeat, name)
            if row is None:
                row = WorkerHeartbeat(
                    name=name,
                    hostname=hostname[:200],
                    pid=os.getpid(),
                    started_at=ctx.now,
                    last_seen_at=ctx.now,
                    interval_seconds=interval,
                    loops=0,
                    fired_total=0,
                )
                session.add(row)
            row.last_seen_at, row.interval_seconds = ctx.now, interval
            row.loops += 1
            row.fired_total += fired
            row.last_error = error
            row.stopped_at = ctx.now if stopping else None
        return name

    def health(self, user: str | None = None) -> dict[str, Any]:
        """Database, workers alive, queue depth and the main counts. Raises if the database
        cannot be reached (the caller reports that)."""
        now = self.clock.now()
        with self.read_session() as session:
            session.execute(text("SELECT 1"))
            self._require_console(session, user)
            workers = console.workers(session, now)
            figures = console.counts(session, now)
        alive = sum(1 for w in workers if w["alive"])
        problems = []
        if not alive:
            problems.append("没有存活的定时器工作进程（duban worker）")
        if figures["queue_depth"]:
            problems.append(f"有 {figures['queue_depth']} 个到期定时器尚未触发")
        if figures["timers"].get("failed"):
            problems.append(f"有 {figures['timers']['failed']} 个定时器触发失败")
        if figures["instances"].get(InstanceStatus.ERROR):
            problems.append(f"有 {figures['instances'][InstanceStatus.ERROR]} 个流程实例出错")
        return {
            "status": "ok" if not problems else "warning",
            "database": "ok",
            "now": now.isoformat(),
            "workers": workers,
            "workers_alive": alive,
            "problems": problems,
            **figures,
        }

    # ------------------------------------------------------------- helpers
    @contextmanager
    def _console_read(self, user: str | None) -> Iterator[Session]:
        """A read session for a console reader (see `_require_console`)."""
        with self.read_session() as session:
            self._require_console(session, user)
            yield session

    @contextmanager
    def _console_command(self, user: str | None) -> Iterator[tuple[Session, "Context"]]:
        """One transaction of a console command (see `_require_console`)."""
        with self.command(user) as (session, ctx):
            self._require_console(session, user)
            yield session, ctx

    def _require_console(self, session: Session, user: str | None) -> None:
        """Only 系统管理员 (or the system itself, user None) uses the console."""
        actor = self.actor(session, user)
        if actor is not None and not actor.is_admin:
            raise Forbidden("只有系统管理员可以使用运维控制台")

    @staticmethod
    def _console_reason(reason: Any) -> str:
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidData("请填写原因", {"reason": "请填写原因"})
        return reason.strip()


def _bulk_ids(ids: Any, kind: str) -> list[Any]:
    if not isinstance(ids, list) or not ids:
        raise InvalidData("请至少选择一项", {"ids": "请至少选择一项"})
    if len(ids) > MAX_BULK:
        raise InvalidData(f"一次最多处理 {MAX_BULK} 项", {"ids": f"一次最多处理 {MAX_BULK} 项"})
    found: list[Any] = []
    for value in ids:
        if kind == "instance":
            number = None if isinstance(value, bool) else console.as_id(value)
            if number is None:
                message = f"实例编号不正确：{value}"
                raise InvalidData(message, {"ids": message})
            value = number
        elif not isinstance(value, str) or not 0 < len(value.strip()) <= 36:
            raise InvalidData(f"任务编号不正确：{value}", {"ids": f"任务编号不正确：{value}"})
        if value not in found:
            found.append(value)
    return found


def _brief(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        return {}
    return {k: answer[k] for k in ("status", "assignee", "reset_to") if k in answer}


def _fields(fields: Any) -> dict[str, Any]:
    if not isinstance(fields, dict):
        raise InvalidData("请求体必须是对象", {"_form": "请求体必须是对象"})
    return fields
