"""Approval steps as BPMN declares them: 会签/或签, return targets, 抄送, who may 催办.

Checked and prepared once, when a process is parsed; the operations read them at run time.

**会签 / 或签.** A multi-person approval step is a user task with multi-instance loop
characteristics over a list of usernames: one task per approver, each assigned by the task's
`assignee` property naming the input data item::

    <bpmn:userTask id="countersign" name="会签">
      <spiffworkflow:property name="assignee" value="approver"/>
      <spiffworkflow:property name="approvalMode" value="all"/>   <!-- or any -->
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:loopDataInputRef>approvers</bpmn:loopDataInputRef>
        <bpmn:inputDataItem id="approver" name="approver"/>

`approvalMode` = `all` (会签, the default) completes the step when every approver has approved;
`any` (或签) completes it at the first approval and cancels the other approvers' tasks. A BPMN
`completionCondition` wins over `approvalMode` (e.g. a 票签 share of approvals). In both
modes one approver's return (`decision` = `return` in the form, or the 退回 operation) returns
the whole step. If the step declares an output collection and the form does not fill its
output item, the engine stores each approver's submission there, with `user` set.

**Other user-task properties.** `returnTargets`: comma-separated ids of the earlier steps this
step may be returned to, besides the previous step and the initiator (always allowed).
`ccUsers`: an expression giving a username or a list of them, and `ccRoles`: comma-separated
roles; both are copied (抄送) when the step completes. `urgeRoles`: comma-separated roles that
may 催办 this step, besides the initiator, earlier participants and administrators.
`transferRoles`: comma-separated roles whose holders may also be handed this step by 转办 / 委派
(handover.py).
"""

from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask

from .errors import DefinitionError

APPROVAL_MODES = ("all", "any")
INITIATOR = "initiator"


def properties(task_spec: Any) -> dict[str, str]:
    return dict((getattr(task_spec, "extensions", None) or {}).get("properties") or {})


def listed(value: str | None) -> list[str]:
    """A comma-separated property value (，too) as a list."""
    text = (value or "").replace("，", ",")
    return [part.strip() for part in text.split(",") if part.strip()]


def prepare(spec: Any, subprocess_specs: dict[str, Any], bpmn_file: str) -> None:
    """Check the approval properties of every task and prepare multi-instance steps."""
    for process in [spec, *(s for s in subprocess_specs.values() if s is not None)]:
        user_tasks = {
            t.bpmn_id
            for t in process.task_specs.values()
            if t.manual and getattr(t, "bpmn_id", None)
        }
        for task_spec in list(process.task_specs.values()):
            if isinstance(task_spec, LoopTask):
                _prepare_loop(process, task_spec, bpmn_file)
            elif _misplaced_mode(process, task_spec):
                raise _error(
                    task_spec, bpmn_file, "approvalMode 只能用于多实例用户任务（会签/或签）"
                )
            _check_return_targets(task_spec, user_tasks, bpmn_file)


def _misplaced_mode(process: Any, task_spec: Any) -> bool:
    if "approvalMode" not in properties(task_spec):
        return False
    return not isinstance(_wrapper_of(process, task_spec), MultiInstanceTask)


def _prepare_loop(process: Any, wrapper: Any, bpmn_file: str) -> None:
    child = process.task_specs[wrapper.task_spec]
    # 3.2.0 connects an instance's completion to its wrapper only when it creates an instance;
    # an engine that loads a half-done step from the database must connect it itself.
    if not child.completed_event.is_connected(wrapper.merge_child):
        child.completed_event.connect(wrapper.merge_child)
    mode = properties(child).get("approvalMode")
    if mode is None:
        return
    if mode not in APPROVAL_MODES or not isinstance(wrapper, MultiInstanceTask):
        raise _error(
            child, bpmn_file, f"approvalMode 应为 all（会签）或 any（或签），而不是“{mode}”"
        )
    if mode == "any" and wrapper.condition is None:
        wrapper.condition = "True"  # evaluated after each approval: the first one completes


def _wrapper_of(process: Any, child: Any) -> Any:
    for task_spec in process.task_specs.values():
        if isinstance(task_spec, LoopTask) and task_spec.task_spec == child.name:
            return task_spec
    return None


def _check_return_targets(task_spec: Any, user_tasks: set[str], bpmn_file: str) -> None:
    unknown = [
        t
        for t in listed(properties(task_spec).get("returnTargets"))
        if t != INITIATOR and t not in user_tasks
    ]
    if unknown:
        raise _error(
            task_spec, bpmn_file, f"returnTargets 引用了不存在的用户任务：{'、'.join(unknown)}"
        )


def _error(task_spec: Any, bpmn_file: str, message: str) -> DefinitionError:
    name = getattr(task_spec, "bpmn_name", None) or getattr(task_spec, "bpmn_id", None)
    return DefinitionError(
        f"任务“{name}”：{message}", file=bpmn_file, element=getattr(task_spec, "bpmn_id", None)
    )


def task_spec_named(spec: Any, subprocess_specs: dict[str, Any], element: str) -> Any:
    """The user task spec whose BPMN id is `element` (a 会签 step: its instances' spec)."""
    for process in [spec, *(s for s in subprocess_specs.values() if s is not None)]:
        for task_spec in process.task_specs.values():
            if task_spec.manual and getattr(task_spec, "bpmn_id", None) == element:
                return task_spec
    return None
