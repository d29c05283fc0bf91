"""转办 / 委派 go only to people who may hold the step (engine/handover.py): on the demo county,
the deputy director's 立项审批 of a 督办事项 can go to another 常务副主任, never to a town's
liaison, the administrator or the designer — refused by the engine and the API alike, changing
nothing; a step's `transferRoles` widens the list, `角色@unit` within the step's unit, and the
designer's check names unknown or system roles there."""

import json
from typing import Any

import pytest

from engine import Engine, InvalidData
from tests.builders import bpmn, flow, user_task
from tests.county import TOWN_ITEM, open_step, token
from tests.designer_bundles import DIRECTORY as DESIGNER_DIRECTORY
from tests.designer_bundles import leave_files
from webui import create_app

APPROVE = {"decision": "approve"}
TOWN_LIAISON_REFUSED = "周小红不能办理“立项审批”：本环节只能转交给常务副主任"


@pytest.fixture
def approval(county_engine: Engine) -> tuple[int, str]:
    """A 督办事项 led by 城关镇, drafted by staff; the deputy has claimed its 立项审批."""
    instance_id = county_engine.start("supervision_item", user="staff")["id"]
    county_engine.complete(open_step(county_engine, instance_id, "draft"), TOWN_ITEM, user="staff")
    task_id = open_step(county_engine, instance_id, "approve")
    county_engine.claim(task_id, "deputy")
    return instance_id, task_id


def _names(people: list[dict[str, Any]]) -> set[str]:
    return {person["username"] for person in people}


def _state(engine: Engine, instance_id: int, task_id: str) -> tuple[Any, ...]:
    """What a refused hand-over must leave as it was."""
    detail = engine.instance(instance_id)
    handed = [h for h in detail["history"] if h["kind"] in ("task_transferred", "task_delegated")]
    task = engine.task(task_id, "deputy")
    return detail["status"], detail["revision"], task["assignee"], task["delegation"], handed


def test_the_deputys_approval_goes_only_to_the_other_executive_deputies(
    county_engine: Engine, approval: tuple[int, str]
) -> None:
    _, task_id = approval
    offered = county_engine.transfer_candidates(task_id, "deputy")

    assert _names(offered) == {"deputy2", "deputy3", "deputy4"}
    assert {"name": "王建国", "username": "deputy2", "unit": "县指挥办"} in offered
    for outsider in ("town_liaison", "unit_liaison", "admin", "designer", "director", "staff"):
        assert outsider not in _names(offered)
    assert "deputy" not in _names(offered)  # the holder himself

    county_engine.deactivate_user("deputy4", user="admin", reason="调离")
    assert _names(county_engine.transfer_candidates(task_id, "deputy")) == {"deputy2", "deputy3"}
    # only who may act on the task may ask
    with pytest.raises(Exception, match="办理人|认领"):
        county_engine.transfer_candidates(task_id, "town_liaison")


def test_the_engine_refuses_an_ineligible_target_and_changes_nothing(
    county_engine: Engine, approval: tuple[int, str]
) -> None:
    instance_id, task_id = approval
    before = _state(county_engine, instance_id, task_id)
    assert before[:1] == ("running",) and before[2:] == ("deputy", None, [])

    with pytest.raises(InvalidData) as refused:
        county_engine.transfer(task_id, "town_liaison", user="deputy", opinion="请城关镇办理")
    assert refused.value.message == TOWN_LIAISON_REFUSED
    assert refused.value.errors == {"to": TOWN_LIAISON_REFUSED}
    for target, who in (("admin", "系统管理员"), ("designer", "流程设计员"), ("staff", "王晓燕")):
        for command in (county_engine.transfer, county_engine.delegate):
            with pytest.raises(InvalidData, match=f"^{who}不能办理“立项审批”："):
                command(task_id, target, user="deputy")
    with pytest.raises(InvalidData, match="周小红不能办理"):
        county_engine.delegate(task_id, "town_liaison", user="deputy")

    assert _state(county_engine, instance_id, task_id) == before
    assert not [t for t in county_engine.tasks("town_liaison")["items"] if t["id"] == task_id]


def test_the_api_refuses_it_too_and_lists_the_candidates(
    county_engine: Engine, approval: tuple[int, str]
) -> None:
    instance_id, task_id = approval
    client = create_app({"TESTING": True, "SECRET_KEY": "t"}, engine=county_engine).test_client()
    deputy = token(client, "deputy")
    before = _state(county_engine, instance_id, task_id)

    listed = client.get(f"/api/v1/tasks/{task_id}/transfer-candidates", headers=deputy)
    assert listed.status_code == 200
    assert _names(listed.get_json()["items"]) == {"deputy2", "deputy3", "deputy4"}
    other = client.get(
        f"/api/v1/tasks/{task_id}/transfer-candidates", headers=token(client, "town_liaison")
    )
    assert other.status_code == 403

    for operation in ("transfer", "delegate"):
        response = client.post(
            f"/api/v1/tasks/{task_id}/{operation}", json={"to": "town_liaison"}, headers=deputy
        )
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["message"] == TOWN_LIAISON_REFUSED
        assert response.get_json()["errors"] == {"to": TOWN_LIAISON_REFUSED}
    assert _state(county_engine, instance_id, task_id) == before


def test_the_task_page_offers_only_the_eligible(
    county_engine: Engine, approval: tuple[int, str]
) -> None:
    _, task_id = approval
    config = {"TESTING": True, "SECRET_KEY": "t", "WTF_CSRF_ENABLED": False}
    client = create_app(config, engine=county_engine).test_client()
    assert client.post("/login", data={"username": "deputy", "password": "demo"}).status_code == 302
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    transfer = page.split('id="op-transfer-to"')[1].split("</select>")[0]
    delegate = page.split('id="op-delegate-to"')[1].split("</select>")[0]
    for picker in (transfer, delegate):
        assert 'value="deputy2"' in picker and 'value="deputy3"' in picker
        assert 'value="town_liaison"' not in picker and 'value="admin"' not in picker
        assert 'value="designer"' not in picker
    refused = client.post(
        f"/tasks/{task_id}/transfer", data={"to": "town_liaison"}, follow_redirects=True
    )
    assert TOWN_LIAISON_REFUSED in refused.get_data(as_text=True)
    assert county_engine.task(task_id, "deputy")["assignee"] == "deputy"


def test_transfer_and_delegate_to_an_eligible_colleague(
    county_engine: Engine, approval: tuple[int, str]
) -> None:
    instance_id, task_id = approval
    county_engine.delegate(task_id, "deputy3", user="deputy", opinion="请先审核")
    assert [t["id"] for t in county_engine.tasks("deputy3")["items"]] == [task_id]
    county_engine.complete(task_id, APPROVE, user="deputy3")
    assert county_engine.task(task_id, "deputy")["assignee"] == "deputy"  # back to confirm

    county_engine.transfer(task_id, "deputy2", user="deputy", opinion="请王主任审批")
    inbox = county_engine.tasks("deputy2")["items"]
    assert [(t["id"], t["assignee"]) for t in inbox] == [(task_id, "deputy2")]
    assert county_engine.tasks("deputy")["items"] == []
    assert "deputy" in _names(county_engine.transfer_candidates(task_id, "deputy2"))
    county_engine.complete(task_id, APPROVE, user="deputy2")
    assert county_engine.instance(instance_id)["status"] == "running"
    assert open_step(county_engine, instance_id, "acknowledge")


def test_a_unit_step_stays_in_its_unit(county_engine: Engine, approval: tuple[int, str]) -> None:
    """签收 is for 城关镇's liaisons: the town's B角 liaison may take it; no other unit's liaison,
    nor the town's head, may."""
    instance_id, task_id = approval
    county_engine.complete(task_id, APPROVE, user="deputy")
    acknowledge = open_step(county_engine, instance_id, "acknowledge")
    assert _names(county_engine.transfer_candidates(acknowledge, "town_liaison")) == {
        "town_liaison_b"
    }
    with pytest.raises(InvalidData, match="^赵丽娟不能办理“签收”：本环节只能转交给城关镇的联络员$"):
        county_engine.transfer(acknowledge, "unit_liaison", user="town_liaison")
    with pytest.raises(InvalidData, match="吴国强不能办理“签收”"):
        county_engine.transfer(acknowledge, "town_head", user="town_liaison")


# ------------------------------------------------------------------ transferRoles
FORM = {
    "title": "审核",
    "type": "object",
    "required": ["decision"],
    "properties": {"decision": {"type": "string", "title": "审核意见", "enum": ["approve"]}},
}
DIRECTORY = {
    "roles": [
        {"name": "经办人"},
        {"name": "审核人"},
        {"name": "协办人"},
        {"name": "单位负责人"},
        {"name": "督办员", "sees_all": True},
        {"name": "系统管理员", "sees_all": True},
        {"name": "流程设计员"},
    ],
    "units": [{"code": "a", "name": "甲局"}, {"code": "b", "name": "乙局"}],
    "users": [
        {"username": "clerk", "name": "经办甲", "unit": "a", "roles": ["经办人"]},
        {"username": "rev_a", "name": "审核甲", "unit": "a", "roles": ["审核人"]},
        {"username": "rev_a2", "name": "审核甲二", "unit": "a", "roles": ["审核人"]},
        {"username": "rev_b", "name": "审核乙", "unit": "b", "roles": ["审核人"]},
        {"username": "helper", "name": "协办丙", "unit": "b", "roles": ["协办人"]},
        {"username": "head_a", "name": "甲局长", "unit": "a", "roles": ["单位负责人"]},
        {"username": "head_b", "name": "乙局长", "unit": "b", "roles": ["单位负责人"]},
        {"username": "office_rev", "name": "督办审核", "roles": ["审核人", "督办员"]},
        {"username": "admin", "name": "管理员", "unit": "a", "roles": ["系统管理员"]},
        {"username": "designer", "name": "设计员", "unit": "a", "roles": ["流程设计员"]},
    ],
}


def _process(key: str, **props: str) -> str:
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("review", "审核", "f1", "f2", form="review.json", **props)
        + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "review")
        + flow("f2", "review", "end")
    )
    return bpmn(key, body, lanes={"经办人": ["start"], "审核人": ["review", "end"]}, name=key)


@pytest.fixture
def small(engine: Engine, deploy) -> Engine:
    engine.load_directory(DIRECTORY, "pw12")
    deploy(
        {
            "plain.bpmn": _process("plain", unit="unit"),
            "wide.bpmn": _process("wide", unit="unit", transferRoles="协办人，单位负责人@unit"),
            "system.bpmn": _process("system", transferRoles="系统管理员,流程设计员"),
            "review.json": json.dumps(FORM, ensure_ascii=False),
        }
    )
    return engine


def _review(engine: Engine, process: str) -> str:
    instance_id = engine.start(process, {"unit": "a"}, user="clerk")["id"]
    task_id = open_step(engine, instance_id, "review")
    engine.claim(task_id, "rev_a")
    return task_id


def test_transfer_roles_widen_the_list(small: Engine) -> None:
    plain = _review(small, "plain")
    # the lane's role in the step's unit, and office-wide holders of it
    assert _names(small.transfer_candidates(plain, "rev_a")) == {"rev_a2", "office_rev"}
    with pytest.raises(InvalidData, match="^协办丙不能办理“审核”：本环节只能转交给甲局的审核人$"):
        small.transfer(plain, "helper", user="rev_a")

    wide = _review(small, "wide")
    offered = _names(small.transfer_candidates(wide, "rev_a"))
    assert offered == {"rev_a2", "office_rev", "helper", "head_a"}  # not rev_b, head_b
    small.transfer(wide, "helper", user="rev_a")
    assert [t["id"] for t in small.tasks("helper")["items"]] == [wide]
    with pytest.raises(InvalidData, match="乙局长不能办理“审核”"):
        small.delegate(wide, "head_b", user="helper")
    small.delegate(wide, "head_a", user="helper")
    assert [t["id"] for t in small.tasks("head_a")["items"]] == [wide]


def test_system_roles_never_qualify_even_when_listed(small: Engine) -> None:
    task_id = _review(small, "system")
    offered = _names(small.transfer_candidates(task_id, "rev_a"))
    assert offered == {"rev_a2", "rev_b", "office_rev"}
    with pytest.raises(InvalidData, match="管理员不能办理"):
        small.transfer(task_id, "admin", user="rev_a")
    # an administrator's reassign is not bound by it (how a stuck task is repaired)
    small.reassign(task_id, "helper", user="admin", reason="专人处理")
    assert small.task(task_id, "helper")["assignee"] == "helper"


def test_the_designer_check_names_bad_transfer_roles(engine: Engine) -> None:
    engine.load_directory(DESIGNER_DIRECTORY, "pw")
    files = leave_files()
    files["leave.bpmn"] = files["leave.bpmn"].replace(
        'value="2"/>',
        'value="2"/><spiffworkflow:property name="transferRoles" '
        'value="主任@unit，不存在的角色, 系统管理员"/>',
        1,
    )
    engine.save_draft("leave", files, user="designer")
    messages = [p["message"] for p in engine.check_draft("leave", user="designer")["problems"]]
    assert "“填写申请”的 transferRoles 中的角色“不存在的角色”不存在" in messages
    assert "“填写申请”的 transferRoles 不能列系统角色“系统管理员”，它不会生效" in messages
    assert not [m for m in messages if "主任" in m]  # `角色@unit` names the role 主任
