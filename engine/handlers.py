"""Service-task handlers: the named, documented things BPMN cannot say, registered in one place.

A BPMN service task names a handler (`spiffworkflow:serviceTaskOperator id="start_process"`);
its parameters are expressions on the task data. Each handler runs inside the command that
reached the service task, in the same transaction. processes/README.md documents them for
designers.
"""

from typing import Any

from sqlalchemy import select

from . import audit, directory, documents, items, notifications, urging
from .errors import EngineError
from .models import HumanTask, ProcessVersion, Unit
from .runtime import Run, start_instance  # the same start path as a person's start
from .service_tasks import handler


def _require(values: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if values.get(n) in (None, "")]
    if missing:
        raise EngineError(f"服务任务缺少参数：{'、'.join(missing)}")


# ----------------------------------------------------------------- handlers
@handler("start_process")
def start_process(run: Run, values: dict[str, Any]) -> list[int]:
    """Start child instances of `process`: one per dict in `items`, or one with `data`."""
    _require(values, "process")
    session, ctx = run.session, run.ctx
    version = session.scalars(
        select(ProcessVersion)
        .where(ProcessVersion.key == values["process"])
        .order_by(ProcessVersion.version.desc())
        .limit(1)
    ).first()
    if version is None:
        raise EngineError(f"要启动的流程 {values['process']} 尚未部署")
    batch = values.get("items")
    if batch is None:
        batch = [values.get("data") or {}]
    if not isinstance(batch, list) or not all(isinstance(item, dict) for item in batch):
        raise EngineError("start_process 的 items 必须是对象列表")
    started = []
    for item in batch:
        # Scripts cannot see instance ids; the child learns its parent from its start data.
        data = {**item, "parent_instance_id": run.instance.id}
        title = data.get(values["title"]) if values.get("title") else data.get("title")
        child = start_instance(
            session,
            ctx,
            ctx.specs,
            version.id,
            data,
            title=str(title) if title else None,
            parent_instance_id=run.instance.id,
        )
        started.append(child.instance.id)
    audit.record(
        session,
        "children_started",
        ctx.now,
        instance_id=run.instance.id,
        detail={"process": values["process"], "instances": started},
    )
    return started


@handler("record_item")
def record_item(run: Run, values: dict[str, Any]) -> dict[str, Any]:
    """Create or update this instance's tracked item (a ledger row)."""
    _require(values, "kind")
    fields = values.get("fields") or {}
    if not isinstance(fields, dict):
        raise EngineError("record_item 的 fields 必须是对象")
    item = items.record(
        run.session,
        run.instance.id,
        str(values["kind"]),
        str(values.get("key") or ""),
        fields,
        run.ctx.now,
    )
    return {
        "id": item.id,
        "status": item.status,
        "overdue_count": item.overdue_count,
        "extension_count": item.extension_count,
        "light": items.light(item, run.ctx.now, run.ctx.calendar),
        items.SNAPSHOT_KEY: items.snapshot(item),  # what a 退回 puts the ledger back to
    }


@handler("notify")
def notify(run: Run, values: dict[str, Any]) -> int:
    """In-app notifications to a role (optionally in one unit) and/or named users."""
    _require(values, "title")
    session = run.session
    targets: set[int] = set()
    if values.get("role"):
        unit = directory.find_unit(session, values["unit"]) if values.get("unit") else None
        if values.get("unit") and unit is None:
            raise EngineError(f"单位“{values['unit']}”不存在")
        targets |= set(directory.holders(session, str(values["role"]), unit.id if unit else None))
    for username in values.get("users") or []:
        user = directory.user_by_name(session, str(username))
        if user is None:
            raise EngineError(f"用户“{username}”不存在")
        targets.add(user.id)
    return notifications.notify(
        session,
        targets,
        str(values.get("kind") or "notice"),
        str(values["title"]),
        run.ctx.now,
        body=values.get("body"),
        instance_id=run.instance.id,
    )


@handler("urge")
def urge(run: Run, values: dict[str, Any]) -> dict[str, int]:
    """催办 an open user task of this instance. `escalate` lists roles to tell as well
    (`角色@unit` narrows a role to the task's unit), or is true for the process's
    `escalate_to` from duban.toml."""
    _require(values, "task")
    escalate_to = _escalation_roles(run, values.get("escalate"))
    session, ctx = run.session, run.ctx
    run.mirror_ready_tasks()  # a task that became ready in this same command has no row yet
    tasks = list(
        session.scalars(
            select(HumanTask).where(
                HumanTask.instance_id == run.instance.id,
                HumanTask.name == values["task"],
                HumanTask.state == "open",
            )
        )
    )
    message = str(values.get("message") or "") or None
    sent = 0
    for task in tasks:
        also = _escalation_people(session, task, escalate_to)
        sent += urging.urge_task(
            session,
            ctx.now,
            task,
            message=message,
            kind="escalation" if escalate_to else "reminder",
            title=f"督办升级：{task.title}（已逾期未办）" if escalate_to else None,
            also=also,
        )
    return {"urged": len(tasks), "notified": sent}


def _escalation_roles(run: Run, escalate: Any) -> list[str]:
    if not escalate:
        return []
    if isinstance(escalate, list):
        return [str(role) for role in escalate]
    configured = run.version.settings.get("escalate_to")
    if not configured:
        raise EngineError("未配置督办升级对象：请在 duban.toml 的 [defaults] 中设置 escalate_to")
    return [str(role) for role in configured]


def _escalation_people(session: Any, task: HumanTask, escalate_to: list[str]) -> set[int]:
    """Holders of each role; `角色@unit` narrows a role to the urged task's unit."""
    people: set[int] = set()
    for entry in escalate_to:
        role, _, scope = entry.partition("@")
        if scope == "unit" and task.unit_id is None:
            continue
        people |= set(directory.holders(session, role, task.unit_id if scope == "unit" else None))
    return people


@handler("list_units")
def list_units(run: Run, values: dict[str, Any]) -> list[dict[str, Any]]:
    _require(values, "kind")
    rows = run.session.scalars(select(Unit).where(Unit.kind == values["kind"]).order_by(Unit.id))
    return [{"code": u.code, "name": u.name, "kind": u.kind, **(u.attributes or {})} for u in rows]


@handler("render_document")
def render_document(run: Run, values: dict[str, Any]) -> dict[str, Any]:
    """Render a .docx template deployed with this process and keep it with the instance."""
    _require(values, "kind", "template")
    return documents.render_for(run, values)
