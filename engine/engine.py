"""The engine facade: every command is one transaction; every read answers from plain SQL tables."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import (
    acting,
    attachments,
    audit,
    boxes,
    definitions,
    directory,
    drafts,
    forms,
    handlers,
    instance_views,
    ledger,
    notifications,
    operations,
    queries,
    reconnect,
    seeding,
)
from .account_commands import AccountCommands
from .approval_commands import ApprovalCommands
from .attachment_commands import AttachmentCommands
from .bpmn import CommandClock, running_at
from .clock import Clock, FixedClock, SystemClock
from .console_commands import ConsoleCommands
from .db import make_engine, session_factories
from .designer_commands import DesignerCommands
from .document_commands import DocumentCommands
from .errors import Conflict, Forbidden, InvalidData, NotFound
from .helpers import script_helpers
from .models import (
    Base,
    CalendarOverride,
    HumanTask,
    MessageSubscription,
    ProcessInstance,
    ProcessVersion,
)
from .page_commands import PageCommands
from .runtime import Context, Run, load_run, new_run
from .sandbox import make_script_engine
from .start_timers import schedule_start_timers
from .timers import TimerCommands
from .workdays import WorkdayCalendar

ADMIN_ROLE = "系统管理员"

# The calendar of the command running in this context, for the scripts it runs (see command()).
_command_calendar: ContextVar[WorkdayCalendar | None] = ContextVar(
    "duban_command_calendar", default=None
)


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    unit_id: int | None
    roles: frozenset[str]
    sees_all: bool = False  # holds a role that sees every instance (office staff, leaders)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


@reconnect.retried_calls  # a call that lost its connection before committing runs once more
class Engine(
    AccountCommands,
    ApprovalCommands,
    AttachmentCommands,
    ConsoleCommands,
    DesignerCommands,
    DocumentCommands,
    PageCommands,
    TimerCommands,
):
    def __init__(
        self,
        url: str | None = None,
        clock: Clock | None = None,
        *,
        db: SqlEngine | None = None,
        script_time_limit: float = 1.0,
    ) -> None:
        self.db = db or make_engine(url)
        reconnect.watch(self.db)
        self.read_session, self.write_session = session_factories(self.db)
        self.clock: Clock = clock or SystemClock()
        self.specs = definitions.SpecCache()
        self._calendar: WorkdayCalendar | None = None
        self.script_engine = make_script_engine(
            script_helpers(CommandClock(self.clock), self._script_calendar),
            time_limit=script_time_limit,
            services=handlers.call_service,
        )

    # ------------------------------------------------------------ plumbing
    def create_schema(self) -> None:
        """Create every table directly (tests); `duban init` runs the Alembic migrations."""
        Base.metadata.create_all(self.db)

    def close(self) -> None:
        self.db.dispose()

    def calendar(self, session: Session | None = None) -> WorkdayCalendar:
        """The working-day calendar, loaded once (again after `reload_calendar`). Code that holds
        a session passes it: a cold cache then reads the overrides on that session's connection,
        never on a second pooled one (one connection per command or read)."""
        calendar = self._calendar
        if calendar is None:
            if session is None:
                with self.read_session() as own:
                    calendar = _load_calendar(own)
            else:
                calendar = _load_calendar(session)
            self._calendar = calendar
        return calendar

    def _script_calendar(self) -> WorkdayCalendar:
        """What scripts' working-day helpers use: the running command's calendar (loaded on its
        own connection), else the cached one."""
        return _command_calendar.get() or self.calendar()

    def reload_calendar(self) -> None:
        self._calendar = None

    @contextmanager
    def command(
        self, actor: str | None = None, at: datetime | None = None
    ) -> Iterator[tuple[Session, Context]]:
        """One transaction. A concurrent change to the same instance becomes a Conflict.
        `at` runs the command at another instant (timer firing, simulation)."""
        clock = FixedClock(at) if at else self.clock
        committing = False
        try:
            with self.write_session() as session, session.begin(), running_at(clock):
                actor_row = self.actor(session, actor)
                calendar = self.calendar(session)  # a cold cache is read on this connection
                ctx = Context(
                    clock,
                    calendar,
                    self.script_engine,
                    actor_row.id if actor_row else None,
                    specs=self.specs,
                )
                token = _command_calendar.set(calendar)
                try:
                    yield session, ctx
                finally:
                    _command_calendar.reset(token)
                committing = True  # leaving the block commits
        except StaleDataError as exc:
            raise Conflict("流程已被他人同时更新，请刷新后重试") from exc
        except OperationalError as exc:
            if _is_contention(exc):
                raise Conflict("流程正被他人处理，请稍后重试") from exc
            if committing and reconnect.committed_after_all(self.db):
                return  # only the answer to COMMIT was lost: the command is done
            raise

    def actor(self, session: Session, username: str | None) -> Actor | None:
        """Who `username` is (id, unit, roles) within this unit of work; Forbidden if unknown."""
        if username is None:
            return None
        known = session.info.setdefault("duban_actors", {})  # one lookup per unit of work
        if username not in known:
            found = directory.actor_row(session, username)  # one plain query, no ORM objects
            if found is None:
                raise Forbidden(f"用户 {username} 不存在或已停用")
            user_id, unit_id, roles, sees_all = found
            known[username] = Actor(user_id, username, unit_id, frozenset(roles), sees_all)
        return known[username]

    # ----------------------------------------------------------- directory
    def add_user(
        self,
        username: str,
        password: str,
        *,
        name: str | None = None,
        roles: list[str] | None = None,
        unit: str | None = None,
    ) -> dict[str, Any]:
        with self.command() as (session, ctx):
            user = directory.add_user(session, username, password, name, roles or [], unit, ctx.now)
            audit.record(session, "user_added", ctx.now, detail={"username": username})
            return user.summary()

    def add_unit(
        self, name: str, *, code: str | None = None, kind: str = "unit", parent: str | None = None
    ) -> dict[str, Any]:
        with self.command() as (session, _ctx):
            parent_row = directory.find_unit(session, parent) if parent else None
            unit = directory.ensure_unit(session, name, code, kind, parent_row)
            return {"id": unit.id, "code": unit.code, "name": unit.name, "kind": unit.kind}

    def load_directory(self, doc: dict[str, Any], password: str) -> dict[str, int]:
        """Create roles, units and users from plain data (see engine/seeding.py)."""
        with self.command() as (session, ctx):
            return seeding.load_directory(session, doc, password, ctx.now)

    def units(self, user: str | None = None, *, kind: str | None = None) -> list[dict[str, Any]]:
        with self.read_session() as session:
            self.actor(session, user)
            return directory.unit_list(session, kind)

    def users(
        self,
        user: str | None = None,
        *,
        unit: str | None = None,
        role: str | None = None,
        q: str | None = None,
        include_inactive: bool = False,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        """The directory for pickers; deactivated accounts only for administrators."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            if include_inactive and actor is not None and not actor.is_admin:
                raise Forbidden("只有系统管理员可以查看已停用的账号")
            unit_id = None
            if unit:
                found = directory.find_unit(session, unit)
                if found is None:
                    raise NotFound(f"单位“{unit}”不存在")
                unit_id = found.id
            return directory.user_list(
                session,
                unit_id=unit_id,
                role=role,
                query_text=q,
                include_inactive=include_inactive,
                page=page,
                per_page=per_page,
            )

    def roles(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.read_session() as session:
            self.actor(session, user)
            return directory.role_list(session)

    def authenticate(self, username: str, password: str) -> dict[str, Any] | None:
        with self.read_session() as session:
            user = directory.user_by_name(session, username)
            if user is None or not user.active or not directory.verify_password(user, password):
                return None
            return user.summary()

    def set_calendar_day(
        self, day: date, is_workday: bool, note: str | None = None, *, user: str | None = None
    ) -> None:
        """Correct the working-day calendar (e.g. a new 调休 day); wins over the library."""
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            row = session.get(CalendarOverride, day) or CalendarOverride(day=day, is_workday=True)
            row.is_workday, row.note = is_workday, note
            session.add(row)
            audit.record(
                session,
                "calendar_changed",
                ctx.now,
                actor_id=ctx.actor_id,
                reason=note,
                detail={"day": day.isoformat(), "is_workday": is_workday},
            )
        self.reload_calendar()

    def calendar_warnings(self) -> list[str]:
        """Years ahead whose official holiday schedule the calendar does not know yet."""
        this_year = self.clock.now().year
        missing = self.calendar().years_without_official_data([this_year, this_year + 1])
        return [f"{year} 年的法定节假日与调休安排尚未收录，请管理员补录调整日" for year in missing]

    # --------------------------------------------------------- definitions
    def deploy(self, path: str | Path, by: str | None = None) -> list[definitions.DeployedVersion]:
        sources = definitions.read_folder(path)
        with self.command(by) as (session, ctx):
            bundle, results = definitions.deploy(session, sources, ctx.now, by, str(path))
            for result in results:
                if result.created:
                    audit.record(
                        session,
                        "process_deployed",
                        ctx.now,
                        actor_id=ctx.actor_id,
                        detail={"process": result.key, "version": result.version},
                    )
                    schedule_start_timers(session, ctx, result.key)
        return results

    def processes(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.read_session() as session:
            actor = self.actor(session, user)
            return queries.startable_processes(session, actor)

    # ----------------------------------------------------------- instances
    def start(
        self,
        process: str,
        data: dict[str, Any] | None = None,
        *,
        user: str | None = None,
        title: str | None = None,
        parent_instance_id: int | None = None,
    ) -> dict[str, Any]:
        reserved = [key for key in data or {} if forms.is_reserved(key)]
        if reserved:
            raise InvalidData(
                f"字段 {'、'.join(reserved)} 与脚本可用的函数或保留名同名，不能作为流程数据",
                {key: "保留名，不能使用" for key in reserved},
            )
        with self.command(user) as (session, ctx):
            version = definitions.latest_version(session, process)
            if version is None:
                raise NotFound(f"流程 {process} 不存在或尚未部署")
            actor = self.actor(session, user)
            if actor and not queries.may_start(actor, version):
                raise Forbidden(f"您无权发起“{version.name}”")
            run = start_instance(
                session,
                ctx,
                self.specs,
                version.id,
                data or {},
                title=title,
                parent_instance_id=parent_instance_id,
            )
            return queries.instance_summary(run.instance, version)

    def instance(self, instance_id: int, user: str | None = None) -> dict[str, Any]:
        with self.read_session() as session:
            actor = self.actor(session, user)
            return queries.instance_detail(
                session, self.specs, instance_id, actor, self.clock.now(), self.calendar(session)
            )

    def instances(
        self,
        user: str,
        *,
        process: str | None = None,
        status: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        """The instances `user` may see, newest first."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            assert actor is not None
            return instance_views.instance_list(
                session, actor, process=process, status=status, page=page, per_page=per_page
            )

    def instance_summary(self, instance_id: int, user: str | None = None) -> dict[str, Any]:
        """id, process, version, status, title, revision, error — without loading the workflow."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            instance = session.get(ProcessInstance, instance_id)
            if instance is None:
                raise NotFound(f"流程实例 {instance_id} 不存在")
            if actor is not None and not instance_views.may_view(session, instance_id, actor):
                raise Forbidden("您无权查看该流程：它不属于您所在的单位，您也未参与办理")
            version = session.get(ProcessVersion, instance.process_version_id)
            return queries.instance_summary(instance, version)

    def instance_diagram(self, instance_id: int, user: str | None = None) -> dict[str, Any]:
        """The BPMN XML of the instance's own version with its done/current/waiting elements."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            return instance_views.diagram(session, self.specs, instance_id, actor)

    def terminate(self, instance_id: int, *, user: str | None = None, reason: str) -> None:
        self._require_reason(reason)
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            if run.instance.status in ("completed", "terminated"):
                raise Conflict(acting.STATUS_REFUSALS[run.instance.status])
            run.workflow.cancel()
            run.instance.status, run.instance.ended_at = "terminated", ctx.now
            run.save()
            audit.record(
                session,
                "instance_terminated",
                ctx.now,
                instance_id=instance_id,
                actor_id=ctx.actor_id,
                reason=reason,
            )

    def suspend(self, instance_id: int, *, user: str | None = None, reason: str) -> None:
        self._set_status(instance_id, user, reason, "running", "suspended", "instance_suspended")

    def resume(self, instance_id: int, *, user: str | None = None, reason: str) -> None:
        self._set_status(instance_id, user, reason, "suspended", "running", "instance_resumed")

    def _set_status(
        self, instance_id: int, user: str | None, reason: str, expected: str, new: str, kind: str
    ) -> None:
        self._require_reason(reason)
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            if run.instance.status != expected:
                raise Conflict(f"实例当前状态为 {run.instance.status}，不能执行此操作")
            run.instance.status = new
            if new == "running":
                run.advance()  # timers that fell due while suspended fire now
            run.save()
            audit.record(
                session,
                kind,
                ctx.now,
                instance_id=instance_id,
                actor_id=ctx.actor_id,
                reason=reason,
            )

    def retry(
        self,
        instance_id: int,
        *,
        user: str | None = None,
        data: dict[str, Any] | None = None,
        remove: list[str] | None = None,
        reason: str = "管理员重试",
    ) -> dict[str, Any]:
        """Run an instance in error again, first correcting the failed task's data (`data`) and
        deleting keys (`remove`, e.g. one that hides a script helper) from every live task. If
        it fails again, nothing changes (OperationFailed) and the instance stays in error."""
        data, remove = _corrections(data, remove)
        with self.command(user) as (session, ctx):
            self._require_admin(session, user)
            run = load_run(session, instance_id, self.specs, ctx)
            if run.instance.status != "error":
                raise Conflict("只有出错的流程实例可以重试")
            run.instance.status, run.instance.error_message = "running", None
            run.instance.error_task = None
            run.operation = "重试"
            audit.record(
                session,
                "instance_retried",
                ctx.now,
                instance_id=instance_id,
                actor_id=ctx.actor_id,
                reason=reason,
                data_change={**data, **{key: {"removed": True} for key in remove}} or None,
            )
            for task in run.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK | TaskState.ERROR):
                for key in remove:
                    task.data.pop(key, None)
            for task in run.workflow.get_tasks(state=TaskState.ERROR):
                task.data.update(data)
                try:
                    with handlers.serving(run):  # the failed task may be a service task
                        task.run()
                except WorkflowException as exc:
                    run.fail(exc)  # raises: the retry is aborted whole
            run.advance()
            run.save()
            return {
                "id": instance_id,
                "status": run.instance.status,
                "error": run.instance.error_message,
            }

    def deliver_message(
        self, name: str, payload: dict[str, Any] | None = None, *, user: str | None = None
    ) -> list[int]:
        """Deliver a BPMN message to every waiting instance whose correlation matches."""
        payload = payload or {}
        delivered = []
        with self.command(user) as (session, ctx):
            ids = session.scalars(
                select(MessageSubscription.instance_id)
                .where(MessageSubscription.message == name)
                .distinct()
            )
            for instance_id in sorted(ids):
                run = load_run(session, instance_id, self.specs, ctx)
                if run.instance.status == "running" and _send(run, name, payload):
                    run.advance()
                    run.save()
                    audit.record(
                        session,
                        "message_delivered",
                        ctx.now,
                        instance_id=instance_id,
                        actor_id=ctx.actor_id,
                        detail={"message": name, "payload": payload},
                    )
                    delivered.append(instance_id)
        if not delivered:
            raise NotFound(f"没有正在等待消息“{name}”的流程实例")
        return delivered

    # -------------------------------------------------------------- ledger
    def items(self, user: str | None = None, **filters: Any) -> dict[str, Any]:
        """Tracked items with their lights; see engine/ledger.py for the filters. Staff of a
        town or member unit see only the items their unit leads; admins and `sees_all` roles
        see all."""
        with self.read_session() as session:
            actor = self.actor(session, user)
            if actor is not None and not (actor.is_admin or actor.sees_all):
                filters["unit_ids"] = {actor.unit_id} if actor.unit_id is not None else set()
            return ledger.ledger(session, self.clock.now(), self.calendar(session), **filters)

    # ------------------------------------------------------- notifications
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

    # --------------------------------------------------------------- tasks
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
            if row.state != "open":  # a racing command (or a deadline) closed it meanwhile
                raise Conflict(_closed_task_refusal(row))
            if run.instance.status != "running":
                raise Conflict(acting.STATUS_REFUSALS.get(run.instance.status, "流程不在运行中"))
            if expected_revision is not None and expected_revision != run.instance.revision:
                raise Conflict("流程已被他人更新，请刷新后再提交", error="stale_revision")
            actor = self.actor(session, user)
            drafts.discard(session, row.id)  # the submitted form supersedes every draft of it
            attachments.check_references(run, row, data)  # uploads of this instance only
            return operations.complete(run, row, data, actor, opinion)

    def _open_task(self, session: Session, task_id: str) -> HumanTask:
        row = session.get(HumanTask, task_id)
        if row is None:
            raise NotFound("任务不存在")
        if row.state != "open":
            raise Conflict(_closed_task_refusal(row))
        return row

    def _require_admin(self, session: Session, user: str | None) -> None:
        actor = self.actor(session, user)
        if actor is not None and not actor.is_admin:
            raise Forbidden("只有系统管理员可以执行此操作")

    @staticmethod
    def _require_reason(reason: str | None) -> None:
        if not reason or not reason.strip():
            raise InvalidData("请填写原因", {"reason": "请填写原因"})


def start_instance(
    session: Session,
    ctx: Context,
    specs: definitions.SpecCache,
    version_id: int,
    data: dict[str, Any],
    *,
    title: str | None = None,
    parent_instance_id: int | None = None,
    start_event: str | None = None,
) -> Run:
    version = specs.get(session, version_id)
    instance = ProcessInstance(
        process_version_id=version_id,
        process_key=version.key,
        status="running",
        title=title,
        state="{}",
        started_by_id=ctx.actor_id,
        parent_instance_id=parent_instance_id,
        started_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(instance)
    session.flush()
    run = new_run(session, instance, version, ctx, start_event)
    run.workflow.task_tree.data.update(data)
    for task in run.workflow.get_tasks(state=TaskState.READY):
        task.data.update(data)
    audit.record(
        session,
        "instance_started",
        ctx.now,
        instance_id=instance.id,
        actor_id=ctx.actor_id,
        data_change={k: {"from": None, "to": v} for k, v in data.items()},
        detail={
            "process": version.key,
            "version": version.version,
            "start_event": start_event,
            "parent_instance_id": parent_instance_id,
        },
    )
    run.advance()
    run.save()
    return run


def _load_calendar(session: Session) -> WorkdayCalendar:
    overrides = {o.day: o.is_workday for o in session.scalars(select(CalendarOverride))}
    return WorkdayCalendar(overrides)


def _send(run: Run, name: str, payload: dict[str, Any]) -> bool:
    waiting = [
        t
        for t in run.workflow.get_tasks(state=TaskState.WAITING)
        if getattr(getattr(t.task_spec, "event_definition", None), "name", None) == name
    ]
    for task in waiting:
        definition = task.task_spec.event_definition
        try:
            correlations = definition.calculate_correlations(
                run.workflow.script_engine, definition.correlation_properties, payload
            )
        except Exception:  # the payload lacks the correlation value (raw NameError): no match
            continue
        try:
            run.workflow.send_event(BpmnEvent(definition, payload, correlations))
            return True
        except WorkflowException:
            continue
    return False


def _corrections(
    data: dict[str, Any] | None, remove: list[str] | None
) -> tuple[dict[str, Any], list[str]]:
    """An administrator's data corrections, checked before anything is loaded."""
    data, remove = data or {}, remove or []
    if not isinstance(data, dict):
        raise InvalidData("修正数据必须是对象", {"data": "应为 JSON 对象"})
    if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
        raise InvalidData("要删除的字段应为字段名列表", {"remove": "应为字段名列表"})
    reserved = [key for key in data if forms.is_reserved(key)]
    if reserved:
        raise InvalidData(
            f"字段 {'、'.join(reserved)} 与脚本可用的函数或保留名同名，不能写入流程数据",
            {key: "保留名，不能写入" for key in reserved},
        )
    return data, remove


def _closed_task_refusal(row: HumanTask) -> str:
    return acting.closed_refusal(row)


def _is_contention(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig else str(exc).lower()
    return any(
        word in text
        for word in (
            "locked",
            "deadlock",
            "could not obtain lock",
            "could not serialize",
            "lock not available",
        )
    )
