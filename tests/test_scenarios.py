"""The scenario runner and the service-task handlers, on a small process written for the test."""

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.builders import BPMN_HEADER
from webui.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def _service(
    task_id: str, name: str, incoming: str, outgoing: str, operator: str, result: str, **params: str
) -> str:
    parameters = "".join(
        f'<spiffworkflow:parameter id="{k}" type="any" value="{v}"/>' for k, v in params.items()
    )
    return (
        f'<bpmn:serviceTask id="{task_id}" name="{name}"><bpmn:extensionElements>'
        f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="{result}">'
        f"<spiffworkflow:parameters>{parameters}</spiffworkflow:parameters>"
        "</spiffworkflow:serviceTaskOperator></bpmn:extensionElements>"
        f"<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing>"
        "</bpmn:serviceTask>"
    )


def _flow(flow_id: str, source: str, target: str) -> str:
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}"/>'


SIGN = (
    '<bpmn:userTask id="sign" name="签收"><bpmn:extensionElements><spiffworkflow:properties>'
    '<spiffworkflow:property name="unit" value="lead_unit"/>'
    '<spiffworkflow:property name="dueInWorkdays" value="1"/>'
    "</spiffworkflow:properties></bpmn:extensionElements>"
    "<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>"
    '<bpmn:boundaryEvent id="late" name="超时未签收" attachedToRef="sign" cancelActivity="false">'
    "<bpmn:outgoing>f5</bpmn:outgoing><bpmn:timerEventDefinition>"
    "<bpmn:timeDate>workdays_after(1)</bpmn:timeDate></bpmn:timerEventDefinition>"
    "</bpmn:boundaryEvent>"
)

ITEM = (
    f'{BPMN_HEADER}<bpmn:process id="tiny_item" name="小事项" isExecutable="true">'
    '<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="指挥办工作人员">'
    "<bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>open_item</bpmn:flowNodeRef>"
    "<bpmn:flowNodeRef>close</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>"
    "<bpmn:flowNodeRef>remind</bpmn:flowNodeRef><bpmn:flowNodeRef>reminded</bpmn:flowNodeRef>"
    "<bpmn:flowNodeRef>spawn</bpmn:flowNodeRef></bpmn:lane>"
    '<bpmn:lane id="l2" name="联络员"><bpmn:flowNodeRef>sign</bpmn:flowNodeRef>'
    "<bpmn:flowNodeRef>late</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>"
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + _service(
        "open_item",
        "登记台账",
        "f1",
        "f2",
        "record_item",
        "item",
        kind="'督办事项'",
        fields="{'title': title, 'lead_unit': lead_unit, 'deadline': deadline, 'status': '待签收'}",
    )
    + SIGN
    + _service(
        "close",
        "销号",
        "f3",
        "f6",
        "record_item",
        "item",
        kind="'督办事项'",
        fields="{'closed': True, 'status': '已销号'}",
    )
    + _service(
        "spawn",
        "派生下级事项",
        "f6",
        "f4",
        "start_process",
        "children",
        process="'tiny_child'",
        items="[{'title': '下级'}]",
    )
    + '<bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
    + _service(
        "remind", "催办", "f5", "f7", "urge", "urged", task="'sign'", escalate="['单位负责人@unit']"
    )
    + '<bpmn:endEvent id="reminded"><bpmn:incoming>f7</bpmn:incoming></bpmn:endEvent>'
    + _flow("f1", "start", "open_item")
    + _flow("f2", "open_item", "sign")
    + _flow("f3", "sign", "close")
    + _flow("f6", "close", "spawn")
    + _flow("f4", "spawn", "end")
    + _flow("f5", "late", "remind")
    + _flow("f7", "remind", "reminded")
    + "</bpmn:process></bpmn:definitions>"
)

CHILD = (
    f'{BPMN_HEADER}<bpmn:process id="tiny_child" name="下级事项" isExecutable="true">'
    '<bpmn:startEvent id="s"><bpmn:outgoing>g1</bpmn:outgoing></bpmn:startEvent>'
    '<bpmn:userTask id="do" name="办理"><bpmn:incoming>g1</bpmn:incoming>'
    "<bpmn:outgoing>g2</bpmn:outgoing></bpmn:userTask>"
    '<bpmn:endEvent id="e"><bpmn:incoming>g2</bpmn:incoming></bpmn:endEvent>'
    + _flow("g1", "s", "do")
    + _flow("g2", "do", "e")
    + "</bpmn:process></bpmn:definitions>"
)

SCENARIOS = {
    "process": "tiny_item",
    "scenarios": [
        {
            "name": "签收后销号并派生下级",
            "start": {
                "as": "staff",
                "data": {"title": "修路", "lead_unit": "nyncj", "deadline": "2026-12-31"},
            },
            "steps": [
                {
                    "expect": {
                        "tasks": ["签收"],
                        "item": {"status": "待签收", "light": "green", "lead_unit": "农业农村局"},
                    }
                },
                {"complete": "sign", "as": "unit_liaison"},
                {
                    "expect": {
                        "status": "completed",
                        "children": {"tiny_child": 1},
                        "item": {"status": "已销号"},
                    }
                },
            ],
        },
        {
            "name": "超时催办并升级",
            "start": {
                "as": "staff",
                "data": {"title": "修桥", "lead_unit": "nyncj", "deadline": "2026-12-02"},
            },
            "steps": [
                {"wait": {"workdays": 1}},
                {
                    "expect": {
                        "tasks": ["签收"],
                        "events": ["timer_fired", "task_escalated"],
                        "notifications": {"unit_liaison": ["督办升级"], "unit_head": ["签收"]},
                        "item": {"light": "yellow"},
                    }
                },
                {"wait": {"days": 2}},
                {"expect": {"item": {"light": "red"}}},
            ],
        },
        {
            "name": "故意失败：期望错误的待办",
            "start": {
                "as": "staff",
                "data": {"title": "x", "lead_unit": "nyncj", "deadline": "2026-12-31"},
            },
            "steps": [{"expect": {"tasks": ["不存在的步骤"]}}],
        },
    ],
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "processes"
    target.mkdir()
    shutil.copy(ROOT / "processes" / "county.yaml", target / "county.yaml")
    (target / "tiny_item.bpmn").write_text(ITEM, encoding="utf-8")
    (target / "tiny_child.bpmn").write_text(CHILD, encoding="utf-8")
    (target / "tiny_item.scenarios.yaml").write_text(
        yaml.safe_dump(SCENARIOS, allow_unicode=True), encoding="utf-8"
    )
    return target


def test_check_runs_every_scenario_and_names_the_failing_step(
    folder: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, ["check", str(folder)])
    lines = result.output.strip().splitlines()
    assert "✓ tiny_item · 签收后销号并派生下级" in lines, result.output
    assert "✓ tiny_item · 超时催办并升级" in lines, result.output
    failure = next(line for line in lines if line.startswith("✗"))
    assert "故意失败" in failure and "第 1 步失败" in failure and "签收(sign)" in failure
    assert lines[-1] == "共 3 个场景，通过 2 个，失败 1 个"
    assert result.exit_code == 1


def test_check_filters_by_pattern(
    folder: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, ["check", str(folder), "-k", "销号"])
    assert result.exit_code == 0, result.output
    assert "通过 1 个" in result.output


def test_ledger_and_links_show_both_ends(engine, folder: Path) -> None:
    county = yaml.safe_load((folder / "county.yaml").read_text(encoding="utf-8"))
    engine.load_directory(county, "pw")
    engine.deploy(folder)
    started = engine.start(
        "tiny_item", {"title": "修渠", "lead_unit": "nyncj", "deadline": "2026-12-02"}, user="staff"
    )
    task = engine.tasks("unit_liaison")["items"][0]
    engine.complete(task["id"], {}, user="unit_liaison")

    parent = engine.instance(started["id"])
    assert [c["process"] for c in parent["children"]] == ["tiny_child"]
    child = engine.instance(parent["children"][0]["id"])
    assert child["parent"]["id"] == started["id"]
    assert child["data"]["parent_instance_id"] == started["id"]
    assert parent["items"][0]["status"] == "已销号"

    other = engine.start(
        "tiny_item", {"title": "修桥", "lead_unit": "nyncj", "deadline": "2026-12-02"}, user="staff"
    )
    assert engine.items(kind="督办事项", light="yellow")["total"] == 1  # due within 3 workdays
    assert engine.items(kind="督办事项", closed=True)["items"][0]["title"] == "修渠"
    assert engine.items(kind="督办事项", unit="农业农村局")["total"] == 2
    assert engine.items(kind="督办事项", unit="cgz")["total"] == 0
    assert other["id"] != started["id"]
