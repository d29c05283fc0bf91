"""Sign-in, tokens, throttling, refusals and the error contract of the JSON API."""

import re

import pytest
from sqlalchemy import select

from engine import Engine, FixedClock
from engine.models import ApiToken, Event, HumanTask, User
from tests.county import token
from webui import create_app
from webui.api.openapi import document


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    """These tests run on a fresh copy of the demo county."""
    return county_engine


@pytest.fixture
def app(engine: Engine):
    return create_app({"TESTING": True, "SECRET_KEY": "access"}, engine=engine)


@pytest.fixture
def client(app):
    return app.test_client()


def _events(engine: Engine, kind: str) -> list[Event]:
    with engine.read_session() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


# ------------------------------------------------------------------ sign-in and tokens
def test_a_token_is_stored_only_as_its_hash_and_works_until_revoked(client, engine) -> None:
    response = client.post("/api/v1/auth/token", json={"username": "staff", "password": "demo"})
    body = response.get_json()
    assert body["user"]["username"] == "staff" and "password" not in str(body)
    with engine.read_session() as session:
        stored = session.scalars(select(ApiToken.token_hash)).all()
    assert stored and body["token"] not in stored
    auth = {"Authorization": f"Bearer {body['token']}"}
    me = client.get("/api/v1/auth/me", headers=auth).get_json()
    assert me["username"] == "staff" and me["sees_all"] is True and me["is_admin"] is False
    assert client.delete("/api/v1/auth/token", headers=auth).status_code == 204
    after = client.get("/api/v1/auth/me", headers=auth)
    assert after.status_code == 401 and after.get_json()["message"] == "登录凭证已注销，请重新登录"


def test_a_token_expires(client, clock: FixedClock) -> None:
    auth = token(client, "staff")
    clock.advance(hours=12, seconds=1)
    response = client.get("/api/v1/tasks", headers=auth)
    assert response.status_code == 401 and response.get_json()["error"] == "token_expired"


def test_a_deactivated_users_token_stops_working(client, engine) -> None:
    auth = token(client, "town_liaison")
    with engine.write_session() as session, session.begin():
        user = session.scalars(select(User).where(User.username == "town_liaison")).one()
        user.active = False
    assert client.get("/api/v1/tasks", headers=auth).status_code == 401


def test_repeated_failures_from_one_address_wait_then_back_off(client, engine, clock) -> None:
    for _ in range(5):
        wrong = client.post("/api/v1/auth/token", json={"username": "staff", "password": "x"})
        assert wrong.status_code == 401 and wrong.get_json()["message"] == "用户名或密码错误"
    locked = client.post("/api/v1/auth/token", json={"username": "staff", "password": "demo"})
    assert locked.status_code == 429 and "登录尝试过于频繁" in locked.get_json()["message"]
    assert int(locked.headers["Retry-After"]) > 0
    clock.advance(minutes=1, seconds=1)
    assert (
        client.post("/api/v1/auth/token", json={"username": "staff", "password": "x"}).status_code
        == 401
    )
    # the sixth failure from this address waits twice as long
    clock.advance(minutes=1, seconds=1)
    still = client.post("/api/v1/auth/token", json={"username": "staff", "password": "demo"})
    assert still.status_code == 429
    clock.advance(minutes=1)
    assert (
        client.post(
            "/api/v1/auth/token", json={"username": "staff", "password": "demo"}
        ).status_code
        == 200
    )
    failures = _events(engine, "sign_in_failed")
    assert len(failures) == 6
    assert all("demo" not in str(e.detail) and e.detail["username"] == "staff" for e in failures)


def test_unknown_names_are_throttled_alike(client) -> None:
    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    response = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    assert response.status_code == 429


# ------------------------------------------------------------------ refusals
def _documented_operations():
    for path, item in document()["paths"].items():
        if "$ref" in item:
            item = document()["components"]["pathItems"][item["$ref"].rsplit("/", 1)[-1]]
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def test_every_protected_operation_wants_sign_in(client) -> None:
    checked = 0
    for method, path, operation in _documented_operations():
        if operation.get("security") == []:
            continue
        url = "/api/v1" + re.sub(r"\{[a-z_]+\}", "1", path)
        response = client.open(url, method=method.upper(), json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.get_json()["message"] == "请先登录"
        checked += 1
    assert checked >= 30


def test_a_refusal_is_a_chinese_403_audited_and_changes_nothing(client, engine) -> None:
    staff = token(client, "staff")
    client.post(
        "/api/v1/instances",
        json={"process": "supervision_item", "data": {"title": "测试"}},
        headers=staff,
    )
    task = client.get("/api/v1/tasks", headers=staff).get_json()["items"][0]
    intruder = token(client, "town_liaison")
    response = client.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": {"title": "改掉"}}, headers=intruder
    )
    assert response.status_code == 403 and re.search(
        "[\u4e00-\u9fff]", response.get_json()["message"]
    )
    denied = _events(engine, "access_denied")
    assert len(denied) == 1 and denied[0].detail["username"] == "town_liaison"
    assert denied[0].detail["action"] == f"POST /api/v1/tasks/{task['id']}/complete"
    with engine.read_session() as session:
        assert session.get(HumanTask, task["id"]).state == "open"


@pytest.mark.parametrize(
    ("user", "method", "path", "body"),
    [
        ("staff", "post", "/api/v1/instances/{id}/terminate", {"reason": "试试"}),
        ("staff", "post", "/api/v1/instances/{id}/suspend", {"reason": "试试"}),
        ("director", "post", "/api/v1/instances/{id}/reset", {"to": "draft", "reason": "试试"}),
        ("staff", "post", "/api/v1/tasks/{task}/reassign", {"to": "deputy", "reason": "试试"}),
        ("town_liaison", "get", "/api/v1/instances/{id}", None),
        ("town_liaison", "get", "/api/v1/instances/{id}/diagram", None),
        ("town_liaison", "get", "/api/v1/tasks/{task}", None),
        ("town_liaison", "post", "/api/v1/tasks/{task}/claim", None),
        ("town_liaison", "get", "/api/v1/users?include_inactive=true", None),
        ("town_liaison", "post", "/api/v1/instances", {"process": "director_meeting"}),
    ],
)
def test_who_may_not_is_refused(client, user, method, path, body) -> None:
    staff = token(client, "staff")
    started = client.post(
        "/api/v1/instances", json={"process": "supervision_item", "data": {}}, headers=staff
    ).get_json()
    task = client.get("/api/v1/tasks", headers=staff).get_json()["items"][0]["id"]
    url = path.format(id=started["id"], task=task)
    response = client.open(url, method=method.upper(), json=body, headers=token(client, user))
    assert response.status_code == 403, response.get_json()
    assert (
        client.get(f"/api/v1/instances/{started['id']}", headers=staff).get_json()["status"]
        == "running"
    )


def test_processes_list_only_what_the_caller_may_start(client) -> None:
    staff = {
        p["key"] for p in client.get("/api/v1/processes", headers=token(client, "staff")).get_json()
    }
    town = {
        p["key"]
        for p in client.get("/api/v1/processes", headers=token(client, "town_liaison")).get_json()
    }
    assert "director_meeting" in staff and "director_meeting" not in town


def test_instance_list_follows_visibility(client) -> None:
    staff = token(client, "staff")
    client.post("/api/v1/instances", json={"process": "supervision_item"}, headers=staff)
    assert client.get("/api/v1/instances", headers=staff).get_json()["total"] == 1
    town = client.get("/api/v1/instances", headers=token(client, "town_liaison")).get_json()
    assert town["total"] == 0 and town["items"] == []
    bad = client.get("/api/v1/instances?status=lost", headers=staff)
    assert bad.status_code == 422 and "status" in bad.get_json()["errors"]


def test_directory_lists_never_show_passwords(client) -> None:
    auth = token(client, "town_liaison")
    users = client.get("/api/v1/users?unit=cgz", headers=auth).get_json()
    assert {u["username"] for u in users["items"]} >= {"town_liaison", "town_head"}
    assert "password" not in str(users) and "argon2" not in str(users)
    units = client.get("/api/v1/units?kind=town", headers=auth).get_json()
    assert "城关镇" in {u["name"] for u in units}
    assert client.get("/api/v1/users?unit=nowhere", headers=auth).status_code == 404


# ------------------------------------------------------------------ the error contract
def test_bad_input_is_json_never_a_page(client, app) -> None:
    staff = token(client, "staff")
    malformed = client.post(
        "/api/v1/instances", data="{not json", content_type="application/json", headers=staff
    )
    assert malformed.status_code == 400 and malformed.get_json()["error"] == "bad_request"
    wrong_type = client.post(
        "/api/v1/instances", json={"process": "supervision_item", "data": [1]}, headers=staff
    )
    assert wrong_type.status_code == 422 and "data" in wrong_type.get_json()["errors"]
    unknown = client.get("/api/v1/instances/999999", headers=staff)
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "not_found"
    huge_id = client.get("/api/v1/instances/99999999999999999999", headers=staff)
    assert huge_id.status_code == 404 and huge_id.is_json
    app.config["MAX_CONTENT_LENGTH"] = 1024
    oversize = client.post(
        "/api/v1/instances", json={"process": "x", "data": {"t": "长" * 2000}}, headers=staff
    )
    assert oversize.status_code == 413 and oversize.get_json()["message"] == "请求内容过大"
    paging = client.get("/api/v1/tasks?page=zero", headers=staff)
    assert paging.status_code == 422 and paging.get_json()["errors"]["page"]


def test_a_stale_revision_and_a_finished_task_are_conflicts(client) -> None:
    staff = token(client, "staff")
    client.post("/api/v1/instances", json={"process": "supervision_item"}, headers=staff)
    task = client.get("/api/v1/tasks", headers=staff).get_json()["items"][0]
    seen = client.get(f"/api/v1/tasks/{task['id']}", headers=staff).get_json()
    client.post(f"/api/v1/tasks/{task['id']}/urge", json={}, headers=staff)  # no revision change
    draft = {
        "title": "旧数据",
        "source": "主任会议决定事项",
        "content": "按期完成整治任务。",
        "lead_unit": "cgz",
        "deadline": "2027-03-31",
        "report_cycle_days": 7,
    }
    stale = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": draft, "instance_revision": seen["instance_revision"] - 1},
        headers=staff,
    )
    assert stale.status_code == 409 and stale.get_json()["error"] == "stale_revision"
    done = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": draft, "instance_revision": seen["instance_revision"]},
        headers=staff,
    )
    assert done.status_code == 200, done.get_json()
    again = client.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": draft}, headers=staff)
    assert again.status_code == 409


def test_responses_carry_security_headers(client) -> None:
    for response in (client.get("/login"), client.get("/api/v1/openapi.json")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_ledger_exports_what_it_lists(client) -> None:
    staff = token(client, "staff")
    response = client.get("/api/v1/items?format=xlsx&light=red", headers=staff)
    assert response.status_code == 200
    assert response.content_type.startswith("application/vnd.openxmlformats")
    assert response.data[:2] == b"PK"
    bad = client.get("/api/v1/items?light=purple", headers=staff)
    assert bad.status_code == 422 and "light" in bad.get_json()["errors"]


def test_notifications_are_the_callers_own(client) -> None:
    staff = token(client, "staff")
    client.post("/api/v1/instances", json={"process": "supervision_item"}, headers=staff)
    mine = client.get("/api/v1/notifications", headers=staff).get_json()
    assert mine["total"] >= 1
    others = client.get("/api/v1/notifications", headers=token(client, "town_liaison")).get_json()
    assert {n["id"] for n in others["items"]}.isdisjoint({n["id"] for n in mine["items"]})
    marked = client.post("/api/v1/notifications/read", json={}, headers=staff).get_json()
    assert marked["marked"] == mine["total"]
    unread = client.get("/api/v1/notifications?unread=true", headers=staff).get_json()
    assert unread["total"] == 0
    bad = client.post("/api/v1/notifications/read", json={"ids": ["x"]}, headers=staff)
    assert bad.status_code == 422


def test_the_dashboard_is_for_those_who_see_everything(client) -> None:
    figures = client.get("/api/v1/dashboard", headers=token(client, "director")).get_json()
    assert {"lights_by_unit", "overdue", "month", "waiting_on_leaders"} <= set(figures)
    refused = client.get("/api/v1/dashboard", headers=token(client, "town_liaison"))
    assert refused.status_code == 403 and "领导驾驶舱" in refused.get_json()["message"]
