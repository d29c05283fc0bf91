"""Long-running loops through the Engine API: each round is one inbox read and one completion.

SpiffWorkflow 3.2.0 alone would stall a gateway loop past tree depth 1000 (about round 333) and
report the instance complete; these tests show that an instance keeps working, keeps its data
right and keeps its stored state small however many rounds it runs.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import Engine, InvalidData
from engine.models import Event, ProcessInstance
from tests.builders import bpmn, flow, user_task

LOOP_MODEL = Path(__file__).parent / "bpmn" / "loops"
ROUNDS = 1_200
DRAFTER, REVIEWER = "经办人", "审核人"

Deploy = Callable[..., Any]


def state_size(engine: Engine, instance_id: int) -> int:
    with engine.read_session() as session:
        return session.scalar(
            select(func.length(ProcessInstance.state)).where(ProcessInstance.id == instance_id)
        )


def only_task(engine: Engine, user: str) -> dict[str, Any]:
    inbox = engine.tasks(user)
    assert inbox["total"] == 1, inbox
    return inbox["items"][0]


@pytest.mark.slow
def test_a_user_task_loop_runs_1200_rounds_and_ends_exactly_once(engine: Engine) -> None:
    engine.add_user("runner", "pass1234", roles=["bench_team"])
    engine.deploy(LOOP_MODEL)
    started = engine.start("loop_user_task", {"rounds": ROUNDS}, user="runner")
    sizes: dict[int, int] = {}

    for n in range(1, ROUNDS + 1):
        task = only_task(engine, "runner")  # one open task before every round, the last included
        assert task["name"] == "step"
        result = engine.complete(task["id"], {"field_step": f"第 {n} 轮"}, user="runner")
        assert result["status"] == ("completed" if n == ROUNDS else "running"), n
        sizes[n] = state_size(engine, started["id"])

    assert engine.tasks("runner")["total"] == 0
    detail = engine.instance(started["id"])
    assert detail["status"] == "completed"
    assert (detail["data"]["counter"], detail["data"]["field_step"]) == (ROUNDS, "第 1200 轮")
    assert max(size for n, size in sizes.items() if n >= 10) < 3 * sizes[10]


# ------------------------------------------------------- return and redo
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
    "if": {"properties": {"decision": {"const": "return"}}},
    "then": {"required": ["reason"]},
}


def review_process() -> str:
    """draft → review → approved? end : back to draft."""
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("draft", "起草", "f1", "f2", form="draft.json").replace(
            "<bpmn:outgoing>", "<bpmn:incoming>f_back</bpmn:incoming><bpmn:outgoing>"
        )
        + user_task("review", "审核", "f2", "f3", form="review.json")
        + '<bpmn:exclusiveGateway id="gw" name="是否通过" default="f_ok">'
        "<bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f_ok</bpmn:outgoing>"
        "<bpmn:outgoing>f_back</bpmn:outgoing></bpmn:exclusiveGateway>"
        '<bpmn:endEvent id="end"><bpmn:incoming>f_ok</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "draft")
        + flow("f2", "draft", "review")
        + flow("f3", "review", "gw")
        + flow("f_ok", "gw", "end")
        + flow("f_back", "gw", "draft", "decision == 'return'")
    )
    lanes = {DRAFTER: ["start", "draft"], REVIEWER: ["review", "gw", "end"]}
    return bpmn("revise", body, lanes=lanes, name="起草审核")


def test_a_return_and_redo_loop_runs_50_rounds(engine: Engine, deploy: Deploy) -> None:
    engine.add_user("drafter", "pass1234", roles=[DRAFTER])
    engine.add_user("reviewer", "pass1234", roles=[REVIEWER])
    deploy(
        {
            "revise.bpmn": review_process(),
            "draft.json": json.dumps(DRAFT_FORM, ensure_ascii=False),
            "review.json": json.dumps(REVIEW_FORM, ensure_ascii=False),
        }
    )
    started = engine.start("revise", user="drafter")
    rounds = 50

    for n in range(1, rounds + 1):
        draft = only_task(engine, "drafter")
        assert engine.tasks("reviewer")["total"] == 0
        if n > 1:  # the drafter sees why the last draft came back
            assert engine.task(draft["id"], "drafter")["data"]["reason"] == f"第 {n - 1} 稿需修改"
        engine.complete(draft["id"], {"content": f"第 {n} 稿"}, user="drafter")

        review = only_task(engine, "reviewer")
        assert engine.tasks("drafter")["total"] == 0
        if n == 1:
            with pytest.raises(InvalidData) as invalid:
                engine.complete(review["id"], {"decision": "return"}, user="reviewer")
            assert "退回理由" in invalid.value.errors["reason"]
        verdict = (
            {"decision": "approve"}
            if n == rounds
            else {"decision": "return", "reason": f"第 {n} 稿需修改"}
        )
        result = engine.complete(review["id"], verdict, user="reviewer")
        assert result["status"] == ("completed" if n == rounds else "running"), n

    detail = engine.instance(started["id"])
    assert (detail["status"], detail["data"]["content"]) == ("completed", "第 50 稿")
    assert engine.tasks("drafter")["total"] == engine.tasks("reviewer")["total"] == 0
    with engine.read_session() as session:
        completions = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.instance_id == started["id"], Event.kind == "task_completed")
        )
    assert completions == 2 * rounds
