"""Inline BPMN for the approval-operation tests: a sequential approval, one with parallel
branches, and a 会签/或签 step; the people who work them; small helpers shared by
test_operations.py and test_api_operations.py."""

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import Conflict, Engine, EngineError
from engine.models import Event, HumanTask, Notification, Opinion, User
from tests.builders import bpmn, flow, user_task

DRAFTER, REVIEWER, LEADER, ADMIN = "经办人", "审核人", "分管领导", "系统管理员"
# carol's role: no lane names it, but every approval step lists it in `transferRoles`, so carol
# may be handed (转办/委派) any of them while never being a candidate of one herself.
HELPER = "协办人"
HAND_OVER = {"transferRoles": HELPER}

DRAFT_FORM = {
    "title": "起草",
    "type": "object",
    "required": ["content"],
    "properties": {"content": {"type": "string", "title": "正文", "minLength": 1}},
}
REVIEW_FORM = {
    "title": "审核",
    "type": "object",
    "required": ["decision"],
    "properties": {
        "decision": {"type": "string", "title": "审核意见", "enum": ["approve", "return"]},
        "reason": {"type": "string", "title": "退回理由", "minLength": 1},
    },
}
FORMS = {
    "draft.json": json.dumps(DRAFT_FORM, ensure_ascii=False),
    "review.json": json.dumps(REVIEW_FORM, ensure_ascii=False),
}
APPROVE = {"decision": "approve"}
CHINESE = re.compile(r"[\u4e00-\u9fff]")
Deploy = Callable[..., Any]


def start(outgoing: str = "f1") -> str:
    return (
        f'<bpmn:startEvent id="start"><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:startEvent>'
    )


def end(incoming: str) -> str:
    return f'<bpmn:endEvent id="end"><bpmn:incoming>{incoming}</bpmn:incoming></bpmn:endEvent>'


def gateway(gateway_id: str, incoming: list[str], outgoing: list[str]) -> str:
    refs = "".join(f"<bpmn:incoming>{i}</bpmn:incoming>" for i in incoming)
    refs += "".join(f"<bpmn:outgoing>{o}</bpmn:outgoing>" for o in outgoing)
    return f'<bpmn:parallelGateway id="{gateway_id}">{refs}</bpmn:parallelGateway>'


def draft() -> str:
    return user_task("draft", "起草", "f1", "f2", form="draft.json")


def sequential(key: str = "seq", **sign_off_props: str) -> str:
    """起草 (经办人) → 审核 (审核人) → 领导签发 (分管领导)."""
    body = (
        start()
        + draft()
        + user_task("review", "审核", "f2", "f3", form="review.json", **HAND_OVER)
        + user_task(
            "sign_off", "领导签发", "f3", "f4", form="review.json", **HAND_OVER, **sign_off_props
        )
        + end("f4")
        + flow("f1", "start", "draft")
        + flow("f2", "draft", "review")
        + flow("f3", "review", "sign_off")
        + flow("f4", "sign_off", "end")
    )
    lanes = {DRAFTER: ["start", "draft"], REVIEWER: ["review"], LEADER: ["sign_off", "end"]}
    return bpmn(key, body, lanes=lanes, name="发文审批")


def parallel() -> str:
    """起草 → ‖ 初审 → 复核 (审核人) ‖ 领导审核 (分管领导) ‖ → 办结 (经办人)."""
    body = (
        start()
        + draft()
        + gateway("split", ["f2"], ["fa", "fb"])
        + user_task("review_a", "初审", "fa", "fa2", form="review.json", **HAND_OVER)
        + user_task("check_a", "复核", "fa2", "fa3", form="review.json", **HAND_OVER)
        + user_task("review_b", "领导审核", "fb", "fb2", form="review.json", **HAND_OVER)
        + gateway("join", ["fa3", "fb2"], ["f5"])
        + user_task("final", "办结", "f5", "f6")
        + end("f6")
        + flow("f1", "start", "draft")
        + flow("f2", "draft", "split")
        + flow("fa", "split", "review_a")
        + flow("fa2", "review_a", "check_a")
        + flow("fa3", "check_a", "join")
        + flow("fb", "split", "review_b")
        + flow("fb2", "review_b", "join")
        + flow("f5", "join", "final")
        + flow("f6", "final", "end")
    )
    lanes = {
        DRAFTER: ["start", "draft", "split", "join", "final", "end"],
        REVIEWER: ["review_a", "check_a"],
        LEADER: ["review_b"],
    }
    return bpmn("par", body, lanes=lanes, name="并行审核")


def countersign(key: str = "sign", mode: str = "all") -> str:
    """起草 → 会签/或签 (one task per name in `approvers`) → 办结 (经办人)."""
    props = (
        "<bpmn:extensionElements><spiffworkflow:properties>"
        '<spiffworkflow:property name="formJsonSchemaFilename" value="review.json"/>'
        '<spiffworkflow:property name="assignee" value="approver"/>'
        f'<spiffworkflow:property name="approvalMode" value="{mode}"/>'
        f'<spiffworkflow:property name="transferRoles" value="{HELPER}"/>'
        "</spiffworkflow:properties></bpmn:extensionElements>"
    )
    multi = (
        f'<bpmn:userTask id="countersign" name="{"会签" if mode == "all" else "或签"}">{props}'
        "<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>"
        "<bpmn:multiInstanceLoopCharacteristics>"
        "<bpmn:loopDataInputRef>approvers</bpmn:loopDataInputRef>"
        "<bpmn:loopDataOutputRef>votes</bpmn:loopDataOutputRef>"
        '<bpmn:inputDataItem id="approver" name="approver"/>'
        '<bpmn:outputDataItem id="vote" name="vote"/>'
        "</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>"
    )
    body = (
        start()
        + draft()
        + multi
        + user_task("final", "办结", "f3", "f4")
        + end("f4")
        + flow("f1", "start", "draft")
        + flow("f2", "draft", "countersign")
        + flow("f3", "countersign", "final")
        + flow("f4", "final", "end")
    )
    lanes = {DRAFTER: ["start", "draft", "final", "end"], REVIEWER: ["countersign"]}
    return bpmn(key, body, lanes=lanes, name="会签审批")


def add_people(engine: Engine) -> None:
    engine.add_user("alice", "pass1234", name="张三", roles=[DRAFTER])
    engine.add_user("bob", "pass1234", name="李四", roles=[DRAFTER])
    engine.add_user("rev1", "pass1234", name="审核甲", roles=[REVIEWER])
    engine.add_user("rev2", "pass1234", name="审核乙", roles=[REVIEWER])
    engine.add_user("rev3", "pass1234", name="审核丙", roles=[REVIEWER])
    engine.add_user("lead", "pass1234", name="王领导", roles=[LEADER])
    engine.add_user("carol", "pass1234", name="赵六", roles=[HELPER])
    engine.add_user("admin", "pass1234", roles=[ADMIN])


def deploy_all(deploy: Callable[..., Any]) -> None:
    deploy(
        {
            "seq.bpmn": sequential(),
            "seq_targets.bpmn": sequential("seq_targets", returnTargets="draft"),
            "par.bpmn": parallel(),
            "sign_all.bpmn": countersign("sign_all", "all"),
            "sign_any.bpmn": countersign("sign_any", "any"),
            **FORMS,
        }
    )


# ------------------------------------------------------------------ reading state
def todo(engine: Engine, user: str, instance_id: int | None = None) -> list[dict[str, Any]]:
    items = engine.tasks(user)["items"]
    return [t for t in items if instance_id is None or t["instance_id"] == instance_id]


def only(engine: Engine, user: str, instance_id: int, name: str | None = None) -> dict[str, Any]:
    items = [t for t in todo(engine, user, instance_id) if name is None or t["name"] == name]
    assert len(items) == 1, items
    return items[0]


def open_rows(engine: Engine, instance_id: int) -> list[tuple[str, str | None]]:
    """(element, assignee) of every open task row, sorted."""
    with engine.read_session() as session:
        rows = session.execute(
            select(HumanTask.name, User.username)
            .outerjoin(User, User.id == HumanTask.assignee_id)
            .where(HumanTask.instance_id == instance_id, HumanTask.state == "open")
        ).all()
    return sorted((name, user) for name, user in rows)


def snapshot(engine: Engine, instance_id: int) -> tuple[Any, ...]:
    """Everything a refused command must leave exactly as it was."""
    with engine.read_session() as session:
        rows = session.execute(
            select(
                HumanTask.id,
                HumanTask.state,
                HumanTask.assignee_id,
                HumanTask.delegation,
                HumanTask.urge_count,
            )
            .where(HumanTask.instance_id == instance_id)
            .order_by(HumanTask.id)
        ).all()
        counts = [
            session.scalar(select(func.count()).select_from(model))
            for model in (Event, Opinion, Notification)
        ]
    detail = engine.instance(instance_id)
    return detail["status"], detail["revision"], detail["data"], tuple(rows), tuple(counts)


def start_and_draft(engine: Engine, process: str = "seq", **data: Any) -> int:
    """alice starts `process` and submits her draft; returns the instance id."""
    started = engine.start(process, data, user="alice")
    task = only(engine, "alice", started["id"], "draft")
    engine.complete(task["id"], {"content": "初稿"}, user="alice")
    return started["id"]


# ------------------------------------------------------------------ fixtures and checks
@pytest.fixture
def ready(engine: Engine, deploy: Deploy) -> Engine:
    add_people(engine)
    deploy_all(deploy)
    return engine


def notified(engine: Engine, user: str, kind: str) -> list[dict[str, Any]]:
    return [n for n in engine.notifications(user)["items"] if n["kind"] == kind]


def opinions(engine: Engine, instance_id: int) -> list[tuple[str, str | None, str | None]]:
    return [(o["kind"], o["actor"], o["text"]) for o in engine.instance(instance_id)["opinions"]]


def refused(
    engine: Engine, instance_id: int, error: type[EngineError], command: Callable[[], object]
) -> EngineError:
    """Run a command that must be refused; it changes nothing and says why in Chinese."""
    before = snapshot(engine, instance_id)
    with pytest.raises(error) as caught:
        command()
    assert CHINESE.search(caught.value.message), caught.value.message
    assert snapshot(engine, instance_id) == before
    return caught.value


def review_task(engine: Engine, instance_id: int, user: str = "rev1") -> str:
    task = only(engine, user, instance_id, "review")
    engine.claim(task["id"], user)
    return task["id"]


def race(*commands: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(commands))

    def attempt(command: Callable[[], object]) -> object:
        barrier.wait(timeout=30)
        try:
            return command()
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(len(commands)) as pool:
        futures = [pool.submit(attempt, command) for command in commands]
        return [future.result(timeout=120) for future in futures]
