"""The unit of work on one instance: load → run SpiffWorkflow → sync the SQL mirrors → save.

Nothing here commits; the caller (engine.Engine) frames each command in one transaction.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.exceptions import TaskNotFoundException, WorkflowException
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import assignment, audit, rewind, service_tasks
from .bpmn import dump_state, json_safe, load_state, running_at
from .compaction import PrunedTask, compact
from .context import Context
from .definitions import LoadedVersion, SpecCache
from .errors import Conflict, NotFound, OperationFailed
from .models import HumanTask, MessageSubscription, ProcessInstance, TaskHistory, Timer
from .status import LIVE_STATUSES, OPEN_STATES, InstanceStatus, TaskRowKind, TaskRowState

# SpiffWorkflow fires a timer only when due < now; a command "at" T must also fire timers due at T.
# Only the check is nudged: a timer that starts waiting counts from T itself, or its due time
# would drift by the nudge and a command at exactly that due time would miss it.
_TIMER_EPSILON = timedelta(microseconds=1)


class _Instant:
    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at


@dataclass
class Run:
    session: Session
    instance: ProcessInstance
    version: LoadedVersion
    workflow: BpmnWorkflow
    ctx: Context
    # Mirror tables not yet read or written for this instance: a new instance has no rows to
    # read back, which saves three SELECTs on every start.
    unsynced: set[str] = field(default_factory=set)
    # The operation a person asked for (退回, 撤回 …), while it runs the process on: any
    # failure then aborts it whole instead of leaving the instance in error (see fail).
    operation: str | None = None

    # ------------------------------------------------------------- running
    def advance(self) -> None:
        """Run everything that needs no person, then catch up on due timers."""
        with running_at(_Instant(self.ctx.now)), service_tasks.serving(self):
            try:
                # do_engine_steps may make a due timer READY without running it; only then, or
                # while timers wait, is the catch-up loop needed (most commands have none).
                had_timers = bool(self._waiting(TimerEventDefinition))
                self.workflow.do_engine_steps()
                rounds = 1000 if had_timers or self._waiting(TimerEventDefinition) else 0
                for _ in range(rounds):  # a cycle advances one occurrence per refresh
                    before = _fingerprint(self.workflow)
                    with running_at(_Instant(self.ctx.now + _TIMER_EPSILON)):
                        self.workflow.refresh_timers()
                    self.workflow.do_engine_steps()
                    if _fingerprint(self.workflow) == before:
                        break
            except Exception as exc:  # noqa: BLE001 — fail decides: error state, or abort
                self.fail(exc)

    def _waiting(self, event_kind: type) -> dict[str, Any]:
        """WAITING tasks catching an event of `event_kind` (timer, message), by task id."""
        return {
            str(t.id): t
            for t in live_tasks(self.workflow, TaskState.WAITING)
            if isinstance(_event(t), event_kind)
        }

    def fail(self, exc: Exception) -> None:
        """A failure while the process ran on. Only a designer's own script (or expression, or
        service task) failing in normal running stops the instance in `error`, for an
        administrator to repair. During a person's operation it aborts the operation, and any
        other exception is a fault: both roll the whole command back (the caller re-raises)."""
        task = getattr(exc, "task", None)
        title = _title(task.task_spec) if task is not None else None
        message = str(exc).rstrip(". ").strip()
        if not isinstance(exc, WorkflowException):
            message = f"{type(exc).__name__}: {message}"
        if self.operation is not None:
            where = f"“{title}”" if title else "流程"
            raise OperationFailed(
                f"{self.operation}未能完成，流程未做任何更改：{where}运行出错（{message}）"
            ) from exc
        if not _designer_error(exc):
            raise exc
        self.instance.status = InstanceStatus.ERROR
        self.instance.error_message = f"{'“' + title + '”' if title else ''}运行出错：{message}"
        self.instance.error_task = str(task.id) if task is not None else None
        audit.record(
            self.session,
            "instance_error",
            self.ctx.now,
            instance_id=self.instance.id,
            task_id=self.instance.error_task,
            task_title=title,
            reason=self.instance.error_message,
        )

    def form_of(self, row: HumanTask) -> dict[str, Any] | None:
        """The form of a step, from the instance's own version (None: the step has no form)."""
        return self.version.forms[row.form] if row.form else None

    def ready_task(self, task_id: str) -> Any:
        try:
            task = self.workflow.get_task_from_id(UUID(task_id))
        except Exception as exc:  # TaskNotFoundException: pruned or never existed
            raise Conflict("该任务已不在流程中，可能已被办理或撤销") from exc
        if task.state != TaskState.READY:
            raise Conflict("该任务已办理，不能重复提交")
        return task

    # -------------------------------------------------------------- saving
    def save(self) -> None:
        """Compact, mirror tasks/timers/messages into SQL, and store the new state."""
        if self.instance.status in LIVE_STATUSES and self.workflow.is_completed():
            self.instance.status = InstanceStatus.COMPLETED
            self.instance.ended_at = self.ctx.now
            audit.record(
                self.session, "instance_completed", self.ctx.now, instance_id=self.instance.id
            )
        self._sync_timers()  # before compaction: a timer that left WAITING is still in the tree
        # keep what a live task may still be returned to (退回/撤回 reset those tasks)
        compact(self.workflow, self._keep_history, keep=rewind.protected(self.workflow))
        try:
            self._sync_human_tasks()
        except WorkflowException as exc:  # an assignment expression failed
            self.fail(exc)
        self._sync_messages()
        self.instance.state = dump_state(self.workflow)
        self.instance.updated_at = self.ctx.now

    def _keep_history(self, records: list[PrunedTask]) -> None:
        for record in records:
            if record.state != "COMPLETED" or record.spec_class in _PLUMBING:
                continue
            self.session.add(
                TaskHistory(
                    instance_id=self.instance.id,
                    task_id=record.task_id,
                    element=record.bpmn_id or record.spec_name,
                    title=record.bpmn_name,
                    state=record.state.lower(),
                    finished_at=self.ctx.now,
                    data_delta=json_safe(record.data_delta),
                )
            )

    def _sync_human_tasks(self) -> None:
        ready = {}
        if self.instance.status in LIVE_STATUSES:
            ready = {
                str(t.id): t
                for t in live_tasks(self.workflow, TaskState.READY)
                if t.task_spec.manual
            }
        rows = self._existing(
            "tasks",
            False,
            lambda: self.session.scalars(
                select(HumanTask).where(
                    HumanTask.instance_id == self.instance.id,
                    HumanTask.state.in_(OPEN_STATES),  # waiting: for its 加签 signers
                    HumanTask.kind == TaskRowKind.TASK,  # signers' rows mirror no workflow task
                )
            ),
        )
        known = set()
        for row in rows:
            known.add(row.id)
            if row.id not in ready:
                row.state, row.ended_at = TaskRowState.CANCELLED, self.ctx.now
                cancel_signers(self.session, row, self.ctx.now)
        for task_id, task in ready.items():
            if task_id not in known:
                assignment.open_human_task(self, task)

    def _existing(
        self, table: str, known_empty: bool, read: Callable[[], Iterable[Any]]
    ) -> Iterable[Any]:
        if table in self.unsynced or known_empty:
            self.unsynced.discard(table)  # from now on rows may exist: read them
            return []
        return read()

    def mirror_ready_tasks(self) -> None:
        """Bring the human-task rows up to date mid-command (e.g. before a handler urges one)."""
        self._sync_human_tasks()

    def _sync_timers(self) -> None:
        waiting = {}
        if self.instance.status in LIVE_STATUSES:
            waiting = self._waiting(TimerEventDefinition)
        rows = {
            row.task_id: row
            for row in self._existing(
                "timers",
                not self.instance.has_timers,
                lambda: self.session.scalars(
                    select(Timer).where(
                        Timer.instance_id == self.instance.id, Timer.state == "waiting"
                    )
                ),
            )
        }
        for task_id, row in rows.items():
            task = waiting.get(task_id)
            if task is None:
                # Gone from WAITING: fired only if the workflow says so. A task completed after
                # the due time but before a worker came, or a terminated instance, cancels it.
                gone = self._task(task_id)
                fired = gone is not None and gone.has_state(_FIRED)
                if fired:
                    self._timer_fired(row, gone)
                row.state = "fired" if fired else "cancelled"
                continue
            due = timer_due(task)
            if due is not None and due != row.due_at:  # a cycle waits for its next occurrence
                if row.due_at <= self.ctx.now:
                    self._timer_fired(row, task)
                row.due_at = due
        for task_id, task in waiting.items():
            due = timer_due(task)
            if task_id not in rows and due is not None:
                self.session.add(
                    Timer(
                        kind=_timer_kind(task.task_spec),
                        instance_id=self.instance.id,
                        task_id=task_id,
                        process_key=self.instance.process_key,
                        element=task.task_spec.bpmn_id or task.task_spec.name,
                        due_at=due,
                    )
                )
        self.instance.has_timers = bool(waiting)

    def _task(self, task_id: str) -> Any:
        try:
            return self.workflow.get_task_from_id(UUID(task_id))
        except TaskNotFoundException:
            return None

    def _timer_fired(self, row: Timer, task: Any) -> None:
        row.fire_count += 1
        row.fired_at = self.ctx.now
        audit.record(
            self.session,
            "timer_fired",
            self.ctx.now,
            instance_id=self.instance.id,
            task_id=row.task_id,
            task_title=_title(task.task_spec),
            detail={
                "due_at": row.due_at,
                "late_seconds": (self.ctx.now - row.due_at).total_seconds(),
            },
        )

    def _sync_messages(self) -> None:
        waiting = {}
        if self.instance.status == InstanceStatus.RUNNING:
            waiting = self._waiting(MessageEventDefinition)
        rows = {
            row.task_id: row
            for row in self._existing(
                "messages",
                not self.instance.has_subscriptions,
                lambda: self.session.scalars(
                    select(MessageSubscription).where(
                        MessageSubscription.instance_id == self.instance.id
                    )
                ),
            )
        }
        for task_id, row in rows.items():
            if task_id not in waiting:
                self.session.delete(row)
        for task_id, task in waiting.items():
            if task_id not in rows:
                self.session.add(
                    MessageSubscription(
                        instance_id=self.instance.id,
                        task_id=task_id,
                        message=_event(task).name,
                        correlations=json_safe(self.workflow.correlations),
                    )
                )
        self.instance.has_subscriptions = bool(waiting)


_FIRED = TaskState.READY | TaskState.STARTED | TaskState.COMPLETED  # a timer task that went off

_PLUMBING = {
    "BpmnStartTask",
    "SimpleBpmnTask",
    "_EndJoin",
    "StartEventSplit",
    "StartEventJoin",
    "BoundaryEventSplit",
    "BoundaryEventJoin",
}


def cancel_signers(session: Session, row: HumanTask, at: datetime) -> None:
    """A step that closes takes its open 加签 signatures with it."""
    session.execute(
        update(HumanTask)
        .where(HumanTask.parent_task_id == row.id, HumanTask.state == TaskRowState.OPEN)
        .values(state=TaskRowState.CANCELLED, ended_at=at)
    )


def live_tasks(workflow: BpmnWorkflow, state: int) -> list[Any]:
    """Tasks in `state`, from the flat task maps of the workflow and its subprocesses: cheaper
    than walking the tree, and compaction keeps those maps to the live part of the tree."""
    found = [t for t in workflow.tasks.values() if t.state == state]
    for subprocess in workflow.subprocesses.values():
        found.extend(t for t in subprocess.tasks.values() if t.state == state)
    return found


def _designer_error(exc: BaseException) -> bool:
    """Whether `exc` comes from what a designer wrote: SpiffWorkflow wraps script, expression
    and service-task failures; a few expressions (correlations) it evaluates unwrapped, so a
    traceback through sandbox-compiled code counts too."""
    if isinstance(exc, WorkflowException):
        return True
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<string>":
            return True
        trace = trace.tb_next
    return False


def _fingerprint(workflow: BpmnWorkflow) -> tuple[int, int]:
    return len(workflow.tasks), sum(t.state for t in workflow.tasks.values())


def _event(task: Any) -> Any:
    return getattr(task.task_spec, "event_definition", None)


def _title(task_spec: Any) -> str:
    return task_spec.bpmn_name or task_spec.bpmn_id or task_spec.name


def _timer_kind(task_spec: Any) -> str:
    name = type(task_spec).__name__
    if "Boundary" in name:
        return "boundary"
    return "start" if "Start" in name else "intermediate"


def timer_due(task: Any) -> datetime | None:
    """When a WAITING timer task fires, from the value SpiffWorkflow stored on it."""
    value = task.internal_data.get("event_value")
    if value is None:
        return None
    if isinstance(_event(task), CycleTimerEventDefinition):
        if not isinstance(value, dict) or value.get("cycles") == 0:
            return None
        value = value["next"]
    parsed = TimerEventDefinition.parse_time_or_duration(str(value))
    return parsed if isinstance(parsed, datetime) else None


# ------------------------------------------------------------------ loading
def new_run(
    session: Session,
    instance: ProcessInstance,
    version: LoadedVersion,
    ctx: Context,
    start_event: str | None = None,
) -> Run:
    """A fresh workflow for `instance`, entering by `start_event` (or the plain start events)."""
    workflow = BpmnWorkflow(version.spec, version.subprocess_specs, script_engine=ctx.script_engine)
    _choose_start_event(workflow, start_event, ctx.now)
    return Run(session, instance, version, workflow, ctx, {"tasks", "timers", "messages"})


def _choose_start_event(workflow: BpmnWorkflow, chosen: str | None, now: datetime) -> None:
    """Keep one way in. Left alone, 3.2.0 would let a cycle timer start event spawn branch after
    branch inside this one instance; a timer start is instead one new instance per firing."""
    starts = [t for t in workflow.get_tasks() if type(t.task_spec).__name__ == "StartEvent"]
    timers = {t.task_spec.name for t in starts if isinstance(_event(t), TimerEventDefinition)}
    if chosen is None and timers and len(timers) == len(starts):
        chosen = sorted(timers)[0]  # only timer starts: a manual start means "fire it now"
    for task in starts:
        name = task.task_spec.name
        if chosen is None:
            if name in timers:
                task.cancel()
        elif name != chosen:
            task.cancel()
        elif name in timers:
            past = (now - timedelta(seconds=1)).isoformat()
            fire_once: Any = past
            if isinstance(_event(task), CycleTimerEventDefinition):
                fire_once = {"cycles": 1, "next": past, "duration": 1.0}
            task.internal_data["event_value"] = fire_once


def load_run(session: Session, instance_id: int, cache: Any, ctx: Context) -> Run:
    """Load an instance for a command, holding its row lock until the transaction ends."""
    instance = session.scalars(
        select(ProcessInstance).where(ProcessInstance.id == instance_id).with_for_update()
    ).first()
    if instance is None:
        raise NotFound(f"流程实例 {instance_id} 不存在")
    version = cache.get(session, instance.process_version_id)
    workflow = load_state(instance.state, version.spec, version.subprocess_specs)
    workflow.script_engine = ctx.script_engine
    return Run(session, instance, version, workflow, ctx)


def current_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The instance's data as the next step would see it."""
    if workflow.is_completed():
        return dict(workflow.data)
    # The newest ready or finished task carries the newest data; a boundary timer that began
    # waiting long ago (or a parallel branch) does not.
    live = [t for t in workflow.tasks.values() if t.state in (TaskState.READY, TaskState.COMPLETED)]
    source = max(live, key=lambda t: t.last_state_change, default=workflow.task_tree)
    return dict(source.data)


def start_instance(
    session: Session,
    ctx: Context,
    specs: SpecCache,
    version_id: int,
    data: dict[str, Any],
    *,
    title: str | None = None,
    parent_instance_id: int | None = None,
    start_event: str | None = None,
) -> Run:
    """Start an instance of `version_id` with `data`: the one start path (a person's start, a
    timer start, a parent's start_process service task)."""
    version = specs.get(session, version_id)
    instance = ProcessInstance(
        process_version_id=version_id,
        process_key=version.key,
        status=InstanceStatus.RUNNING,
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


def send_message(run: Run, name: str, payload: dict[str, Any]) -> bool:
    """Deliver a message to the first waiting event of `run` it correlates with."""
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
