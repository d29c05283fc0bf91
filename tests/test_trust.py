"""The core's promises on the office's real 督办事项 (processes/supervision_item.bpmn, whose steps
all carry boundary timers): 退回 and 撤回 never break an item, a submission is its form, and an
operation succeeds whole or changes nothing. After every operation the tests check the state a
person would see: the instance's status, who holds the open steps, the history and the ledger."""

import json
from typing import Any

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from engine import Conflict, DefinitionError, Engine, InvalidData
from engine.bpmn import dump_state, load_state
from engine.errors import OperationFailed
from engine.models import ProcessInstance
from tests.builders import bpmn, flow, user_task
from tests.county import TOWN_ITEM, token
from webui import create_app

ACK = {"acknowledged": True, "contact_person": "李明", "contact_phone": "0771-5551234"}
PLAN = {
    "plan": "分三个片区推进，按月完成节点任务。",
    "plan_steps": [{"step": "完成设计", "due": "2027-01-31", "owner": "规划股"}],
}
REPORT = {"progress": 30, "done": "完成两个村的设施建设", "next_action": "report"}


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    return county_engine


def open_task(engine: Engine, user: str, iid: int, name: str) -> dict[str, Any]:
    found = [
        t for t in engine.tasks(user)["items"] if t["instance_id"] == iid and t["name"] == name
    ]
    assert len(found) == 1, (user, name, engine.tasks(user)["items"])
    return found[0]


def assert_state(engine: Engine, iid: int, status: str, holders: dict[str, str]) -> dict:
    """The instance has `status`, and its open steps are exactly `holders` (step → the user
    whose inbox has it); nobody's inbox holds a step that is not open."""
    detail = engine.instance(iid, "admin")
    assert detail["status"] == status, detail["error"]
    opened = {t["name"]: t for t in detail["tasks"] if t["state"] == "open"}
    assert set(opened) == set(holders), opened
    for name, user in holders.items():
        mine = open_task(engine, user, iid, name)
        assert mine["id"] == opened[name]["id"]
    return detail


def item_of(engine: Engine, iid: int) -> dict[str, Any]:
    (item,) = [i for i in engine.items("admin")["items"] if i["instance_id"] == iid]
    return item


def started_item(engine: Engine) -> int:
    return engine.start("supervision_item", user="staff")["id"]


def drafted_item(engine: Engine) -> tuple[int, str]:
    iid = started_item(engine)
    draft = open_task(engine, "staff", iid, "draft")
    engine.complete(draft["id"], dict(TOWN_ITEM), user="staff")
    return iid, draft["id"]


def item_in_progress(engine: Engine) -> int:
    """A 城关镇 item whose liaison is at the weekly 进度填报."""
    iid, _ = drafted_item(engine)
    engine.complete(
        open_task(engine, "deputy", iid, "approve")["id"], {"decision": "approve"}, user="deputy"
    )
    for name, data in (("acknowledge", ACK), ("plan", PLAN)):
        task = open_task(engine, "town_liaison", iid, name)
        engine.claim(task["id"], "town_liaison")
        engine.complete(task["id"], data, user="town_liaison")
    return iid


def history_kinds(engine: Engine, iid: int) -> list[tuple[str, str | None, str | None]]:
    return [(h["kind"], h["actor"], h["reason"]) for h in engine.instance(iid, "admin")["history"]]


# ------------------------------------------------------------------ 撤回 and 退回 (bugs 1, 2)
def test_withdrawing_a_progress_report_gives_it_back_to_the_liaison(engine: Engine) -> None:
    iid = item_in_progress(engine)
    report = open_task(engine, "town_liaison", iid, "report_progress")
    engine.claim(report["id"], "town_liaison")
    engine.complete(report["id"], REPORT, user="town_liaison")
    assert_state(engine, iid, "running", {"report_progress": "town_liaison"})

    answer = engine.withdraw(report["id"], user="town_liaison", opinion="数据填错")

    assert answer["status"] == "running"
    detail = assert_state(engine, iid, "running", {"report_progress": "town_liaison"})
    reopened = open_task(engine, "town_liaison", iid, "report_progress")
    assert reopened["assignee"] == "town_liaison"
    assert engine.task(reopened["id"], "town_liaison")["data"]["done"] == REPORT["done"]
    assert ("task_withdrawn", "town_liaison", "数据填错") in history_kinds(engine, iid)
    item = item_of(engine, iid)
    assert (item["lead_unit"], item["status"]) == ("城关镇", "办理中")
    assert detail["data"]["lead_unit"] == "cgz"
    # the reopened report goes on as the first time: its boundary timers are armed again
    engine.complete(reopened["id"], REPORT, user="town_liaison")
    assert_state(engine, iid, "running", {"report_progress": "town_liaison"})


def test_withdrawing_the_draft_takes_it_back_from_the_deputy(engine: Engine) -> None:
    iid, draft_id = drafted_item(engine)
    assert_state(engine, iid, "running", {"approve": "deputy"})

    engine.withdraw(draft_id, user="staff")

    assert_state(engine, iid, "running", {"draft": "staff"})
    assert not [t for t in engine.tasks("deputy")["items"] if t["instance_id"] == iid]
    assert item_of(engine, iid)["lead_unit"] == "城关镇"


def test_returning_the_approval_reopens_the_draft_with_the_reason(engine: Engine) -> None:
    iid, _ = drafted_item(engine)
    approve = open_task(engine, "deputy", iid, "approve")

    engine.return_task(approve["id"], user="deputy", reason="督办时限不合理，请调整")

    assert_state(engine, iid, "running", {"draft": "staff"})
    draft = engine.task(open_task(engine, "staff", iid, "draft")["id"], "staff")
    assert draft["data"]["title"] == TOWN_ITEM["title"]
    assert ("task_returned", "deputy", "督办时限不合理，请调整") in history_kinds(engine, iid)
    messages = engine.notifications("staff")["items"]
    assert any(m["kind"] == "return" and m["body"] == "督办时限不合理，请调整" for m in messages)
    # the returned draft is submitted again and the item goes on to the deputy
    engine.complete(draft["id"], dict(TOWN_ITEM), user="staff")
    assert_state(engine, iid, "running", {"approve": "deputy"})


def test_withdraw_over_the_api_answers_the_running_instance(engine: Engine) -> None:
    client = create_app({"TESTING": True, "SECRET_KEY": "t"}, engine=engine).test_client()
    iid, draft_id = drafted_item(engine)

    response = client.post(
        f"/api/v1/tasks/{draft_id}/withdraw", json={}, headers=token(client, "staff")
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "running"
    assert_state(engine, iid, "running", {"draft": "staff"})


# ------------------------------------------------------------------ a submission is its form (3, 4)
def test_a_submission_cannot_move_the_items_unit_or_deadline(engine: Engine) -> None:
    iid = item_in_progress(engine)
    report = open_task(engine, "town_liaison", iid, "report_progress")
    engine.claim(report["id"], "town_liaison")
    revision = engine.instance_summary(iid)["revision"]
    sneaky = {**REPORT, "lead_unit": "nyncj", "deadline": "2099-12-31", "title": "改名"}

    with pytest.raises(InvalidData) as refused:
        engine.complete(report["id"], sneaky, user="town_liaison")

    assert set(refused.value.errors) == {"lead_unit", "deadline", "title"}
    assert "表单未定义的字段" in refused.value.message
    assert engine.instance_summary(iid)["revision"] == revision  # nothing written
    detail = assert_state(engine, iid, "running", {"report_progress": "town_liaison"})
    assert (detail["data"]["lead_unit"], detail["data"]["deadline"]) == ("cgz", "2027-03-31")
    item = item_of(engine, iid)
    assert (item["lead_unit"], item["deadline"][:10], item["title"]) == (
        "城关镇",
        "2027-03-31",
        TOWN_ITEM["title"],
    )
    # the honest report goes through, and the next round stays with 城关镇
    engine.complete(report["id"], REPORT, user="town_liaison")
    assert_state(engine, iid, "running", {"report_progress": "town_liaison"})


def test_read_only_fields_keep_their_stored_values(engine: Engine) -> None:
    iid = item_in_progress(engine)
    report = open_task(engine, "town_liaison", iid, "report_progress")
    engine.claim(report["id"], "town_liaison")
    engine.complete(report["id"], {**REPORT, "next_action": "extend"}, user="town_liaison")
    ask = open_task(engine, "town_liaison", iid, "apply_extension")
    engine.complete(
        ask["id"],
        {"requested_deadline": "2027-04-30", "extension_reason": "雨雪天气影响施工进度"},
        user="town_liaison",
    )
    decide = open_task(engine, "deputy", iid, "approve_extension")

    engine.complete(
        decide["id"],
        {
            "decision": "return",
            "reason": "理由不充分",
            "deadline": "2099-12-31",
            "requested_deadline": "2099-12-31",
        },
        user="deputy",
    )

    detail = engine.instance(iid, "admin")
    assert detail["data"]["deadline"] == "2027-03-31"
    assert detail["data"]["requested_deadline"] == "2027-04-30"
    assert item_of(engine, iid)["deadline"][:10] == "2027-03-31"
    assert detail["status"] == "running"


@pytest.mark.parametrize("key", ["now", "days_after", "workdays_after", "max", "_getattr_"])
def test_names_of_script_helpers_are_refused(engine: Engine, key: str) -> None:
    iid = item_in_progress(engine)
    report = open_task(engine, "town_liaison", iid, "report_progress")
    engine.claim(report["id"], "town_liaison")

    with pytest.raises(InvalidData) as refused:
        engine.complete(report["id"], {**REPORT, key: "2099-01-01"}, user="town_liaison")

    assert key in refused.value.errors
    engine.complete(report["id"], REPORT, user="town_liaison")
    assert_state(engine, iid, "running", {"report_progress": "town_liaison"})


def test_start_data_may_not_use_a_helper_name(engine: Engine) -> None:
    with pytest.raises(InvalidData) as refused:
        engine.start("supervision_item", {"now": "2099-01-01"}, user="staff")
    assert "now" in refused.value.errors
    assert engine.instances("admin")["total"] == 0


def test_a_form_declaring_a_helper_name_is_not_deployed(engine: Engine, tmp_path) -> None:
    form = {"type": "object", "properties": {"today": {"type": "string"}, "note": {}}}
    (tmp_path / "f.json").write_text(json.dumps(form))
    (tmp_path / "p.bpmn").write_text(
        bpmn(
            "p",
            '<bpmn:startEvent id="s"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>'
            + user_task("t", "填写", "a", "b", form="f.json")
            + '<bpmn:endEvent id="e"><bpmn:incoming>b</bpmn:incoming></bpmn:endEvent>'
            + flow("a", "s", "t")
            + flow("b", "t", "e"),
            lanes={"指挥办工作人员": ["s", "t", "e"]},
        ),
        encoding="utf-8",
    )
    with pytest.raises(DefinitionError) as refused:
        engine.deploy(tmp_path, by="admin")
    assert "today" in refused.value.message and refused.value.file == "f.json"


def test_a_step_without_a_form_accepts_no_data(engine: Engine, tmp_path) -> None:
    (tmp_path / "p.bpmn").write_text(
        bpmn(
            "p",
            '<bpmn:startEvent id="s"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>'
            + user_task("t", "阅知", "a", "b")
            + '<bpmn:endEvent id="e"><bpmn:incoming>b</bpmn:incoming></bpmn:endEvent>'
            + flow("a", "s", "t")
            + flow("b", "t", "e"),
            lanes={"指挥办工作人员": ["s", "t", "e"]},
        ),
        encoding="utf-8",
    )
    engine.deploy(tmp_path, by="admin")
    iid = engine.start("p", user="staff")["id"]
    task = open_task(engine, "staff", iid, "t")
    with pytest.raises(InvalidData, match="没有表单"):
        engine.complete(task["id"], {"anything": 1}, user="staff")
    engine.complete(task["id"], {}, user="staff")
    assert engine.instance(iid, "admin")["status"] == "completed"


HELPER_USER = (
    '<bpmn:startEvent id="s"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>'
    + user_task("t", "核对", "a", "b")
    + '<bpmn:scriptTask id="use" name="计算期限"><bpmn:incoming>b</bpmn:incoming>'
    "<bpmn:outgoing>c</bpmn:outgoing><bpmn:script>due = now()[:10]</bpmn:script></bpmn:scriptTask>"
    + user_task("check", "复核", "c", "d")
    + '<bpmn:endEvent id="e"><bpmn:incoming>d</bpmn:incoming></bpmn:endEvent>'
    + flow("a", "s", "t")
    + flow("b", "t", "use")
    + flow("c", "use", "check")
    + flow("d", "check", "e")
)


def _poison(engine: Engine, iid: int, key: str) -> None:
    """Put `key` into every task's data, as a submission could before names were reserved."""
    with engine.write_session() as session, session.begin():
        instance = session.get(ProcessInstance, iid)
        version = engine.specs.get(session, instance.process_version_id)
        workflow = load_state(instance.state, version.spec, version.subprocess_specs)
        for task in workflow.get_tasks():
            task.data[key] = "2099-01-01"
        instance.state = dump_state(workflow)


def test_retry_can_delete_a_key_that_hides_a_helper(engine: Engine, tmp_path) -> None:
    (tmp_path / "p.bpmn").write_text(
        bpmn("dated", HELPER_USER, lanes={"指挥办工作人员": ["s", "t", "use", "check", "e"]}),
        encoding="utf-8",
    )
    engine.deploy(tmp_path, by="admin")
    iid = engine.start("dated", user="staff")["id"]
    _poison(engine, iid, "now")  # an instance from before names were reserved
    engine.complete(open_task(engine, "staff", iid, "t")["id"], {}, user="staff")
    broken = engine.instance_summary(iid)
    assert broken["status"] == "error" and "计算期限" in broken["error"]

    # retrying as it is fails again: refused whole, the instance stays as it was
    with pytest.raises(OperationFailed, match="重试未能完成"):
        engine.retry(iid, user="admin")
    assert engine.instance_summary(iid) == broken
    with pytest.raises(InvalidData):
        engine.retry(iid, user="admin", data={"now": "x"})

    answer = engine.retry(iid, user="admin", remove=["now"], reason="删除与函数同名的字段")

    assert answer["status"] == "running"
    detail = assert_state(engine, iid, "running", {"check": "staff"})
    assert "now" not in detail["data"] and detail["data"]["due"] == "2026-12-01"
    retried = [h for h in detail["history"] if h["kind"] == "instance_retried"]
    assert retried[-1]["actor"] == "admin" and retried[-1]["reason"] == "删除与函数同名的字段"


# ------------------------------------------------------------------ whole or nothing
def test_an_operation_that_fails_midway_changes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = item_in_progress(engine)
    report = open_task(engine, "town_liaison", iid, "report_progress")
    engine.claim(report["id"], "town_liaison")
    engine.complete(report["id"], REPORT, user="town_liaison")
    before = engine.instance(iid, "admin")

    def broken(self: BpmnWorkflow) -> None:
        raise AttributeError("'NoneType' object has no attribute 'data'")

    monkeypatch.setattr(BpmnWorkflow, "refresh_timers", broken)
    with pytest.raises(OperationFailed) as refused:
        engine.withdraw(report["id"], user="town_liaison")
    monkeypatch.undo()

    assert refused.value.status == 409 and "撤回未能完成，流程未做任何更改" in refused.value.message
    after = engine.instance(iid, "admin")
    for key in ("status", "revision", "tasks", "history", "data"):
        assert after[key] == before[key], key
    assert_state(engine, iid, "running", {"report_progress": "town_liaison"})


def test_a_fault_is_a_500_with_a_trace_id_and_changes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = create_app({"TESTING": True, "SECRET_KEY": "t"}, engine=engine).test_client()
    iid = started_item(engine)
    draft = open_task(engine, "staff", iid, "draft")
    revision = engine.instance_summary(iid)["revision"]

    def fault(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr("engine.completion.copies.declared", fault)
    response = client.post(
        f"/api/v1/tasks/{draft['id']}/complete",
        json={"data": TOWN_ITEM},
        headers=token(client, "staff"),
    )
    monkeypatch.undo()

    body = response.get_json()
    assert response.status_code == 500
    assert body["error"] == "internal_error" and body["trace_id"] in body["message"]
    assert engine.instance_summary(iid)["revision"] == revision
    assert_state(engine, iid, "running", {"draft": "staff"})


def test_a_stale_task_is_a_conflict_not_an_error(engine: Engine) -> None:
    iid, draft_id = drafted_item(engine)
    engine.complete(
        open_task(engine, "deputy", iid, "approve")["id"], {"decision": "approve"}, user="deputy"
    )
    with pytest.raises(Conflict):
        engine.withdraw(draft_id, user="staff")
    assert_state(engine, iid, "running", {"acknowledge": "town_liaison"})
