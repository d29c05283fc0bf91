"""The JSON API over the engine core: sign-in, start, inbox, complete, and its error contract."""

import shutil
from pathlib import Path

import pytest

from engine import Engine
from webui import create_app

MODELS = Path(__file__).resolve().parents[2] / "shared" / "bench-models"


@pytest.fixture
def client(engine: Engine, tmp_path: Path):
    folder = tmp_path / "models"
    shutil.copytree(MODELS, folder)
    engine.add_user("u1", "pw12", roles=["bench_team"])
    engine.add_user("u2", "pw12", roles=["other"])
    engine.deploy(folder)
    app = create_app({"TESTING": True, "SECRET_KEY": "test"}, engine=engine)
    return app.test_client()


def _login(client, username: str = "u1") -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": "pw12"})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def test_health(client) -> None:
    assert client.get("/health").get_json()["status"] == "ok"
    home = client.get("/")  # home is the inbox, behind the sign-in page
    assert home.status_code == 302 and home.headers["Location"] == "/inbox"
    assert client.get("/inbox").headers["Location"].startswith("/login")


def test_start_list_and_complete(client) -> None:
    auth = _login(client)
    started = client.post("/api/v1/instances", json={"process": "two_user_tasks"}, headers=auth)
    assert started.status_code == 201 and started.get_json()["status"] == "running"
    inbox = client.get("/api/v1/tasks", headers=auth).get_json()
    assert inbox["total"] == 1 and inbox["items"][0]["title"] == "Task A"
    task_id = inbox["items"][0]["id"]
    detail = client.get(f"/api/v1/tasks/{task_id}", headers=auth).get_json()
    assert detail["form"]["properties"]["field_a"]["title"] == "Field a"
    done = client.post(
        f"/api/v1/tasks/{task_id}/complete", json={"data": {"field_a": "x"}}, headers=auth
    )
    assert done.status_code == 200
    again = client.post(
        f"/api/v1/tasks/{task_id}/complete", json={"data": {"field_a": "x"}}, headers=auth
    )
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"


def test_invalid_form_data_is_422_with_field_errors(client) -> None:
    auth = _login(client)
    client.post("/api/v1/instances", json={"process": "two_user_tasks"}, headers=auth)
    task_id = client.get("/api/v1/tasks", headers=auth).get_json()["items"][0]["id"]
    response = client.post(
        f"/api/v1/tasks/{task_id}/complete", json={"data": {"field_a": 7}}, headers=auth
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"field_a": "“Field a”应为文本"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/v1/tasks", None, 401),
        ("post", "/api/v1/instances", {"process": "nope"}, 404),
        ("post", "/api/v1/instances", ["not", "an", "object"], 400),
        ("get", "/api/v1/tasks/unknown", None, 404),
        ("get", "/api/v1/instances/999", None, 404),
    ],
)
def test_errors_are_json(client, method: str, path: str, body, status: int) -> None:
    headers = {} if status == 401 else _login(client)
    response = getattr(client, method)(path, json=body, headers=headers)
    assert response.status_code == status
    payload = response.get_json()
    assert payload["error"] and payload["message"]


def test_wrong_password_and_bad_token(client) -> None:
    wrong = client.post("/api/v1/auth/token", json={"username": "u1", "password": "nope"})
    assert wrong.status_code == 401 and wrong.get_json()["message"] == "用户名或密码错误"
    forged = client.get("/api/v1/tasks", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401


def test_other_users_cannot_complete(client) -> None:
    client.post("/api/v1/instances", json={"process": "two_user_tasks"}, headers=_login(client))
    task_id = client.get("/api/v1/tasks", headers=_login(client)).get_json()["items"][0]["id"]
    outsider = _login(client, "u2")
    assert client.get("/api/v1/tasks", headers=outsider).get_json()["total"] == 0
    response = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {}}, headers=outsider)
    assert response.status_code == 403


def test_completing_answers_with_the_instance_and_its_version(client) -> None:
    auth = _login(client)
    client.post("/api/v1/instances", json={"process": "two_user_tasks"}, headers=auth)
    task_id = client.get("/api/v1/tasks", headers=auth).get_json()["items"][0]["id"]
    done = client.post(
        f"/api/v1/tasks/{task_id}/complete", json={"data": {"field_a": "x"}}, headers=auth
    ).get_json()
    assert (done["process"], done["version"], done["status"]) == ("two_user_tasks", 1, "running")


def test_an_instance_is_visible_to_its_people_and_unit_not_to_others(engine, client) -> None:
    engine.add_unit("农业农村局", code="nyncj")
    engine.add_unit("水利局", code="slj")
    engine.add_user("farm", "pw12", roles=["bench_team"], unit="nyncj")
    engine.add_user("water", "pw12", roles=["other"], unit="slj")
    started = client.post(
        "/api/v1/instances", json={"process": "two_user_tasks"}, headers=_login(client)
    ).get_json()
    path = f"/api/v1/instances/{started['id']}"

    assert client.get(path, headers=_login(client)).status_code == 200  # the starter
    assert client.get(path, headers=_login(client, "farm")).status_code == 200  # a candidate
    refused = client.get(path, headers=_login(client, "water"))
    assert refused.status_code == 403 and "无权查看" in refused.get_json()["message"]
    engine.load_directory({"roles": [{"name": "指挥办工作人员", "sees_all": True}]}, "pw12")
    engine.add_user("office", "pw12", roles=["指挥办工作人员"], unit="slj")
    assert client.get(path, headers=_login(client, "office")).status_code == 200


def test_pages_speak_chinese_even_for_errors(client) -> None:
    login = client.get("/login").get_data(as_text=True)
    assert "登录督办系统" in login and 'lang="zh-CN"' in login
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "页面不存在" in missing.get_data(as_text=True)
    assert client.get("/api/v1/nope").get_json()["error"]  # the API still answers JSON
