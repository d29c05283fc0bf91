"""The approval operations over the JSON API: each route's happy path and its 403, 409 and 422,
all as JSON `{error, message, errors?}` with a Chinese message."""

import re
from collections.abc import Callable
from typing import Any

import pytest

from engine import Engine
from tests.approval_processes import APPROVE, add_people, deploy_all, only, start_and_draft
from webui import create_app

CHINESE = re.compile(r"[\u4e00-\u9fff]")


class Api:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def _auth(self, user: str) -> dict[str, str]:
        if user not in self.tokens:
            response = self.client.post(
                "/api/v1/auth/token", json={"username": user, "password": "pass1234"}
            )
            self.tokens[user] = response.get_json()["token"]
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def post(self, path: str, user: str, body: Any = None) -> Any:
        return self.client.post(f"/api/v1{path}", json=body, headers=self._auth(user))

    def get(self, path: str, user: str) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self._auth(user))


@pytest.fixture
def api(engine: Engine, deploy: Callable[..., Any]) -> Api:
    add_people(engine)
    deploy_all(deploy)
    app = create_app({"TESTING": True, "SECRET_KEY": "test"}, engine=engine)
    return Api(app.test_client())


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["error"] and CHINESE.search(body["message"]), body
    return body


def reviewing(engine: Engine, user: str = "rev1") -> tuple[int, str]:
    """An instance whose 审核 step `user` has claimed."""
    iid = start_and_draft(engine)
    task_id = only(engine, user, iid, "review")["id"]
    engine.claim(task_id, user)
    return iid, task_id


# ------------------------------------------------------------------ 转办 / 委派
def test_transfer(api: Api, engine: Engine) -> None:
    _, task_id = reviewing(engine)
    error(api.post(f"/tasks/{task_id}/transfer", "rev2", {"to": "carol"}), 409)  # rev1 holds it
    assert error(api.post(f"/tasks/{task_id}/transfer", "rev1", {}), 422)["errors"]["to"]
    error(api.post(f"/tasks/{task_id}/transfer", "rev1", {"to": 7}), 422)

    done = api.post(f"/tasks/{task_id}/transfer", "rev1", {"to": "carol", "opinion": "请办理"})

    assert done.status_code == 200 and done.get_json()["assignee"] == "carol"
    engine.complete(task_id, APPROVE, user="carol")
    error(api.post(f"/tasks/{task_id}/transfer", "carol", {"to": "rev1"}), 409)


def test_delegate(api: Api, engine: Engine) -> None:
    _, task_id = reviewing(engine)
    error(api.post(f"/tasks/{task_id}/delegate", "rev2", {"to": "carol"}), 409)
    error(api.post(f"/tasks/{task_id}/delegate", "rev1", {"to": "rev1"}), 422)

    done = api.post(f"/tasks/{task_id}/delegate", "rev1", {"to": "carol"})

    assert done.get_json() == {"id": task_id, "assignee": "carol", "owner": "rev1"}
    error(api.post(f"/tasks/{task_id}/delegate", "carol", {"to": "rev2"}), 409)
    answered = api.post(f"/tasks/{task_id}/complete", "carol", {"data": APPROVE})
    assert answered.status_code == 200
    assert api.get(f"/tasks/{task_id}", "rev1").get_json()["delegation"] == "resolved"


# ------------------------------------------------------------------ 加签
def test_add_signers(api: Api, engine: Engine) -> None:
    _, task_id = reviewing(engine)
    path = f"/tasks/{task_id}/add-signers"
    error(api.post(path, "rev2", {"users": ["lead"]}), 409)
    error(api.post(path, "rev1", {"users": "lead"}), 422)
    error(api.post(path, "rev1", {"users": ["lead"], "before": "yes"}), 422)
    error(api.post(path, "rev1", {"users": ["lead"], "before": False, "data": {}}), 422)

    done = api.post(path, "rev1", {"users": ["lead"], "before": True, "opinion": "请会签"})

    assert done.get_json() == {
        "id": task_id,
        "state": "waiting",
        "signers": ["lead"],
        "before": True,
    }
    error(api.post(path, "rev1", {"users": ["carol"]}), 409)
    error(api.post(f"/tasks/{task_id}/complete", "rev1", {"data": APPROVE}), 409)


# ------------------------------------------------------------------ 退回
def test_return(api: Api, engine: Engine) -> None:
    iid, task_id = reviewing(engine)
    path = f"/tasks/{task_id}/return"
    missing = error(api.post(path, "rev1", {"to": "draft"}), 422)
    assert missing["errors"] == {"reason": "请填写退回原因"}
    error(api.post(path, "rev2", {"reason": "不行"}), 409)
    error(api.post(path, "rev1", {"reason": "不行", "to": "sign_off"}), 422)
    targets = api.get(f"/tasks/{task_id}/return-targets", "rev1").get_json()["items"]
    assert [t["to"] for t in targets] == ["draft"]
    error(api.get(f"/tasks/{task_id}/return-targets", "carol"), 403)

    done = api.post(path, "rev1", {"reason": "请补充依据"})

    assert done.status_code == 200 and done.get_json()["returned_to"] == "起草"
    error(api.post(path, "rev1", {"reason": "再退"}), 409)
    error(api.get(f"/tasks/{task_id}/return-targets", "rev1"), 409)
    draft = api.get("/tasks", "alice").get_json()["items"][0]
    assert draft["returned"] and draft["instance_id"] == iid


def test_return_with_the_opinion_field_as_reason(api: Api, engine: Engine) -> None:
    _, task_id = reviewing(engine)
    done = api.post(f"/tasks/{task_id}/return", "rev1", {"opinion": "理由写在意见里"})
    assert done.status_code == 200


# ------------------------------------------------------------------ 撤回
def test_withdraw(api: Api, engine: Engine) -> None:
    started = engine.start("seq", user="alice")
    draft = only(engine, "alice", started["id"])["id"]
    engine.complete(draft, {"content": "初稿"}, user="alice")
    error(api.post(f"/tasks/{draft}/withdraw", "bob"), 403)
    error(api.post(f"/tasks/{draft}/withdraw", "alice", {"opinion": 5}), 422)

    done = api.client.post(f"/api/v1/tasks/{draft}/withdraw", headers=api._auth("alice"))

    assert done.status_code == 200 and len(done.get_json()["tasks"]) == 1
    again = done.get_json()["tasks"][0]
    engine.complete(again, {"content": "二稿"}, user="alice")
    engine.claim(only(engine, "rev1", started["id"])["id"], "rev1")
    assert "下一步" in error(api.post(f"/tasks/{again}/withdraw", "alice", {}), 409)["message"]


# ------------------------------------------------------------------ 催办
def test_urge(api: Api, engine: Engine) -> None:
    _, task_id = reviewing(engine)
    error(api.post(f"/tasks/{task_id}/urge", "carol", {}), 403)
    error(api.post(f"/tasks/{task_id}/urge", "alice", {"message": ["x"]}), 422)

    done = api.post(f"/tasks/{task_id}/urge", "alice", {"message": "请今天办结"})

    assert done.get_json() == {"id": task_id, "urge_count": 1, "notified": 1}
    engine.complete(task_id, APPROVE, user="rev1")
    error(api.post(f"/tasks/{task_id}/urge", "alice", {}), 409)


# ------------------------------------------------------------------ 抄送
def test_cc_and_the_cc_box(api: Api, engine: Engine) -> None:
    iid, task_id = reviewing(engine)
    error(api.post(f"/tasks/{task_id}/cc", "carol", {"users": ["lead"]}), 403)
    error(api.post(f"/tasks/{task_id}/cc", "rev1", {"users": []}), 422)

    done = api.post(f"/tasks/{task_id}/cc", "rev1", {"users": ["carol"], "opinion": "知悉"})

    assert done.get_json() == {"id": task_id, "copied": ["carol"]}
    box = api.get("/tasks?box=cc", "carol").get_json()
    assert box["box"] == "cc" and box["items"][0]["instance_id"] == iid
    cc_id = box["items"][0]["id"]
    error(api.post(f"/cc/{cc_id}/read", "lead"), 404)
    assert api.post(f"/cc/{cc_id}/read", "carol").get_json()["read_at"]
    engine.complete(task_id, APPROVE, user="rev1")
    error(api.post(f"/tasks/{task_id}/cc", "rev2", {"users": ["lead"]}), 409)


def test_boxes(api: Api, engine: Engine) -> None:
    iid = start_and_draft(engine)
    for box, user, total in (("todo", "rev1", 1), ("done", "alice", 1), ("started", "alice", 1)):
        listed = api.get(f"/tasks?box={box}", user).get_json()
        assert (listed["box"], listed["total"]) == (box, total), listed
    assert api.get("/tasks?box=started", "alice").get_json()["items"][0]["id"] == iid
    assert error(api.get("/tasks?box=trash", "alice"), 422)["errors"]["box"]


# ------------------------------------------------------------------ admin
def test_reassign(api: Api, engine: Engine) -> None:
    _, task_id = reviewing(engine)
    error(api.post(f"/tasks/{task_id}/reassign", "rev1", {"to": "carol", "reason": "x"}), 403)
    error(api.post(f"/tasks/{task_id}/reassign", "admin", {"to": "carol"}), 422)

    done = api.post(f"/tasks/{task_id}/reassign", "admin", {"to": "carol", "reason": "休假"})

    assert done.get_json()["assignee"] == "carol"
    engine.complete(task_id, APPROVE, user="carol")
    error(api.post(f"/tasks/{task_id}/reassign", "admin", {"to": "rev1", "reason": "x"}), 409)


def test_reset(api: Api, engine: Engine) -> None:
    iid, task_id = reviewing(engine)
    error(api.post(f"/instances/{iid}/reset", "alice", {"to": "draft", "reason": "x"}), 403)
    error(api.post(f"/instances/{iid}/reset", "admin", {"to": "draft"}), 422)
    error(api.post(f"/instances/{iid}/reset", "admin", {"to": "nowhere", "reason": "x"}), 422)

    done = api.post(f"/instances/{iid}/reset", "admin", {"to": "draft", "reason": "重新起草"})

    assert done.status_code == 200 and done.get_json()["reset_to"] == "起草"
    engine.terminate(iid, user="admin", reason="作废")
    error(api.post(f"/instances/{iid}/reset", "admin", {"to": "draft", "reason": "x"}), 409)


def test_unknown_task_is_404_for_every_operation(api: Api) -> None:
    for action, body in (
        ("transfer", {"to": "carol"}),
        ("delegate", {"to": "carol"}),
        ("add-signers", {"users": ["carol"]}),
        ("return", {"reason": "x"}),
        ("withdraw", {}),
        ("urge", {}),
        ("cc", {"users": ["carol"]}),
    ):
        error(api.post(f"/tasks/nope/{action}", "rev1", body), 404)
