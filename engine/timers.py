"""The timer worker's commands: fire every due timer, each in its own transaction.

Workers claim due `timer` rows with FOR UPDATE SKIP LOCKED (PostgreSQL), so any number of
them can run and each timer fires once; an instance a person is acting on is skipped, not
waited for, and retried on the next poll.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from . import audit, reconnect
from .base import EngineBase
from .db import is_sqlite
from .errors import Conflict, NotFound
from .models import ProcessInstance, Timer
from .runtime import Context, Run, load_run
from .start_timers import fire_start_timer
from .status import InstanceStatus


class TimerCommands(EngineBase):
    def fire_due_timers(self, now: datetime | None = None, limit: int | None = None) -> int:
        """Fire every timer due at `now`, each in its own transaction. Returns how many fired."""
        at = now or self.clock.now()
        skipped: set[int] = set()
        fired = 0
        while limit is None or fired < limit:
            outcome = self._fire_next(at, skipped)
            if outcome is None:
                break
            timer_id, ok = outcome
            if ok:
                fired += 1
            else:
                skipped.add(timer_id)
        return fired

    def _fire_next(self, at: datetime, skipped: set[int]) -> tuple[int, bool] | None:
        timer_id = None
        failures = reconnect.connection_failures()
        try:
            with self.command(at=at) as (session, ctx):
                row = _claim_due_timer(session, at, skipped)
                if row is None:
                    return None
                timer_id = row.id
                if row.kind == "start":
                    fire_start_timer(session, ctx, self.specs, row)
                else:
                    run = load_run_nowait(session, row.instance_id, self.specs, ctx)
                    run.advance()
                    run.save()
                    if row.state == "waiting" and row.due_at <= at:
                        raise RuntimeError("定时器到期但流程未触发")
                return row.id, True
        except Conflict:
            return (timer_id, False) if timer_id is not None else None
        except Exception as exc:  # record and move on; never let one timer stop the worker
            if timer_id is None or reconnect.connection_failures() > failures:
                raise  # the database, not the timer, failed: nothing to record, retried later
            self._timer_failed(timer_id, exc, at)
            return timer_id, False

    def _timer_failed(self, timer_id: int, exc: Exception, at: datetime) -> None:
        with self.command(at=at) as (session, ctx):  # the failure belongs to the firing's time
            row = session.get(Timer, timer_id)
            if row is not None:
                row.state, row.last_error = "failed", f"{type(exc).__name__}: {exc}"
                audit.record(
                    session,
                    "timer_failed",
                    ctx.now,
                    instance_id=row.instance_id,
                    task_id=row.task_id,
                    reason=row.last_error,
                    detail={"timer": row.id, "element": row.element, "due_at": row.due_at},
                )

    def next_timer_due(self) -> datetime | None:
        with self.read_session() as session:
            return session.scalars(
                select(Timer.due_at).where(Timer.state == "waiting").order_by(Timer.due_at).limit(1)
            ).first()


# ------------------------------------------------------------------ helpers


def load_run_nowait(session: Session, instance_id: int | None, specs: Any, ctx: Context) -> Run:
    """Like load_run, but a worker never waits on an instance a person is acting on."""
    if instance_id is None:
        raise NotFound("定时器没有关联的流程实例")
    if not is_sqlite(session.get_bind()):
        try:
            session.execute(
                select(ProcessInstance.id)
                .where(ProcessInstance.id == instance_id)
                .with_for_update(nowait=True)
            )
        except DBAPIError as exc:
            raise Conflict("流程实例正被处理") from exc
    return load_run(session, instance_id, specs, ctx)


def _claim_due_timer(session: Session, at: datetime, skipped: set[int]) -> Timer | None:
    query = (
        select(Timer)
        .outerjoin(ProcessInstance, ProcessInstance.id == Timer.instance_id)
        .where(
            Timer.state == "waiting",
            Timer.due_at <= at,
            or_(Timer.instance_id.is_(None), ProcessInstance.status == InstanceStatus.RUNNING),
        )
        .order_by(Timer.due_at, Timer.id)
        .limit(1)
        .with_for_update(of=Timer, skip_locked=True)
    )
    if skipped:
        query = query.where(Timer.id.not_in(skipped))
    return session.scalars(query).first()
