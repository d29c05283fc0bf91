"""Timer start events: one new instance per firing, scheduled as a `timer` row per process.

SpiffWorkflow alone would keep one never-ending instance and grow a branch inside it at every
firing; instead the process's timer start events become rows, and each firing starts a fresh
instance of the newest version. Missed occurrences (the worker was down) fire once, not N times.
"""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, definitions
from .models import Timer
from .runtime import Context, start_instance
from .workdays import BEIJING

if TYPE_CHECKING:
    from .definitions import SpecCache


def schedule_start_timers(session: Session, ctx: Context, key: str) -> None:
    """(Re)schedule the start timers of the newest version of `key`."""
    version = definitions.latest_version(session, key)
    assert version is not None
    wanted = {entry["element"]: entry for entry in version.timer_starts or []}
    existing = session.scalars(
        select(Timer).where(
            Timer.kind == "start", Timer.process_key == key, Timer.state == "waiting"
        )
    )
    for row in existing:
        entry = wanted.get(row.element)
        if entry is not None and (row.schedule or {}).get("expression") == entry["expression"]:
            wanted.pop(row.element)  # same schedule: keep its next due time
        else:
            row.state = "cancelled"
    for entry in wanted.values():
        schedule = _first_schedule(ctx, entry)
        if schedule is not None:
            due, plan = schedule
            session.add(
                Timer(
                    kind="start",
                    process_key=key,
                    element=entry["element"],
                    due_at=due,
                    schedule=plan,
                )
            )


def _first_schedule(ctx: Context, entry: dict[str, str]) -> tuple[datetime, dict[str, Any]] | None:
    value = str(ctx.script_engine.environment.evaluate(entry["expression"], {}))
    plan: dict[str, Any] = {"expression": entry["expression"], "type": entry["type"]}
    if entry["type"] == "CycleTimerEventDefinition":
        cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(value)
        period = next((part for part in value.upper().split("/") if part.startswith("P")), None)
        plan |= {"cycles": cycles, "seconds": duration.total_seconds(), "period": period}
        return _advance(start, plan, ctx.now)
    if entry["type"] == "DurationTimerEventDefinition":
        parsed = TimerEventDefinition.parse_iso_duration(value)
        return ctx.now + TimerEventDefinition.get_timedelta_from_start(parsed, ctx.now), plan
    return TimerEventDefinition.get_datetime(value), plan


def _advance(
    due: datetime, plan: dict[str, Any], now: datetime
) -> tuple[datetime, dict[str, Any]] | None:
    """The first occurrence from `due` on that lies after `now`; occurrences in between are
    skipped (and counted). None when no cycles remain."""
    if plan["seconds"] <= 0:
        return None
    while due <= now and plan["cycles"] != 0:
        due = _next_occurrence(due, plan)
        plan["cycles"] -= 1 if plan["cycles"] > 0 else 0
    return (due, plan) if plan["cycles"] != 0 else None


def _next_occurrence(due: datetime, plan: dict[str, Any]) -> datetime:
    """Step by the cycle's period on the calendar, so P1M and P3M keep the day of the month
    (for days up to the 28th); the first step alone would otherwise repeat fixed seconds."""
    if plan.get("period"):
        parsed = TimerEventDefinition.parse_iso_duration(plan["period"])
        local = due.astimezone(BEIJING)
        return (local + TimerEventDefinition.get_timedelta_from_start(parsed, local)).astimezone(
            due.tzinfo
        )
    return due + timedelta(seconds=plan["seconds"])


def fire_start_timer(session: Session, ctx: Context, specs: "SpecCache", row: Timer) -> None:
    version = definitions.latest_version(session, row.process_key or "")
    if version is None or row.element not in {t["element"] for t in version.timer_starts or []}:
        row.state = "cancelled"
        return
    run = start_instance(session, ctx, specs, version.id, {}, start_event=row.element)
    row.fire_count += 1
    row.fired_at = ctx.now
    audit.record(
        session,
        "timer_fired",
        ctx.now,
        instance_id=run.instance.id,
        task_title=run.version.spec.task_specs[row.element].bpmn_name or row.element,
        detail={
            "due_at": row.due_at,
            "process": version.key,
            "start_timer": row.id,
            "late_seconds": (ctx.now - row.due_at).total_seconds(),
        },
    )
    plan = dict(row.schedule or {})
    following = None
    if plan.get("type") == "CycleTimerEventDefinition":
        if plan["cycles"] > 0:
            plan["cycles"] -= 1
        if plan["cycles"] != 0:
            following = _advance(_next_occurrence(row.due_at, plan), plan, ctx.now)
    if following is None:
        row.state = "fired"
    else:
        row.due_at, row.schedule = following
