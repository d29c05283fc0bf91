"""What every command on a human task checks first: the lock, the task's state, who may act,
and the people it names. Refusals change nothing and say why in Chinese."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import directory, queries
from .actor import Actor
from .errors import Conflict, Forbidden, InvalidData, NotFound
from .models import HumanTask, ProcessInstance, User
from .status import Delegation, InstanceStatus, TaskRowState

STATUS_REFUSALS: dict[str, str] = {
    InstanceStatus.SUSPENDED: "流程已挂起，暂不能办理",
    InstanceStatus.COMPLETED: "流程已结束",
    InstanceStatus.TERMINATED: "流程已终止",
    InstanceStatus.ERROR: "流程运行出错，等待管理员处理",
}
_CLOSED: dict[str, str] = {
    TaskRowState.COMPLETED: "该任务已办理，不能重复提交",
    TaskRowState.RETURNED: "该任务已退回",
    TaskRowState.WITHDRAWN: "该任务已撤回",
    TaskRowState.WAITING: "该任务正在等待加签人签署",
    TaskRowState.CANCELLED: "该任务已撤销",
}


def task_row(session: Session, task_id: str) -> HumanTask:
    row = session.get(HumanTask, task_id)
    if row is None:
        raise NotFound("任务不存在")
    return row


def lock(session: Session, row: HumanTask) -> ProcessInstance:
    """Take the instance's row lock (commands on one instance run one at a time), then re-read
    the task: whatever a racing command did to it is visible now."""
    instance = session.scalars(
        select(ProcessInstance).where(ProcessInstance.id == row.instance_id).with_for_update()
    ).one()
    session.refresh(row)
    return instance


def closed_refusal(row: HumanTask) -> str:
    return _CLOSED.get(row.state, "该任务已不能办理")


def require_state(row: HumanTask, *states: TaskRowState) -> None:
    if row.state not in (states or (TaskRowState.OPEN,)):
        raise Conflict(closed_refusal(row))


def require_running(instance: ProcessInstance) -> None:
    if instance.status != InstanceStatus.RUNNING:
        raise Conflict(STATUS_REFUSALS.get(instance.status, "流程不在运行中"))


def check_may_act(
    session: Session, row: HumanTask, actor: "Actor", refusal: str = "您不是该任务的办理人"
) -> None:
    """Only the assignee, or a candidate of an unclaimed task, acts on it (as `complete`).
    A candidate whose colleague holds the task meanwhile is told who (409), not refused (403):
    they may see the task, they were simply overtaken."""
    if queries.may_act_on(session, row, actor):
        return
    # their own 委派: wait for it
    if row.delegation == Delegation.PENDING and row.owner_id == actor.id:
        raise Forbidden(f"{held_refusal(session, row)}，请等待其办理后再确认")
    if held_by_another(session, row, actor):
        raise Conflict(held_refusal(session, row))
    raise Forbidden(refusal)


def held_by_another(session: Session, row: HumanTask, actor: "Actor") -> bool:
    """Someone else holds a task `actor` could otherwise have taken (they are its candidate)."""
    return (
        row.assignee_id is not None
        and row.assignee_id != actor.id
        and queries.is_candidate(session, row, actor)
    )


def held_refusal(session: Session, row: HumanTask) -> str:
    """Who holds the task, by their name in the directory: "该任务已被王晓燕认领"."""
    if row.delegation == Delegation.PENDING and row.owner_id is not None:
        return f"该任务已委派给{display_name(session, row.assignee_id)}办理"
    return f"该任务已被{display_name(session, row.assignee_id)}认领"


def display_name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id is not None else None
    return (user.display_name or user.username) if user is not None else "他人"


def require_text(text: Any, field: str, message: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidData(message, {field: message})
    return text.strip()


def person(session: Session, username: Any, field: str) -> User:
    """An active user named in a request; a wrong name is the request's fault (422)."""
    if not isinstance(username, str) or not username.strip():
        raise InvalidData("请选择人员", {field: "请选择人员"})
    user = directory.user_by_name(session, username)
    if user is None or not user.active:
        message = f"用户“{username}”不存在或已停用"
        raise InvalidData(message, {field: message})
    return user


def people(session: Session, usernames: Any, field: str) -> list[User]:
    if not isinstance(usernames, list) or not usernames:
        raise InvalidData("请选择人员", {field: "请至少选择一人"})
    found: dict[int, User] = {}
    for username in usernames:
        user = person(session, username, field)
        found[user.id] = user
    return list(found.values())


def usernames(session: Session, user_ids: list[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {user_id: name for user_id, name in rows}
