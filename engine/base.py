"""The plumbing every command group shares: the database, the clock, the calendar, one
transaction per command, and who the caller is."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import acting, definitions, directory, reconnect, service_tasks
from .actor import Actor
from .bpmn import CommandClock, running_at
from .clock import Clock, FixedClock, SystemClock
from .context import Context
from .db import make_engine, session_factories
from .errors import Conflict, Forbidden, InvalidData, NotFound
from .helpers import script_helpers
from .models import Base, CalendarOverride, HumanTask
from .sandbox import make_script_engine
from .status import TaskRowState
from .workdays import WorkdayCalendar

# The calendar of the command running in this context, for the scripts it runs (see command()).
_command_calendar: ContextVar[WorkdayCalendar | None] = ContextVar(
    "duban_command_calendar", default=None
)


class EngineBase:
    """What every command group of the `Engine` facade stands on."""

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
            services=service_tasks.call_service,
        )

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

    def _open_task(self, session: Session, task_id: str) -> HumanTask:
        row = session.get(HumanTask, task_id)
        if row is None:
            raise NotFound("任务不存在")
        if row.state != TaskRowState.OPEN:
            raise Conflict(acting.closed_refusal(row))
        return row

    def _require_admin(self, session: Session, user: str | None) -> None:
        actor = self.actor(session, user)
        if actor is not None and not actor.is_admin:
            raise Forbidden("只有系统管理员可以执行此操作")

    @staticmethod
    def _require_reason(reason: str | None) -> None:
        if not reason or not reason.strip():
            raise InvalidData("请填写原因", {"reason": "请填写原因"})

    def _me(self, session: Session, user: str | None) -> Actor:
        """The signed-in caller; Forbidden for an anonymous (system) call."""
        actor = self.actor(session, user)
        if actor is None:
            raise Forbidden("请先登录")
        return actor


def _load_calendar(session: Session) -> WorkdayCalendar:
    overrides = {o.day: o.is_workday for o in session.scalars(select(CalendarOverride))}
    return WorkdayCalendar(overrides)


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
