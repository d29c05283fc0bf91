"""The process designer: drafts, check (parse, lint, scenarios), deploy, versions, diff, API."""

import pytest

from engine import Engine
from engine.errors import Conflict, Forbidden, InvalidData, NotFound
from tests.designer_bundles import DIRECTORY, deploy_leave, leave_files


@pytest.fixture
def designer(engine: Engine) -> Engine:
    engine.load_directory(DIRECTORY, "pw")
    return engine


def test_a_checked_draft_deploys_as_a_new_version_with_who_and_when(designer: Engine) -> None:
    assert deploy_leave(designer, leave_files())["version"] == 1
    designer.save_draft("leave", leave_files(fill_name="填写请假单"), user="designer")
    changes = designer.check_draft("leave", user="designer")["changes"]
    assert changes["since_version"] == 1
    assert [e["id"] for e in changes["changed"]] == ["fill"] and changes["added"] == []
    assert designer.deploy_draft("leave", user="designer")["version"] == 2
    designer.start("leave", {}, user="staff")
    listed = designer.process_versions("leave", user="designer")
    assert [v["version"] for v in listed["versions"]] == [1, 2]
    assert {v["deployed_by"] for v in listed["versions"]} == {"designer"}
    assert listed["versions"][1]["deployed_at"].startswith("2026-12-01")
    assert [v["running"] for v in listed["versions"]] == [0, 1]
    assert listed["draft"] is None  # a deployed draft is consumed


def test_a_new_draft_starts_from_the_latest_version_files(designer: Engine) -> None:
    deploy_leave(designer, leave_files())
    draft = designer.draft("leave", user="designer")
    assert draft["saved"] is False and draft["base_version"] == 1
    assert set(draft["files"]) == {"leave.bpmn", "forms/leave/form.json", "leave.scenarios.yaml"}
    assert "填写申请" in draft["files"]["leave.bpmn"]


def test_check_reports_unreachable_steps_and_unknown_roles_with_their_elements(
    designer: Engine,
) -> None:
    designer.save_draft("leave", leave_files(orphan=True, lane="不存在的角色"), user="designer")
    result = designer.check_draft("leave", user="designer")
    assert result["ok"] is False
    where = {(p["file"], p["element"]) for p in result["problems"]}
    assert ("leave.bpmn", "lost") in where
    assert any("不存在的角色" in p["message"] for p in result["problems"])
    with pytest.raises(Conflict):
        designer.deploy_draft("leave", user="designer")
    assert designer.designer_processes(user="designer")[0]["versions"] == []


def test_check_reports_a_user_task_without_lane_or_form_and_bad_properties(
    designer: Engine,
) -> None:
    files = leave_files(due="三天")
    files["leave.bpmn"] = files["leave.bpmn"].replace(
        '<spiffworkflow:property name="formJsonSchemaFilename" value="forms/leave/form.json"/>',
        "",
        1,
    )
    designer.save_draft("leave", files, user="designer")
    messages = [p["message"] for p in designer.check_draft("leave", user="designer")["problems"]]
    assert any("没有指定表单" in m for m in messages)
    assert any("非负整数" in m for m in messages)


def test_a_service_task_named_like_its_handler_is_pointed_at(designer: Engine) -> None:
    files = leave_files()
    service = (
        '<bpmn:serviceTask id="notify"><bpmn:extensionElements>'
        '<spiffworkflow:serviceTaskOperator id="notify" resultVariable="sent"/>'
        "</bpmn:extensionElements></bpmn:serviceTask>"
    )
    files["leave.bpmn"] = files["leave.bpmn"].replace(
        "</bpmn:process>", service + "</bpmn:process>"
    )
    designer.save_draft("leave", files, user="designer")
    problems = designer.check_draft("leave", user="designer")["problems"]
    assert any("不能与处理程序同名" in p["message"] and p["element"] == "notify" for p in problems)


def test_a_broken_diagram_is_one_problem_naming_the_file(designer: Engine) -> None:
    designer.save_draft("leave", {"leave.bpmn": "<bpmn:definitions"}, user="designer")
    result = designer.check_draft("leave", user="designer")
    assert not result["ok"]
    assert result["problems"][0]["file"] == "leave.bpmn"
    assert "XML" in result["problems"][0]["message"]


def test_a_failing_scenario_blocks_the_deploy(designer: Engine) -> None:
    designer.save_draft("leave", leave_files(expect="end"), user="designer")  # expects no review
    result = designer.check_draft("leave", user="designer")
    assert not result["ok"]
    assert result["scenarios"][0]["ok"] is False
    assert "填写后送审" in result["problems"][0]["message"]
    with pytest.raises(Conflict):
        designer.deploy_draft("leave", user="designer")


def test_a_malformed_scenario_file_is_a_problem_not_a_crash(designer: Engine) -> None:
    files = {**leave_files(), "leave.scenarios.yaml": "scenarios: [ {start: nope"}
    designer.save_draft("leave", files, user="designer")
    result = designer.check_draft("leave", user="designer")
    assert result["ok"] is False
    assert "场景测试无法运行" in result["problems"][0]["message"]


def test_a_change_after_the_check_needs_a_new_check(designer: Engine) -> None:
    designer.save_draft("leave", leave_files(), user="designer")
    assert designer.check_draft("leave", user="designer")["ok"]
    designer.save_draft("leave", leave_files(fill_name="改了"), user="designer")
    assert designer.draft("leave", user="designer")["checked_current"] is False
    with pytest.raises(Conflict, match="检查"):
        designer.deploy_draft("leave", user="designer")


def test_a_stale_editor_cannot_overwrite_a_newer_draft(designer: Engine) -> None:
    first = designer.save_draft("leave", leave_files(), user="designer", based_on=None)
    with pytest.raises(Conflict):  # a second editor who also began with no draft
        designer.save_draft("leave", leave_files(fill_name="另一版"), user="admin", based_on=None)
    again = designer.save_draft(
        "leave", leave_files(fill_name="接着改"), user="designer", based_on=first["updated_at"]
    )
    assert "接着改" in designer.draft("leave", user="designer")["files"]["leave.bpmn"]
    assert again["updated_by"] == "designer"


def test_diff_names_added_removed_and_changed_elements(designer: Engine) -> None:
    deploy_leave(designer, leave_files(review=False))
    deploy_leave(designer, leave_files(fill_name="填写请假单", due="3"))
    diff = designer.diff_versions("leave", 1, 2, user="designer")
    assert "review" in {e["id"] for e in diff["added"]}
    changed = {e["id"]: e["changes"] for e in diff["changed"]}
    assert "名称" in changed["fill"] and "属性" in changed["fill"]
    back = designer.diff_versions("leave", 2, 1, user="designer")
    assert "review" in {e["id"] for e in back["removed"]}


def test_only_designers_and_admins_may_design(designer: Engine) -> None:
    with pytest.raises(Forbidden):
        designer.save_draft("leave", leave_files(), user="staff")
    with pytest.raises(Forbidden):
        designer.designer_processes(user="director")
    designer.save_draft("leave", leave_files(), user="admin")
    with pytest.raises(Forbidden):
        designer.check_draft("leave", user="staff")


@pytest.mark.parametrize(
    "files",
    [{}, {"../evil.bpmn": "x"}, {"/abs.bpmn": "x"}, {"form.json": "{}"}, {"a.exe": "x"}],
)
def test_draft_files_are_checked(designer: Engine, files: dict[str, str]) -> None:
    with pytest.raises(InvalidData):
        designer.save_draft("leave", files, user="designer")


def test_unknown_things_are_not_found(designer: Engine) -> None:
    with pytest.raises(NotFound):
        designer.draft("nothing", user="designer")
    with pytest.raises(NotFound):
        designer.check_draft("nothing", user="designer")
    with pytest.raises(NotFound):
        designer.diff_versions("leave", 1, 2, user="designer")


# ---------------------------------------------------------------------- API
@pytest.fixture
def client(designer: Engine):
    from webui import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "test"}, engine=designer)
    return app.test_client()


def _auth(client, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": "pw"})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def test_api_save_check_deploy_diff_and_migrate(client, designer: Engine) -> None:
    auth = _auth(client, "designer")
    base = "/api/v1/designer/processes/leave"
    assert client.get(f"{base}/draft", headers=auth).status_code == 404
    saved = client.put(f"{base}/draft", json={"files": leave_files(review=False)}, headers=auth)
    assert saved.status_code == 200 and saved.get_json()["saved"] is True
    early = client.post(f"{base}/draft/deploy", headers=auth)
    assert early.status_code == 409 and "检查" in early.get_json()["message"]
    checked = client.post(f"{base}/draft/check", headers=auth).get_json()
    assert checked["ok"] is True and checked["scenarios"][0]["ok"] is True
    deployed = client.post(f"{base}/draft/deploy", headers=auth)
    assert deployed.status_code == 201 and deployed.get_json()["version"] == 1
    running = designer.start("leave", {}, user="staff")

    client.put(f"{base}/draft", json={"files": leave_files()}, headers=auth)
    client.post(f"{base}/draft/check", headers=auth)
    assert client.post(f"{base}/draft/deploy", headers=auth).get_json()["version"] == 2
    listed = client.get("/api/v1/designer/processes", headers=auth).get_json()
    assert [v["version"] for v in listed[0]["versions"]] == [1, 2]
    diff = client.get(f"{base}/diff?old=1&new=2", headers=auth).get_json()
    assert "review" in {e["id"] for e in diff["added"]}
    files = client.get(f"{base}/versions/1", headers=auth).get_json()
    assert "review" not in files["files"][files["bpmn_file"]]

    check = client.get(f"{base}/migration", headers=auth).get_json()
    assert check["instances"][0]["can_move"] is True
    moved = client.post(
        "/api/v1/designer/migrations",
        json={"instances": [running["id"]], "reason": "加审批"},
        headers=auth,
    )
    assert moved.get_json()["results"][0]["migrated"] is True
    assert designer.instance(running["id"])["version"] == 2


def test_api_refusals_are_json(client) -> None:
    staff, auth = _auth(client, "staff"), _auth(client, "designer")
    base = "/api/v1/designer/processes/leave"
    refused = client.put(f"{base}/draft", json={"files": leave_files()}, headers=staff)
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert client.get("/api/v1/designer/processes", headers=staff).status_code == 403
    assert client.get("/api/v1/designer/processes").status_code == 401
    bad = client.put(f"{base}/draft", json={"files": {"x.bpmn": 1}}, headers=auth)
    assert bad.status_code == 422 and "files" in bad.get_json()["errors"]
    assert client.get(f"{base}/diff?old=x&new=1", headers=auth).status_code == 422
    wrong = client.post("/api/v1/designer/migrations", json={"instances": "all"}, headers=auth)
    assert wrong.status_code == 422
    assert client.delete(f"{base}/draft", headers=auth).status_code == 404
