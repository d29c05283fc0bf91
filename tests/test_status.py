"""engine/status.py: the statuses and states the database holds, as StrEnum members that are
the stored strings themselves (in SQL, in JSON answers, in f-strings)."""

import json

from flask import Flask
from sqlalchemy import text

from engine import Engine, acting, boxes, console, instance_views, migration
from engine.bpmn import json_safe
from engine.models import HumanTask
from engine.status import Delegation, InstanceStatus, TaskRowKind, TaskRowState
from tests.builders import bpmn, flow, user_task
from webui import labels


def test_each_member_is_its_stored_string() -> None:
    assert list(InstanceStatus) == ["running", "completed", "error", "suspended", "terminated"]
    assert list(TaskRowState) == [
        "open",
        "waiting",
        "completed",
        "returned",
        "withdrawn",
        "cancelled",
    ]
    assert list(TaskRowKind) == ["task", "sign"] and list(Delegation) == ["pending", "resolved"]
    assert str(InstanceStatus.RUNNING) == "running" == f"{InstanceStatus.RUNNING}"
    assert HumanTask.__table__.c.state.default.arg == TaskRowState.OPEN
    assert HumanTask.__table__.c.kind.default.arg == TaskRowKind.TASK


def test_the_engines_lists_and_the_labels_name_the_members() -> None:
    assert tuple(InstanceStatus) == instance_views.STATUSES
    assert {*console.CONSOLE_STATUSES, *migration.MOVABLE_STATUSES} <= set(InstanceStatus)
    assert {*acting.STATUS_REFUSALS, InstanceStatus.RUNNING} == set(InstanceStatus)
    assert {*acting._CLOSED, TaskRowState.OPEN} == set(TaskRowState)
    assert set(boxes.DONE_STATES) <= set(TaskRowState)
    assert labels.INSTANCE_STATUSES.keys() == set(InstanceStatus)
    assert labels.TASK_STATES.keys() == set(TaskRowState)


def test_json_answers_carry_the_plain_value() -> None:
    answer = {"status": InstanceStatus.SUSPENDED, "state": TaskRowState.WAITING}
    expected = {"status": "suspended", "state": "waiting"}
    assert json.loads(json.dumps(answer)) == expected
    assert json.loads(Flask(__name__).json.dumps(answer)) == expected
    assert all(type(value) is str for value in json_safe(answer).values())


def test_the_database_holds_the_plain_strings(engine: Engine, deploy) -> None:
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + flow("f1", "start", "step")
        + user_task("step", "办理", "f1", "f2")
        + flow("f2", "step", "end")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    )
    deploy({"p.bpmn": bpmn("p", body)})
    started = engine.start("p")
    assert started["status"] == "running" and json.dumps(started["status"]) == '"running"'
    engine.suspend(started["id"], reason="检查")
    with engine.db.connect() as conn:
        assert conn.execute(text("SELECT status FROM process_instance")).all() == [("suspended",)]
        assert conn.execute(text("SELECT state, kind FROM human_task")).all() == [("open", "task")]
    assert engine.instance(started["id"])["status"] == InstanceStatus.SUSPENDED
