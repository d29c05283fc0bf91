"""Moving a running instance to a newer version of its process, after a safety check.

SpiffWorkflow 3.2.0 aligns two specs by BPMN id (`SpiffWorkflow.bpmn.util.diff`): every task of
the instance is given the aligned task spec of the new version. Its own `migrate_workflow`
then resets every READY and WAITING task, which would restart running timers and rerun
pre-scripts; instead we keep those tasks as they are and only re-predict what lies after them,
so people keep their claimed tasks and timers keep their due times.

An instance cannot move when a step it is waiting in (or a step it has finished and still
keeps in its task tree) no longer exists, when a step in progress (multi-instance, call
activity, sub-process) changed, or when the moved workflow fails to store and load again. The
check runs the real migration on a loaded copy, so "can move" means it does move.
"""

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn.util.diff import diff_workflow
from SpiffWorkflow.exceptions import TaskNotFoundException
from sqlalchemy import select

from .assignment import properties
from .bpmn import SERIALIZER, dump_state, load_state
from .definitions import FORM_PROPERTY, LoadedVersion, bpmn_file_of, resolve_form
from .models import HumanTask
from .status import LIVE_STATUSES, OPEN_STATES, TaskRowKind

LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
MOVABLE_STATUSES = LIVE_STATUSES  # running or suspended


@dataclass
class Assessment:
    """Whether an instance can move to a version, and why not."""

    instance_id: int
    version: int
    target_version: int
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # changed steps it is waiting in

    @property
    def can_move(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "version": self.version,
            "target_version": self.target_version,
            "can_move": self.can_move,
            "reasons": self.reasons,
            "notes": self.notes,
        }


def _title(task: Any) -> str:
    spec = task.task_spec
    return getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None) or spec.name


def check(workflow: Any, status: str, target: LoadedVersion) -> tuple[list[str], list[str]]:
    """(reasons it cannot move, notes) for a loaded workflow. Leaves `workflow` migrated when
    there is no reason; callers load a fresh copy for a check alone."""
    if status not in MOVABLE_STATUSES:
        return [f"实例状态为 {status}，只有运行中或已挂起的实例可以迁移"], []
    try:
        reasons, notes = _blocked(workflow, target)
    except Exception as exc:  # noqa: BLE001 — a tree SpiffWorkflow's diff cannot align
        return [f"无法比对实例与新版本：{type(exc).__name__}: {exc}"], []
    if reasons:
        return reasons, notes
    try:
        migrate(workflow, target)
        load_state(dump_state(workflow), target.spec, target.subprocess_specs)
    except Exception as exc:  # noqa: BLE001 — any failure means: it cannot move
        return [f"迁移后流程状态无法在新版本中恢复：{exc}"], notes
    return [], notes


def _blocked(workflow: Any, target: LoadedVersion) -> tuple[list[str], list[str]]:
    top, subs = diff_workflow(
        SERIALIZER.registry, workflow, target.spec, target.subprocess_specs or {}
    )
    reasons, notes = [], []
    for task in top.removed:
        if task.has_state(LIVE):
            reasons.append(f"当前停留的步骤“{_title(task)}”在新版本中已删除")
        elif task.has_state(TaskState.FINISHED_MASK):
            reasons.append(f"已办理的步骤“{_title(task)}”在新版本中已删除，无法对应")
    for task in top.changed:
        if not task.has_state(LIVE):
            continue
        changes = top_changes(top, task)
        if "typename" in changes:
            reasons.append(f"当前步骤“{_title(task)}”在新版本中改变了类型")
        elif task.has_state(TaskState.STARTED):
            reasons.append(f"进行中的步骤“{_title(task)}”（多实例或子流程）在新版本中有改动")
        else:
            notes.append(f"当前步骤“{_title(task)}”在新版本中有改动，迁移后按新定义办理")
    for sp_id, sp_diff in subs.items():
        sub = workflow.subprocesses[sp_id]
        if sp_diff is None or sp_diff.removed or sp_diff.changed:
            reasons.append(f"正在运行的子流程“{sub.spec.name}”在新版本中已删除或有改动")
    return reasons, notes


def top_changes(diff: Any, task: Any) -> list[str]:
    aligned = diff.alignment.get(task)
    if aligned is None:
        return []
    s1, s2 = SERIALIZER.registry.convert(task.task_spec), SERIALIZER.registry.convert(aligned)
    if s1.get("typename") != s2.get("typename"):
        return ["typename"]
    return [key for key, value in s1.items() if s2.get(key) != value]


def migrate(workflow: Any, target: LoadedVersion) -> None:
    """Swap every task to its aligned spec in `target`; re-predict what follows live tasks."""
    top, _subs = diff_workflow(
        SERIALIZER.registry, workflow, target.spec, target.subprocess_specs or {}
    )
    workflow.spec = target.spec
    workflow.subprocess_specs = target.subprocess_specs or {}
    for task in list(workflow.tasks.values()):
        aligned = top.alignment.get(task)
        if aligned is not None:
            task.task_spec = aligned
    for sub in workflow.subprocesses.values():
        new_spec = workflow.subprocess_specs[sub.spec.name]
        sub.spec = new_spec
        for task in sub.tasks.values():
            task.task_spec = new_spec.task_specs[task.task_spec.name]
    for task in list(workflow.tasks.values()):
        if task.id not in workflow.tasks:
            continue  # dropped with an earlier task's predicted children
        if task.has_state(TaskState.READY | TaskState.WAITING):
            task._drop_children()
            task.task_spec._predict(task, mask=TaskState.NOT_FINISHED_MASK)
    stale = [
        _title(t) for t in workflow.tasks.values() if t.task_spec.name not in target.spec.task_specs
    ]
    if stale:
        raise ValueError(f"步骤 {', '.join(sorted(set(stale)))} 在新版本中无对应")


def retitle_open_tasks(run: Any) -> None:
    """Open human tasks keep their ids and people; their names and forms follow the new spec."""
    rows = run.session.scalars(
        select(HumanTask).where(
            HumanTask.instance_id == run.instance.id,
            HumanTask.state.in_(OPEN_STATES),
            HumanTask.kind == TaskRowKind.TASK,
        )
    )
    for row in rows:
        try:
            spec = run.workflow.get_task_from_id(UUID(row.id)).task_spec
        except TaskNotFoundException:
            continue
        row.name = spec.bpmn_id or spec.name
        row.title = spec.bpmn_name or spec.bpmn_id or spec.name
        form = properties(spec).get(FORM_PROPERTY)
        row.form = resolve_form(bpmn_file_of(spec, run.version.bpmn_file), form) if form else None
