"""A small process bundle for the designer's tests: one process, a form, a scenario file."""

import json
from typing import Any

import yaml

from engine import Engine
from tests.builders import bpmn, flow, user_task

FORM = json.dumps(
    {
        "title": "请假申请",
        "type": "object",
        "properties": {"days": {"title": "天数", "type": "integer", "minimum": 1}},
        "required": ["days"],
    },
    ensure_ascii=False,
)

DIRECTORY: dict[str, Any] = {
    "roles": [
        {"name": "系统管理员", "sees_all": True},
        {"name": "流程设计员"},
        {"name": "指挥办工作人员"},
        {"name": "主任", "sees_all": True},
    ],
    "units": [{"name": "指挥办", "code": "zhb", "kind": "office"}],
    "users": [
        {"username": "admin", "name": "管理员", "unit": "zhb", "roles": ["系统管理员"]},
        {"username": "designer", "name": "设计员", "unit": "zhb", "roles": ["流程设计员"]},
        {"username": "staff", "name": "工作人员", "unit": "zhb", "roles": ["指挥办工作人员"]},
        {"username": "director", "name": "主任", "unit": "zhb", "roles": ["主任"]},
    ],
}


def leave_bpmn(
    fill_name: str = "填写申请",
    *,
    due: str = "2",
    review: bool = True,
    lane: str = "主任",
    orphan: bool = False,
) -> str:
    """start → fill (staff) → [review (director)] → end; `orphan` adds an unreachable task."""
    body = '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    body += user_task(
        "fill", fill_name, "f1", "f2", form="forms/leave/form.json", dueInWorkdays=due
    )
    staff = ["start", "fill"]
    boss: list[str] = []
    if review:
        body += user_task("review", "审批", "f2", "f3", form="forms/leave/form.json")
        body += flow("f1", "start", "fill") + flow("f2", "fill", "review")
        body += flow("f3", "review", "end")
        body += '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
        boss = ["review", "end"]
    else:
        body += flow("f1", "start", "fill") + flow("f2", "fill", "end")
        body += '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        staff.append("end")
    if orphan:
        body += user_task("lost", "孤立步骤", "fx", "fy", form="forms/leave/form.json")
        staff.append("lost")
    lanes = {"指挥办工作人员": staff}
    if boss:
        lanes[lane] = boss
    return bpmn("leave", body, lanes, name="请假")


def scenario(expect_after_fill: str = "review") -> str:
    steps: list[dict[str, Any]] = [
        {"expect": {"tasks": ["fill"]}},
        {"complete": "fill", "as": "staff", "data": {"days": 2}},
    ]
    if expect_after_fill == "end":
        steps.append({"expect": {"status": "completed"}})
    else:
        steps.append({"expect": {"tasks": [expect_after_fill]}})
    doc = {
        "process": "leave",
        "scenarios": [{"name": "填写后送审", "start": {"as": "staff", "data": {}}, "steps": steps}],
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def leave_files(**kwargs: Any) -> dict[str, str]:
    expect = kwargs.pop("expect", "review" if kwargs.get("review", True) else "end")
    return {
        "leave.bpmn": leave_bpmn(**kwargs),
        "forms/leave/form.json": FORM,
        "leave.scenarios.yaml": scenario(expect),
    }


def deploy_leave(engine: Engine, files: dict[str, str]) -> dict[str, Any]:
    """Save `files` as the designer's draft of `leave`, check it (it must pass) and deploy it."""
    engine.save_draft("leave", files, user="designer")
    assert engine.check_draft("leave", user="designer")["ok"]
    return engine.deploy_draft("leave", user="designer")
