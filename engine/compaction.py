"""Keep looping workflow instances shallow: re-root the task tree and drop finished history.

SpiffWorkflow 3.2.0 keeps every finished task of a running instance in its task tree, and a
loop adds levels to that tree every round. Past depth 1000 the library's iterators stop seeing
the live tasks, so the instance silently reports itself complete; a parallel join inside a loop
also consults its own stale instances from earlier rounds (slow, and it fires too early).

`compact` runs between commands (after ``do_engine_steps`` and before saving). It moves the
root of the task tree down to the deepest *safe cut point* and deletes everything outside the
new root's subtree. A task ``C`` is a safe cut point when:

1. ``C`` is COMPLETED (its data is final and it never runs again);
2. ``C`` is an ancestor of every unfinished task;
3. ``C`` is an ancestor of the CANCELLED instances that belong to the current activation of every
   unstructured join that is WAITING (those instances' parents count as arrived inputs);
4. ``C`` is at or above the split of every pending structured join (boundary and start events
   find their split with ``find_ancestor``);
5. ``C`` is neither join-like nor a subprocess task;
6. the workflow as a whole is not refused (see `refusal_reason`);
7. ``C`` is an ancestor of the parent of every task the caller asks to ``keep`` (the steps a
   live task may still be returned to, see `rewind.protected`).

Only the top-level tree is compacted; a loop inside a subprocess still grows. The finished
history is handed to ``on_prune`` as `PrunedTask` records before anything is deleted.
All walks over the tree are iterative, so a deep legacy tree cannot raise ``RecursionError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from copy import deepcopy
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

__all__ = ["PrunedTask", "compact", "refusal_reason"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrunedTask:
    """One finished task removed from the tree, for the application's history table.

    ``data_delta`` holds ``{'updates': ..., 'deletions': ...}`` against the parent's data, as the
    serializer stores it; for a task without a parent (the old root, or the root of a subprocess)
    ``updates`` is the task's full data. ``workflow_id`` is None for a task of the top-level
    workflow, else the id of the task that owned the (deleted) subprocess it belonged to.
    """

    task_id: str
    parent_id: str | None
    spec_name: str
    bpmn_id: str | None
    bpmn_name: str | None
    spec_class: str
    lane: str | None
    manual: bool
    state: str
    last_state_change: float
    internal_data: dict[str, Any]
    data_delta: dict[str, Any]
    workflow_id: str | None = None


PruneCallback = Callable[[list[PrunedTask]], None]


def compact(
    workflow: BpmnWorkflow,
    on_prune: PruneCallback | None = None,
    min_depth: int = 1,
    keep: Iterable[Task] = (),
) -> int:
    """Re-root the task tree at the deepest safe cut point and drop the finished history above.

    ``on_prune`` receives one record per removed task, in creation order, before anything is
    deleted; if it raises, the workflow is left untouched. Nothing happens unless the cut point
    is at least ``min_depth`` levels below the current root (a larger value compacts lazily).
    ``keep`` names finished tasks that must stay resettable: each stays in the tree together
    with its parent (a return or withdrawal resets them with ``reset_from_task_id``).
    Returns the number of tasks removed (0 when refused or nothing to do); tasks of deleted
    subprocesses are included in the count.
    """
    reason = refusal_reason(workflow)
    if reason is not None:
        logger.debug("compaction refused: %s", reason)
        return 0
    anchors = [t.parent for t in keep if t.workflow is workflow and t.parent is not None]
    found = _find_cut(workflow, anchors)
    if found is None:
        return 0
    cut, depth = found
    if depth < max(min_depth, 1):
        return 0
    kept = _subtree_ids(cut)
    pruned = [task for task in workflow.tasks.values() if task.id not in kept]
    if any(task.has_state(TaskState.NOT_FINISHED_MASK) for task in pruned):
        logger.warning("compaction skipped: an unfinished task lies outside the cut's subtree")
        return 0
    entries = _pruned_entries(workflow, pruned)
    if on_prune is not None:
        on_prune([_record(task, owner) for owner, task in entries])
    _delete(workflow, pruned, entries, cut)
    return len(entries)


def refusal_reason(workflow: BpmnWorkflow) -> str | None:
    """Why `compact` leaves this workflow alone, or None if it may be compacted."""
    if workflow.completed:
        return "the workflow is completed"
    if getattr(workflow.spec.start, "trigger_specs", None):
        return "the start task has trigger specs (event-started subprocesses)"
    for spec in workflow.spec.task_specs.values():
        reason = _spec_refusal(spec)
        if reason is not None:
            return reason
    if any(task.has_state(TaskState.ERROR) for task in _all_tasks(workflow)):
        return "a task is in ERROR"
    return None


# --- choosing the cut point -------------------------------------------------------------------


def _spec_refusal(spec: TaskSpec) -> str | None:
    if isinstance(spec, InclusiveGateway) and len(spec.inputs) > 1:
        return f"converging inclusive gateway {spec.name}"
    if (
        isinstance(spec, Join)
        and not isinstance(spec, UnstructuredJoin)
        and spec.split_task is None
    ):
        return f"unstructured non-BPMN join {spec.name}"
    return None


def _find_cut(workflow: BpmnWorkflow, anchors: list[Task] | None = None) -> tuple[Task, int] | None:
    """The deepest safe cut point and its depth, or None when it would be the root itself.
    The cut is also an ancestor (or itself) of every task in ``anchors``."""
    unfinished = [t for t in workflow.tasks.values() if t.has_state(TaskState.NOT_FINISHED_MASK)]
    if not unfinished:
        return None
    extra = _current_join_cancellations(workflow) + list(anchors or [])
    chain = _common_chain(workflow.task_tree, unfinished + extra)
    if chain is None:
        return None
    position = {task.id: index for index, task in enumerate(chain)}
    end = min([len(chain) - 1, *_split_positions(unfinished, position)])
    while end > 0 and not _may_be_root(chain[end]):
        end -= 1
    return (chain[end], end) if end > 0 else None


def _current_join_cancellations(workflow: BpmnWorkflow) -> list[Task]:
    """Rule 3: CANCELLED instances of each WAITING unstructured join, newer than its last run."""
    instances: dict[str, list[Task]] = {}
    for task in workflow.tasks.values():
        if isinstance(task.task_spec, UnstructuredJoin):
            instances.setdefault(task.task_spec.name, []).append(task)
    found: list[Task] = []
    for tasks in instances.values():
        if any(task.state == TaskState.WAITING for task in tasks):
            found.extend(_cancelled_since_last_completion(tasks))
    return found


def _cancelled_since_last_completion(tasks: list[Task]) -> list[Task]:
    completions = [t.last_state_change for t in tasks if t.state == TaskState.COMPLETED]
    since = max(completions, default=float("-inf"))
    return [t for t in tasks if t.state == TaskState.CANCELLED and t.last_state_change > since]


def _common_chain(root: Task, tasks: list[Task]) -> list[Task] | None:
    """The path from the root to the lowest common ancestor of ``tasks`` (None if detached)."""
    chain = list(reversed(list(_ancestry(tasks[0]))))
    if chain[0] is not root:
        return None
    position = {task.id: index for index, task in enumerate(chain)}
    end = len(chain) - 1
    for task in tasks[1:]:
        meeting = next((t for t in _ancestry(task) if t.id in position), None)
        if meeting is None:
            return None
        end = min(end, position[meeting.id])
    return chain[: end + 1]


def _split_positions(unfinished: Iterable[Task], position: dict[UUID, int]) -> list[int]:
    """Rule 4: chain positions of the splits that pending structured joins will look for."""
    found = []
    for task in unfinished:
        spec = task.task_spec
        if isinstance(spec, Join) and spec.split_task is not None:
            split = _find_ancestor(task, spec.split_task)
            if split is not None and split.id in position:
                found.append(position[split.id])
    return found


def _may_be_root(task: Task) -> bool:
    """Rules 1 and 5."""
    spec = task.task_spec
    return (
        task.state == TaskState.COMPLETED
        and not isinstance(spec, Join)
        and not isinstance(spec, SubWorkflowTask)
    )


# --- tree walks (iterative) -------------------------------------------------------------------


def _ancestry(task: Task) -> Iterator[Task]:
    """The task itself, then its parent, and so on up to the root."""
    node: Task | None = task
    while node is not None:
        yield node
        node = node.parent


def _find_ancestor(task: Task, spec_name: str) -> Task | None:
    """Iterative `Task.find_ancestor`: the nearest proper ancestor with this spec name."""
    return next(
        (t for t in _ancestry(task) if t is not task and t.task_spec.name == spec_name), None
    )


def _subtree_ids(top: Task) -> set[UUID]:
    tasks = top.workflow.tasks
    keep: set[UUID] = set()
    stack = [top.id]
    while stack:
        task_id = stack.pop()
        keep.add(task_id)
        task = tasks.get(task_id)
        if task is not None:
            stack.extend(task._children)
    return keep


def _all_tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def _pruned_entries(workflow: BpmnWorkflow, pruned: list[Task]) -> list[tuple[UUID | None, Task]]:
    """(owning subprocess task id, task) for each task to delete; a subprocess follows its owner."""
    entries: list[tuple[UUID | None, Task]] = []
    stack: list[tuple[UUID | None, Iterator[Task]]] = [(None, iter(pruned))]
    while stack:
        owner, tasks = stack[-1]
        task = next(tasks, None)
        if task is None:
            stack.pop()
            continue
        entries.append((owner, task))
        subprocess = workflow.subprocesses.get(task.id)
        if subprocess is not None:
            stack.append((task.id, iter(list(subprocess.tasks.values()))))
    return entries


# --- records and deletion ---------------------------------------------------------------------


def _record(task: Task, owner: UUID | None) -> PrunedTask:
    spec = task.task_spec
    parent = task.parent
    return PrunedTask(
        task_id=str(task.id),
        parent_id=str(parent.id) if parent is not None else None,
        spec_name=spec.name,
        bpmn_id=getattr(spec, "bpmn_id", None),
        bpmn_name=getattr(spec, "bpmn_name", None),
        spec_class=type(spec).__name__,
        lane=getattr(spec, "lane", None),
        manual=bool(spec.manual),
        state=TaskState.get_name(task.state),
        last_state_change=task.last_state_change,
        internal_data=_plain(task.internal_data),
        data_delta=_data_delta(task, parent),
        workflow_id=str(owner) if owner is not None else None,
    )


def _data_delta(task: Task, parent: Task | None) -> dict[str, Any]:
    """The serializer's delta against the parent's data; the full data for a parentless task."""
    if parent is None:
        updates, deletions = task.data, []
    else:
        updates = DeepMerge.get_updated_keys(parent.data, task.data)
        deletions = DeepMerge.get_deleted_keys(parent.data, task.data)
    kept = {key: value for key, value in updates.items() if not _is_opaque(value)}
    return {"updates": _plain(kept), "deletions": _plain(deletions)}


def _is_opaque(value: Any) -> bool:
    """Values the serializer drops from task data (functions, imported modules)."""
    return callable(value) or isinstance(value, ModuleType)


def _plain(value: Any) -> Any:
    """A deep copy with UUIDs as str, sets and tuples as lists, functions and modules as None."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {
            _plain(key) if isinstance(key, UUID) else key: _plain(v) for key, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if _is_opaque(value):
        return None
    return deepcopy(value)


def _delete(
    workflow: BpmnWorkflow,
    pruned: list[Task],
    entries: list[tuple[UUID | None, Task]],
    cut: Task,
) -> None:
    """Delete the pruned tasks and their subprocesses; `workflow.tasks` keeps creation order."""
    for task in pruned:
        if task.id in workflow.subprocesses:
            workflow.delete_subprocess(task)
    for _, task in entries:
        workflow.event_manager.remove_task(task)
    for task in pruned:
        del workflow.tasks[task.id]
    cut._parent = None
    workflow.task_tree = cut
    if workflow.last_task is not None and workflow.last_task.id not in workflow.tasks:
        workflow.last_task = cut
