"""退回, 撤回 and an administrator's reset in SpiffWorkflow terms: rewinding the live task tree.

A step is rewound with `BpmnWorkflow.reset_from_task_id` on the task that ran it. The library
sets that task back to READY, with the data it began with, and drops every task below it: the
task that returned it, the next steps, the branches opened after it, a 会签's instances. `Run.save`
then closes their human-task rows. Nothing is duplicated, because the reset task is the only
way forward again, and resubmitting it runs the process forward exactly as the first time.

`targets(task)` lists the steps a live task may go back to: the human steps above it in the
task tree, nearest first. They stay in the same (sub)process, within `MAX_LEVELS` levels, and
within the current round of a loop, so the walk stops where an element repeats. Two shapes
need care:

* A 会签/或签 (a parallel multi-instance user task) is one step. Its instances hang below one
  wrapper task. Going back from any instance starts above the wrapper, so one return returns
  the whole step. Returning *to* a 会签 resets the wrapper, which re-creates every instance.
* A parallel section already merged at a join. Its steps lie below the join only on the branch
  that arrived last. Resetting one of them would leave the join with spent tokens, so it would
  wait for ever or fire at once. Going back into a merged section therefore resets the split
  gateway that opened it, and every branch runs again. Inside a live branch a return stays in
  that branch. Going back to a step before the split takes every branch back.

Compaction would prune the finished tasks a return needs. `protected` names them, and
`Run.save` asks compaction to keep them and their parents: `reset_from_task_id` reads the
parent's data. SpiffWorkflow keeps a reset task's id, but the human-task row of the earlier
run already has that id, so `rewind` gives the task a new one (`_rekey`).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import uuid4

from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .errors import Conflict

MAX_LEVELS = 200  # how far up a return may reach; bounds what compaction has to keep
_LIVE = TaskState.READY | TaskState.WAITING


@dataclass(frozen=True)
class Step:
    """A human step a live task may go back to, and the task to reset to get there."""

    task: Task
    reset_point: Task

    @property
    def element(self) -> str:
        return element(self.task)

    @property
    def title(self) -> str:
        spec = self.task.task_spec
        return str(spec.bpmn_name or element(self.task))


def element(task: Task) -> str:
    spec = task.task_spec
    return str(getattr(spec, "bpmn_id", None) or spec.name)


def is_multi_approval(task: Task) -> bool:
    """A 会签/或签 wrapper: a multi-instance task whose instances are user tasks."""
    spec = task.task_spec
    if not isinstance(spec, MultiInstanceTask):
        return False
    child = task.workflow.spec.task_specs.get(spec.task_spec)
    return bool(child is not None and child.manual)


def is_human_step(task: Task) -> bool:
    return bool(task.task_spec.manual) or is_multi_approval(task)


def own_step(task: Task) -> Task:
    """The step a task belongs to: its 会签 wrapper for an instance, else the task itself."""
    parent = task.parent
    if (
        parent is not None
        and is_multi_approval(parent)
        and task.task_spec.name == parent.task_spec.task_spec
    ):
        return parent
    return task


def fellow_votes(task: Task) -> list[Task]:
    """The other instances of the 会签/或签 `task` votes in, this round (none for a single
    step). A live wrapper keeps all its instances: compaction cuts only above live tasks."""
    wrapper = own_step(task)
    if wrapper is task:
        return []
    return [t for t in wrapper.children if t is not task and t.task_spec is task.task_spec]


def votes_in(spec: TaskSpec) -> bool:
    """Whether a user task spec is the instance spec of a 会签/或签 (a parallel or sequential
    multi-instance user task), without loading any instance."""
    return any(
        isinstance(other, MultiInstanceTask) and other.task_spec == spec.name
        for other in spec._wf_spec.task_specs.values()
    )


def targets(task: Task, *, same_round: bool = True, limit: int = MAX_LEVELS) -> list[Step]:
    """The finished human steps above `task`, nearest first (see the module docstring)."""
    start = own_step(task)
    seen = {element(start)}
    found: list[Step] = []
    inside: list[Task] = []  # steps in a merged parallel section, waiting for its split
    depth = 0
    for node in _ancestors(start, limit):
        if same_round and element(node) in seen:
            break  # an earlier round of a loop
        seen.add(element(node))
        if depth and _is_split(node):
            depth -= 1
            if depth == 0:
                found.extend(Step(t, node) for t in inside if _resettable(node))
                inside = []
        if _is_join(node):
            depth += 1
        if is_human_step(node) and node.state == TaskState.COMPLETED:
            if depth:
                inside.append(node)
            elif _resettable(node):
                found.append(Step(node, node))
    return found


def _resettable(reset_point: Task) -> bool:
    """`reset_from_task_id` starts the task again from its parent's data: the root of a
    compacted tree (an earlier loop round, reachable by an administrator's reset) has none."""
    return reset_point.parent is not None


def protected(workflow: BpmnWorkflow) -> list[Task]:
    """The reset points compaction must keep: the farthest target of every live task."""
    keep = []
    for task in list(workflow.tasks.values()):
        if task.state & _LIVE and not _is_join(task):
            steps = targets(task)
            if steps:
                keep.append(steps[-1].reset_point)
    return keep


def rewind(reset_point: Task) -> None:
    """Reset the workflow to `reset_point`; everything below it leaves the tree."""
    if reset_point.parent is None:  # an instance compacted before returns were supported
        raise Conflict("该步骤的运行记录已归档，不能再退回到这里，请联系管理员")
    top = reset_point.workflow.top_workflow
    top.reset_from_task_id(reset_point.id)
    _forget_dropped_events(top)
    if reset_point.task_spec.manual:
        _rekey(reset_point)


def _forget_dropped_events(top: BpmnWorkflow) -> None:
    """3.2.0's reset drops tasks from the tree but leaves the waiting ones (a boundary timer of
    a later step) in the event manager; the next `refresh_timers` then updates a task with no
    parent and fails. Forget every waiting task that is no longer in a live workflow."""
    workflows = {id(top), *(id(sp) for sp in top.subprocesses.values())}
    manager = top.event_manager
    for task_id, task in list(manager.tasks.items()):
        if id(task.workflow) not in workflows or task.workflow.tasks.get(task_id) is not task:
            manager.remove_task(task)


def is_below(task: Task, ancestor: Task) -> bool:
    """Whether `ancestor` is above `task` in its tree (iteratively: trees may be deep)."""
    return any(node is ancestor for node in _ancestors(task, 10**6))


def live_human_tasks(below: Task) -> Iterator[Task]:
    """READY user tasks in the subtree of `below` (its own subprocess tree only)."""
    stack = list(below.children)
    while stack:
        task = stack.pop()
        if task.task_spec.manual and task.state == TaskState.READY:
            yield task
        stack.extend(task.children)


def finished_human_tasks(below: Task) -> Iterator[Task]:
    """COMPLETED user tasks in the subtree of `below`."""
    stack = list(below.children)
    while stack:
        task = stack.pop()
        if task.task_spec.manual and task.state == TaskState.COMPLETED:
            yield task
        stack.extend(task.children)


def _ancestors(task: Task, limit: int) -> Iterator[Task]:
    node = task.parent
    for _ in range(limit):
        if node is None:
            return
        yield node
        node = node.parent


def _is_join(task: Task) -> bool:
    spec = task.task_spec
    return isinstance(spec, ParallelGateway | InclusiveGateway) and len(spec.inputs) > 1


def _is_split(task: Task) -> bool:
    spec = task.task_spec
    return isinstance(spec, ParallelGateway | InclusiveGateway) and len(spec.outputs) > 1


def _rekey(task: Task) -> None:
    """Give a reset task a fresh id. `workflow.tasks` keeps its order: the serializer rebuilds
    each task's data from its parent's, so parents must come first."""
    workflow = task.workflow
    old, new = task.id, uuid4()
    items = [(new if key == old else key, value) for key, value in workflow.tasks.items()]
    workflow.tasks.clear()
    workflow.tasks.update(items)
    task.id = new
    parent = task.parent
    if parent is not None:
        parent._children = [new if child == old else child for child in parent._children]
    for child_id in task._children:
        workflow.tasks[child_id]._parent = new
