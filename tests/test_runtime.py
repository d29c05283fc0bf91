"""Running instances through the Engine API: inbox, claiming, forms, assignment, audit trail,
script errors, administration and messages."""

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import Conflict, Engine, FixedClock, Forbidden, InvalidData, NotFound
from engine.models import Event, HumanTask
from engine.workdays import BEIJING
from tests.builders import BPMN_HEADER, bpmn, flow, user_task

HANDLER = "经办人"
UNIT_HEAD = "单位负责人"
ADMIN = "系统管理员"
CHINESE = re.compile(r"[\u4e00-\u9fff]")

Deploy = Callable[..., Any]

REQUEST_FORM = {
    "title": "请示事项",
    "type": "object",
    "required": ["subject", "amount", "level"],
    "properties": {
        "subject": {"type": "string", "title": "事项"},
        "amount": {"type": "integer", "title": "金额", "minimum": 1, "maximum": 100},
        "level": {"type": "string", "title": "紧急程度", "enum": ["一般", "紧急"]},
    },
}
VALID = {"subject": "定稿", "amount": 5, "level": "一般"}


def start_event(outgoing: str = "f1") -> str:
    return (
        f'<bpmn:startEvent id="start"><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:startEvent>'
    )


def end_event(*incoming: str) -> str:
    refs = "".join(f"<bpmn:incoming>{i}</bpmn:incoming>" for i in incoming)
    return f'<bpmn:endEvent id="end">{refs}</bpmn:endEvent>'


def one_task_process(
    key: str, lane: str = HANDLER, task_lane: str | None = None, **props: str
) -> str:
    """start → `fill` (a user task showing request.json, with `props`) → end."""
    body = (
        start_event()
        + user_task("fill", "填写请示", "f1", "f2", form="request.json", **props)
        + end_event("f2")
        + flow("f1", "start", "fill")
        + flow("f2", "fill", "end")
    )
    lanes = {lane: ["start", "fill", "end"]}
    if task_lane:
        lanes = {lane: ["start", "end"], task_lane: ["fill"]}
    return bpmn(key, body, lanes=lanes, name="请示报告")


def calc_process(script: str) -> str:
    """start → [run_script?] script task 计算金额 → fill → end; instances choose the path."""
    body = (
        start_event()
        + '<bpmn:exclusiveGateway id="gw" default="f_skip"><bpmn:incoming>f1</bpmn:incoming>'
        "<bpmn:outgoing>f_calc</bpmn:outgoing><bpmn:outgoing>f_skip</bpmn:outgoing>"
        "</bpmn:exclusiveGateway>"
        '<bpmn:scriptTask id="compute" name="计算金额"><bpmn:incoming>f_calc</bpmn:incoming>'
        f"<bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>"
        + '<bpmn:userTask id="fill" name="填写请示"><bpmn:incoming>f2</bpmn:incoming>'
        "<bpmn:incoming>f_skip</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>"
        + end_event("f3")
        + flow("f1", "start", "gw")
        + flow("f_calc", "gw", "compute", "run_script")
        + flow("f_skip", "gw", "fill")
        + flow("f2", "compute", "fill")
        + flow("f3", "fill", "end")
    )
    return bpmn("calc", body, lanes={HANDLER: ["start", "gw", "compute", "fill", "end"]})


PAYMENT = (
    BPMN_HEADER
    + '<bpmn:collaboration id="collab"><bpmn:participant id="part" processRef="payment"/>'
    '<bpmn:correlationKey name="order">'
    "<bpmn:correlationPropertyRef>order_id_prop</bpmn:correlationPropertyRef>"
    "</bpmn:correlationKey></bpmn:collaboration>"
    '<bpmn:message id="msg_paid" name="payment_received"/>'
    '<bpmn:correlationProperty id="order_id_prop" name="订单号">'
    '<bpmn:correlationPropertyRetrievalExpression messageRef="msg_paid">'
    "<bpmn:formalExpression>order_id</bpmn:formalExpression>"
    "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>"
    '<bpmn:process id="payment" name="等待付款" isExecutable="true">'
    '<bpmn:laneSet id="ls"><bpmn:lane id="lane_0" name="经办人">'
    + "".join(f"<bpmn:flowNodeRef>{r}</bpmn:flowNodeRef>" for r in ("start", "wait", "fill", "end"))
    + "</bpmn:lane></bpmn:laneSet>"
    + start_event()
    + '<bpmn:intermediateCatchEvent id="wait" name="等待付款通知">'
    "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>"
    '<bpmn:messageEventDefinition id="wait_def" messageRef="msg_paid"><bpmn:extensionElements>'
    "<spiffworkflow:messageVariable>payment</spiffworkflow:messageVariable>"
    "<spiffworkflow:processVariableCorrelation>"
    "<spiffworkflow:propertyId>order_id_prop</spiffworkflow:propertyId>"
    "<spiffworkflow:expression>order_id</spiffworkflow:expression>"
    "</spiffworkflow:processVariableCorrelation>"
    "</bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateCatchEvent>"
    + user_task("fill", "确认到账", "f2", "f3")
    + end_event("f3")
    + flow("f1", "start", "wait")
    + flow("f2", "wait", "fill")
    + flow("f3", "fill", "end")
    + "</bpmn:process></bpmn:definitions>"
)


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def people(engine: Engine) -> None:
    engine.add_unit("农业农村局")
    engine.add_unit("水利局")
    engine.add_user("alice", "pass1234", name="张三", roles=[HANDLER])
    engine.add_user("bob", "pass1234", name="李四", roles=[HANDLER])
    engine.add_user("carol", "pass1234", name="王五")
    engine.add_user("admin", "pass1234", roles=[ADMIN])
    engine.add_user("agri_head", "pass1234", roles=[UNIT_HEAD], unit="农业农村局")
    engine.add_user("water_head", "pass1234", roles=[UNIT_HEAD], unit="水利局")


@pytest.fixture
def request_process(deploy: Deploy, people: None) -> str:
    deploy(
        {
            "request.bpmn": one_task_process("request"),
            "request.json": json.dumps(REQUEST_FORM, ensure_ascii=False),
        }
    )
    return "request"


def inbox(engine: Engine, user: str) -> list[dict[str, Any]]:
    return engine.tasks(user)["items"]


def open_task(engine: Engine, user: str, instance_id: int) -> dict[str, Any]:
    items = [t for t in inbox(engine, user) if t["instance_id"] == instance_id]
    assert len(items) == 1, items
    return items[0]


def open_rows(engine: Engine, instance_id: int) -> int:
    with engine.read_session() as session:
        return session.scalar(
            select(func.count())
            .select_from(HumanTask)
            .where(HumanTask.instance_id == instance_id, HumanTask.state == "open")
        )


def event_kinds(engine: Engine, instance_id: int) -> list[str]:
    with engine.read_session() as session:
        return list(
            session.scalars(
                select(Event.kind).where(Event.instance_id == instance_id).order_by(Event.id)
            )
        )


def snapshot(engine: Engine, instance_id: int, task_id: str) -> tuple[Any, ...]:
    """What a refused command must leave untouched."""
    detail = engine.instance(instance_id)
    task = engine.task(task_id)
    return (
        detail["status"],
        detail["revision"],
        task["state"],
        task["assignee"],
        len(detail["history"]),
    )


# --------------------------------------------------------- start and inbox
def test_start_shows_data_a_task_row_and_the_lane_holders_inbox(
    engine: Engine, request_process: str
) -> None:
    started = engine.start(request_process, {"subject": "初稿"}, user="alice")

    detail = engine.instance(started["id"])
    assert (started["status"], detail["status"], detail["version"]) == ("running", "running", 1)
    assert detail["data"]["subject"] == "初稿"
    assert open_rows(engine, started["id"]) == 1
    task = open_task(engine, "bob", started["id"])
    assert (task["name"], task["title"], task["assignee"]) == ("fill", "填写请示", None)
    assert open_task(engine, "alice", started["id"])["id"] == task["id"]
    assert inbox(engine, "carol") == []
    assert engine.task(task["id"], "bob")["form"]["title"] == "请示事项"
    assert engine.task(task["id"], "bob")["data"]["subject"] == "初稿"


def test_claim_assigns_and_a_second_claim_conflicts(engine: Engine, request_process: str) -> None:
    started = engine.start(request_process, user="alice")
    task_id = open_task(engine, "alice", started["id"])["id"]
    with pytest.raises(Forbidden):
        engine.claim(task_id, "carol")

    assert engine.claim(task_id, "alice")["assignee"] == "alice"

    assert engine.task(task_id)["assignee"] == "alice"
    with pytest.raises(Conflict) as conflict:
        engine.claim(task_id, "bob")
    assert CHINESE.search(conflict.value.message)
    assert inbox(engine, "bob") == []  # claimed by someone else: no longer in bob's pool


def test_only_the_assignee_may_unclaim(engine: Engine, request_process: str) -> None:
    started = engine.start(request_process, user="alice")
    task_id = open_task(engine, "alice", started["id"])["id"]
    engine.claim(task_id, "alice")

    with pytest.raises(Forbidden):
        engine.unclaim(task_id, "carol")
    with pytest.raises(Conflict) as held:  # a colleague of the pool is told who holds it
        engine.unclaim(task_id, "bob")
    assert held.value.message == "该任务已被张三认领"
    assert engine.task(task_id)["assignee"] == "alice"

    engine.unclaim(task_id, "alice")
    assert engine.task(task_id)["assignee"] is None
    assert open_task(engine, "bob", started["id"])["id"] == task_id


@pytest.mark.parametrize(
    ("outsider", "refusal"),
    [("carol", Forbidden), ("bob", Conflict)],  # bob: a candidate, told that alice holds it
    ids=["no-role", "not-the-assignee"],
)
def test_completing_without_being_a_candidate_is_forbidden_and_changes_nothing(
    engine: Engine, request_process: str, outsider: str, refusal: type[Exception]
) -> None:
    started = engine.start(request_process, user="alice")
    task_id = open_task(engine, "alice", started["id"])["id"]
    engine.claim(task_id, "alice")
    before = snapshot(engine, started["id"], task_id)

    with pytest.raises(refusal):
        engine.complete(task_id, VALID, user=outsider)

    assert snapshot(engine, started["id"], task_id) == before
    assert "task_completed" not in event_kinds(engine, started["id"])


def test_completing_the_same_task_twice_conflicts(engine: Engine, request_process: str) -> None:
    started = engine.start(request_process, user="alice")
    task_id = open_task(engine, "alice", started["id"])["id"]
    engine.complete(task_id, VALID, user="alice")

    with pytest.raises(Conflict) as conflict:
        engine.complete(task_id, VALID, user="alice")

    assert "已办理" in conflict.value.message
    assert event_kinds(engine, started["id"]).count("task_completed") == 1


# ---------------------------------------------------------- form validation
@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"amount": 5, "level": "一般"}, "subject", ["请填写", "事项"]),
        ({**VALID, "amount": "五"}, "amount", ["金额", "整数"]),
        ({**VALID, "amount": 500}, "amount", ["金额", "不能大于", "100"]),
        ({**VALID, "amount": 0}, "amount", ["金额", "不能小于", "1"]),
        ({**VALID, "level": "特急"}, "level", ["紧急程度", "一般", "紧急"]),
    ],
    ids=["missing-required", "wrong-type", "above-maximum", "below-minimum", "bad-enum"],
)
def test_invalid_form_data_is_refused_per_field_and_changes_nothing(
    engine: Engine, request_process: str, data: dict[str, Any], field: str, words: list[str]
) -> None:
    started = engine.start(request_process, {"subject": "初稿"}, user="alice")
    task_id = open_task(engine, "alice", started["id"])["id"]
    before = snapshot(engine, started["id"], task_id)

    with pytest.raises(InvalidData) as invalid:
        engine.complete(task_id, data, user="alice")

    errors = invalid.value.errors
    assert list(errors) == [field]
    assert all(word in errors[field] for word in words), errors
    assert CHINESE.search(invalid.value.message)
    assert snapshot(engine, started["id"], task_id) == before
    assert "task_completed" not in event_kinds(engine, started["id"])
    assert engine.instance(started["id"])["data"]["subject"] == "初稿"


# --------------------------------------------------------------- assignment
def test_a_unit_property_narrows_the_lane_role_to_that_unit(
    engine: Engine, deploy: Deploy, people: None
) -> None:
    deploy(
        {
            "unit.bpmn": one_task_process("by_unit", task_lane=UNIT_HEAD, unit="lead_unit"),
            "request.json": json.dumps(REQUEST_FORM, ensure_ascii=False),
        }
    )

    started = engine.start("by_unit", {"lead_unit": "农业农村局"}, user="alice")

    task = open_task(engine, "agri_head", started["id"])
    assert task["unit"] == "农业农村局"
    assert inbox(engine, "water_head") == []
    assert inbox(engine, "alice") == []
    with pytest.raises(Forbidden):
        engine.claim(task["id"], "water_head")
    engine.complete(task["id"], VALID, user="agri_head")
    assert engine.instance(started["id"])["status"] == "completed"


def test_initiator_assignee_and_a_due_date_in_working_days_light_up(
    engine: Engine, deploy: Deploy, people: None, clock: FixedClock
) -> None:
    deploy(
        {
            "report.bpmn": one_task_process("report", assignee="initiator", dueInWorkdays="3"),
            "request.json": json.dumps(REQUEST_FORM, ensure_ascii=False),
        }
    )

    started = engine.start("report", user="bob")

    task = open_task(engine, "bob", started["id"])
    assert task["assignee"] == "bob"
    assert inbox(engine, "alice") == []  # same role, but the task is bob's
    due = datetime.fromisoformat(task["due_at"])
    assert due == datetime(2026, 12, 4, 9, 0, tzinfo=BEIJING)
    assert task["light"] == "yellow"

    clock.set(datetime(2026, 12, 4, 9, 1, tzinfo=BEIJING))
    assert open_task(engine, "bob", started["id"])["light"] == "red"


# -------------------------------------------------------------- audit trail
def test_the_audit_trail_records_each_step_in_order_with_its_actor(
    engine: Engine, request_process: str
) -> None:
    started = engine.start(request_process, {"subject": "初稿"}, user="alice")
    task_id = open_task(engine, "bob", started["id"])["id"]

    engine.complete(task_id, VALID, user="bob", opinion="同意上报")

    history = engine.instance(started["id"])["history"]
    steps = [(e["kind"], e["actor"]) for e in history]
    assert steps == [
        ("instance_started", "alice"),
        ("task_created", None),
        ("task_completed", "bob"),
        ("instance_completed", None),
    ]
    assert history[0]["data_change"] == {"subject": {"from": None, "to": "初稿"}}
    assert history[1]["task"] == "填写请示"
    completed = history[2]
    assert completed["task"] == "填写请示"
    assert completed["reason"] == "同意上报"
    assert completed["data_change"] == {
        "subject": {"from": "初稿", "to": "定稿"},
        "amount": {"from": None, "to": 5},
        "level": {"from": None, "to": "一般"},
    }
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)


# ----------------------------------------------------------- script errors
ESCAPES = {
    "name-error": "result = base * factor",
    "subclasses": "found = ().__class__.__base__.__subclasses__()",
    "import": "import os\nfound = os.listdir('/')",
}


@pytest.mark.parametrize("script", ESCAPES.values(), ids=ESCAPES.keys())
def test_a_failing_script_stops_only_its_own_instance(
    engine: Engine, deploy: Deploy, people: None, script: str
) -> None:
    deploy({"calc.bpmn": calc_process(script)})

    broken = engine.start("calc", {"run_script": True, "base": 5}, user="alice")
    healthy = engine.start("calc", {"run_script": False, "base": 5}, user="alice")

    detail = engine.instance(broken["id"])
    assert detail["status"] == "error"
    assert "计算金额" in detail["error"] and "运行出错" in detail["error"]
    assert "found" not in detail["data"] and "result" not in detail["data"]
    assert open_rows(engine, broken["id"]) == 0
    assert "instance_error" in event_kinds(engine, broken["id"])

    assert healthy["status"] == "running"
    engine.complete(open_task(engine, "alice", healthy["id"])["id"], {}, user="alice")
    assert engine.instance(healthy["id"])["status"] == "completed"


def test_an_admin_retries_a_failed_script_with_corrected_data(
    engine: Engine, deploy: Deploy, people: None
) -> None:
    deploy({"calc.bpmn": calc_process(ESCAPES["name-error"])})
    broken = engine.start("calc", {"run_script": True, "base": 5}, user="alice")

    with pytest.raises(Forbidden):
        engine.retry(broken["id"], user="alice", data={"factor": 2})
    assert engine.instance(broken["id"])["status"] == "error"

    retried = engine.retry(broken["id"], user="admin", data={"factor": 2})

    assert retried["status"] == "running"
    detail = engine.instance(broken["id"])
    assert (detail["status"], detail["error"], detail["data"]["result"]) == ("running", None, 10)
    engine.complete(open_task(engine, "alice", broken["id"])["id"], {}, user="alice")
    assert engine.instance(broken["id"])["status"] == "completed"
    assert ("instance_retried", "admin") in [(e["kind"], e["actor"]) for e in detail["history"]]


# ------------------------------------------------------------ administration
def test_terminate_cancels_open_tasks_and_records_the_reason(
    engine: Engine, request_process: str
) -> None:
    started = engine.start(request_process, user="alice")
    task_id = open_task(engine, "alice", started["id"])["id"]

    with pytest.raises(Forbidden):
        engine.terminate(started["id"], user="alice", reason="不想办了")
    with pytest.raises(InvalidData):
        engine.terminate(started["id"], user="admin", reason="  ")
    engine.terminate(started["id"], user="admin", reason="重复立项")

    detail = engine.instance(started["id"])
    assert detail["status"] == "terminated"
    assert [t["state"] for t in detail["tasks"]] == ["cancelled"]
    assert inbox(engine, "alice") == [] and inbox(engine, "bob") == []
    last = detail["history"][-1]
    assert (last["kind"], last["actor"], last["reason"]) == (
        "instance_terminated",
        "admin",
        "重复立项",
    )
    with pytest.raises(Conflict):
        engine.complete(task_id, VALID, user="alice")


def test_a_suspended_instance_refuses_work_until_resumed(
    engine: Engine, request_process: str
) -> None:
    started = engine.start(request_process, user="alice")
    task_id = open_task(engine, "alice", started["id"])["id"]

    engine.suspend(started["id"], user="admin", reason="等待上级意见")
    assert engine.instance(started["id"])["status"] == "suspended"
    with pytest.raises(Conflict) as conflict:
        engine.complete(task_id, VALID, user="alice")
    assert "挂起" in conflict.value.message
    assert engine.task(task_id)["state"] == "open"

    engine.resume(started["id"], user="admin", reason="已有意见")
    assert engine.instance(started["id"])["status"] == "running"
    engine.complete(task_id, VALID, user="alice")
    assert engine.instance(started["id"])["status"] == "completed"


# ------------------------------------------------------------------ messages
def test_a_message_reaches_only_the_instance_with_the_matching_correlation(
    engine: Engine, deploy: Deploy, people: None
) -> None:
    deploy({"payment.bpmn": PAYMENT})
    first = engine.start("payment", {"order_id": "A-1"}, user="alice")
    second = engine.start("payment", {"order_id": "B-2"}, user="alice")
    assert inbox(engine, "alice") == []  # both wait for their payment

    delivered = engine.deliver_message("payment_received", {"order_id": "B-2", "amount": 99})

    assert delivered == [second["id"]]
    task = open_task(engine, "alice", second["id"])
    assert task["title"] == "确认到账"
    assert engine.instance(second["id"])["data"]["payment"] == {"order_id": "B-2", "amount": 99}
    assert open_rows(engine, first["id"]) == 0
    assert "payment" not in engine.instance(first["id"])["data"]

    assert engine.deliver_message("payment_received", {"order_id": "A-1"}) == [first["id"]]
    assert open_task(engine, "alice", first["id"])["title"] == "确认到账"


def test_a_message_nobody_waits_for_is_not_found(
    engine: Engine, deploy: Deploy, people: None
) -> None:
    deploy({"payment.bpmn": PAYMENT})
    started = engine.start("payment", {"order_id": "A-1"}, user="alice")

    with pytest.raises(NotFound) as unknown:
        engine.deliver_message("no_such_message", {"order_id": "A-1"})
    assert CHINESE.search(unknown.value.message)
    for payload in ({"order_id": "Z-9"}, {"amount": 99}):  # wrong, or no, correlation value
        with pytest.raises(NotFound):
            engine.deliver_message("payment_received", payload)
    assert engine.instance(started["id"])["status"] == "running"
    assert open_rows(engine, started["id"]) == 0


def test_a_unit_that_does_not_exist_offers_the_task_to_nobody_and_says_why(
    engine: Engine, deploy: Deploy, people: None
) -> None:
    deploy(
        {
            "unit.bpmn": one_task_process("by_unit", task_lane=UNIT_HEAD, unit="lead_unit"),
            "request.json": json.dumps(REQUEST_FORM, ensure_ascii=False),
        }
    )
    started = engine.start("by_unit", {"lead_unit": "不存在的局"}, user="alice")

    assert inbox(engine, "agri_head") == [] and inbox(engine, "water_head") == []
    assert open_rows(engine, started["id"]) == 1
    warning = [
        h for h in engine.instance(started["id"])["history"] if h["kind"] == "assignment_warning"
    ]
    assert warning and "不存在的局" in warning[0]["reason"]


def test_a_correlation_on_missing_data_stops_the_instance_not_the_command(
    engine: Engine, deploy: Deploy, people: None
) -> None:
    deploy({"payment.bpmn": PAYMENT})
    started = engine.start("payment", {}, user="alice")  # no order_id to correlate on

    detail = engine.instance(started["id"])
    assert detail["status"] == "error"
    assert "order_id" in detail["error"] and CHINESE.search(detail["error"])
    other = engine.start("payment", {"order_id": "A-1"}, user="alice")
    assert engine.instance(other["id"])["status"] == "running"
