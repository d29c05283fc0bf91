"""Moving running instances to a newer version: the safety check, one or in bulk, audited."""

import pytest
from sqlalchemy import select

from engine import Engine
from engine.errors import Forbidden
from engine.models import Event, Timer
from tests.designer_bundles import DIRECTORY, deploy_leave, leave_files


@pytest.fixture
def designer(engine: Engine) -> Engine:
    engine.load_directory(DIRECTORY, "pw")
    return engine


def _open_tasks(engine: Engine, instance_id: int) -> list[dict]:
    return [t for t in engine.instance(instance_id)["tasks"] if t["state"] == "open"]


def _renamed_step(files: dict[str, str]) -> dict[str, str]:
    """The step `fill` gets another id: to SpiffWorkflow it is a removed step and a new one."""
    text = files["leave.bpmn"].replace('"fill"', '"apply"').replace(">fill<", ">apply<")
    files = {**files, "leave.bpmn": text}
    files["leave.scenarios.yaml"] = files["leave.scenarios.yaml"].replace("fill", "apply")
    return files


def test_a_waiting_instance_moves_and_continues_on_the_new_version(designer: Engine) -> None:
    deploy_leave(designer, leave_files(review=False))
    old = designer.start("leave", {}, user="staff")
    task = _open_tasks(designer, old["id"])[0]
    designer.claim(task["id"], "staff")
    deploy_leave(designer, leave_files(fill_name="填写请假单"))  # renamed step, a review added

    check = designer.migration_check("leave", user="designer")
    assert check["target_version"] == 2
    assert [(i["instance_id"], i["can_move"]) for i in check["instances"]] == [(old["id"], True)]
    assert any("填写申请" in note for note in check["instances"][0]["notes"])

    result = designer.migrate_instances([old["id"]], user="designer", reason="新增审批")
    assert result == [
        {"instance_id": old["id"], "migrated": True, "version": 2, "notes": result[0]["notes"]}
    ]
    moved = designer.instance(old["id"])
    assert moved["version"] == 2
    (same,) = _open_tasks(designer, old["id"])
    assert same["id"] == task["id"] and same["title"] == "填写请假单"
    assert same["assignee"] == "staff"  # the claim survives
    designer.complete(task["id"], {"days": 1}, user="staff")
    assert [t["name"] for t in _open_tasks(designer, old["id"])] == ["review"]
    with designer.read_session() as session:
        event = session.scalars(select(Event).where(Event.kind == "instance_migrated")).one()
    assert event.instance_id == old["id"] and event.reason == "新增审批"
    assert event.detail["from_version"] == 1 and event.detail["to_version"] == 2


def test_an_instance_moves_to_a_chosen_version(designer: Engine) -> None:
    deploy_leave(designer, leave_files(review=False))
    waiting = designer.start("leave", {}, user="staff")
    deploy_leave(designer, leave_files(fill_name="第二版"))
    deploy_leave(designer, leave_files(fill_name="第三版"))
    check = designer.migration_check("leave", to_version=2, user="designer")
    assert check["target_version"] == 2 and check["instances"][0]["can_move"]
    (result,) = designer.migrate_instances([waiting["id"]], to_version=2, user="designer")
    assert result["version"] == 2
    assert _open_tasks(designer, waiting["id"])[0]["title"] == "第二版"
    (back,) = designer.migrate_instances([waiting["id"]], to_version=1, user="designer")
    assert back["migrated"] is False and "更旧的版本" in back["reasons"][0]


def test_unmigrated_instances_keep_their_version_and_new_ones_use_the_latest(
    designer: Engine,
) -> None:
    deploy_leave(designer, leave_files(review=False))
    old = designer.start("leave", {}, user="staff")
    deploy_leave(designer, leave_files())
    new = designer.start("leave", {}, user="staff")
    assert (old["version"], new["version"]) == (1, 2)
    designer.complete(_open_tasks(designer, old["id"])[0]["id"], {"days": 1}, user="staff")
    assert designer.instance(old["id"])["status"] == "completed"  # v1 has no review


def test_an_instance_waiting_in_a_removed_step_cannot_move_and_says_why(
    designer: Engine,
) -> None:
    deploy_leave(designer, leave_files())
    waiting = designer.start("leave", {}, user="staff")
    designer.complete(_open_tasks(designer, waiting["id"])[0]["id"], {"days": 2}, user="staff")
    deploy_leave(designer, leave_files(review=False))
    (item,) = designer.migration_check("leave", user="designer")["instances"]
    assert item["can_move"] is False
    assert item["reasons"] == ["当前停留的步骤“审批”在新版本中已删除"]
    (result,) = designer.migrate_instances([waiting["id"]], user="designer")
    assert result["migrated"] is False
    assert designer.instance(waiting["id"])["version"] == 1
    assert _open_tasks(designer, waiting["id"])[0]["name"] == "review"


def test_a_step_with_a_new_id_in_the_same_place_is_matched_by_structure(
    designer: Engine,
) -> None:
    deploy_leave(designer, leave_files())
    waiting = designer.start("leave", {}, user="staff")
    deploy_leave(designer, _renamed_step(leave_files()))
    (result,) = designer.migrate_instances([waiting["id"]], user="designer")
    assert result["migrated"] is True
    (task,) = _open_tasks(designer, waiting["id"])
    assert task["name"] == "apply"
    designer.complete(task["id"], {"days": 1}, user="staff")
    assert [t["name"] for t in _open_tasks(designer, waiting["id"])] == ["review"]


def test_bulk_migration_moves_what_it_can_and_reports_the_rest(designer: Engine) -> None:
    deploy_leave(designer, leave_files())
    at_fill = designer.start("leave", {}, user="staff")
    at_review = designer.start("leave", {}, user="staff")
    designer.complete(_open_tasks(designer, at_review["id"])[0]["id"], {"days": 2}, user="staff")
    deploy_leave(designer, leave_files(review=False, fill_name="填写"))  # the review step is gone
    results = designer.migrate_instances([at_fill["id"], at_review["id"]], user="admin")
    assert [r["migrated"] for r in results] == [True, False]
    assert any("审批" in reason for reason in results[1]["reasons"])
    assert designer.instance(at_fill["id"])["version"] == 2
    assert designer.instance(at_review["id"])["version"] == 1
    designer.complete(_open_tasks(designer, at_fill["id"])[0]["id"], {"days": 1}, user="staff")
    assert designer.instance(at_fill["id"])["status"] == "completed"


def test_finished_instances_are_not_candidates_and_only_designers_migrate(
    designer: Engine,
) -> None:
    deploy_leave(designer, leave_files(review=False))
    done = designer.start("leave", {}, user="staff")
    designer.complete(_open_tasks(designer, done["id"])[0]["id"], {"days": 1}, user="staff")
    running = designer.start("leave", {}, user="staff")
    deploy_leave(designer, leave_files())
    ids = [i["instance_id"] for i in designer.migration_check("leave", user="admin")["instances"]]
    assert ids == [running["id"]]
    (refused,) = designer.migrate_instances([done["id"]], user="designer")
    assert refused["migrated"] is False and "completed" in refused["reasons"][0]
    with pytest.raises(Forbidden):
        designer.migrate_instances([running["id"]], user="staff")
    with pytest.raises(Forbidden):
        designer.migration_check("leave", user="staff")


REMINDER = (
    '<bpmn:boundaryEvent id="late" name="超时" cancelActivity="false" attachedToRef="fill">'
    "<bpmn:outgoing>f_late</bpmn:outgoing><bpmn:timerEventDefinition>"
    "<bpmn:timeDate>workdays_after(2)</bpmn:timeDate></bpmn:timerEventDefinition>"
    "</bpmn:boundaryEvent>"
    '<bpmn:serviceTask id="urge_fill" name="催办填写"><bpmn:extensionElements>'
    '<spiffworkflow:serviceTaskOperator id="urge" resultVariable="urged">'
    '<spiffworkflow:parameters><spiffworkflow:parameter id="task" type="str" value="\'fill\'"/>'
    "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>"
    "<bpmn:incoming>f_late</bpmn:incoming><bpmn:outgoing>f_urged</bpmn:outgoing>"
    "</bpmn:serviceTask>"
    '<bpmn:endEvent id="urged"><bpmn:incoming>f_urged</bpmn:incoming></bpmn:endEvent>'
    '<bpmn:sequenceFlow id="f_late" sourceRef="late" targetRef="urge_fill"/>'
    '<bpmn:sequenceFlow id="f_urged" sourceRef="urge_fill" targetRef="urged"/>'
)


def _with_reminder(files: dict[str, str]) -> dict[str, str]:
    return {
        **files,
        "leave.bpmn": files["leave.bpmn"].replace("</bpmn:process>", REMINDER + "</bpmn:process>"),
    }


def test_a_moved_instance_keeps_its_running_timer(designer: Engine) -> None:
    deploy_leave(designer, _with_reminder(leave_files()))
    waiting = designer.start("leave", {}, user="staff")
    with designer.read_session() as session:
        due = session.scalars(select(Timer.due_at).where(Timer.state == "waiting")).one()
    designer.clock.advance(days=1)  # type: ignore[attr-defined]
    deploy_leave(designer, _with_reminder(leave_files(fill_name="填写请假单")))
    (result,) = designer.migrate_instances([waiting["id"]], user="designer")
    assert result["migrated"] is True
    with designer.read_session() as session:
        assert session.scalars(select(Timer.due_at).where(Timer.state == "waiting")).one() == due
    assert designer.fire_due_timers(now=due) == 1
    (task,) = _open_tasks(designer, waiting["id"])
    assert task["title"] == "填写请假单" and task["urge_count"] == 1
