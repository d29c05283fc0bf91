"""A whole 督办事项 through the API alone, each person with their own token, as in real life:
staff drafts it, the deputy director approves, the town's liaison acknowledges, plans, reports and
applies for completion, staff verifies and closes it. Other units never see it."""

import pytest

from engine import Engine
from tests.county import TOWN_ITEM, token
from webui import create_app


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    """These tests run on a fresh copy of the demo county."""
    return county_engine


@pytest.fixture
def client(engine: Engine):
    app = create_app({"TESTING": True, "SECRET_KEY": "walk"}, engine=engine)
    return app.test_client()


def _only_task(client, auth, name: str) -> dict:
    inbox = client.get("/api/v1/tasks", headers=auth).get_json()
    matching = [t for t in inbox["items"] if t["name"] == name]
    assert len(matching) == 1, inbox
    return matching[0]


def _complete(client, auth, task: dict, data: dict) -> dict:
    if task["assignee"] is None:
        assert client.post(f"/api/v1/tasks/{task['id']}/claim", headers=auth).status_code == 200
    response = client.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": data}, headers=auth
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_supervision_item_from_draft_to_closure(client) -> None:
    staff, deputy = token(client, "staff"), token(client, "deputy")
    town, other_unit = token(client, "town_liaison"), token(client, "unit_liaison")

    started = client.post(
        "/api/v1/instances",
        json={"process": "supervision_item", "data": {"title": "城关镇人居环境整治"}},
        headers=staff,
    )
    assert started.status_code == 201
    instance_id = started.get_json()["id"]

    draft = _only_task(client, staff, "draft")
    _complete(
        client,
        staff,
        draft,
        TOWN_ITEM,
    )
    _complete(client, deputy, _only_task(client, deputy, "approve"), {"decision": "approve"})

    # The town sees the item and its instance; a member unit's liaison sees neither.
    ledger = client.get("/api/v1/items", headers=town).get_json()
    assert [i["title"] for i in ledger["items"]] == ["城关镇人居环境整治"]
    assert ledger["items"][0]["status"] == "待签收"
    assert client.get("/api/v1/items", headers=other_unit).get_json()["total"] == 0
    refused = client.get(f"/api/v1/instances/{instance_id}", headers=other_unit)
    assert refused.status_code == 403 and "无权" in refused.get_json()["message"]

    ack = {"acknowledged": True, "contact_person": "周小红", "contact_phone": "0771-5550001"}
    _complete(client, town, _only_task(client, town, "acknowledge"), ack)
    plan = {"plan": "分两批建设，2月底完成第一批6个村。"}
    _complete(client, town, _only_task(client, town, "plan"), plan)
    report = {"progress": 100, "done": "12个村全部建成", "next_action": "complete"}
    _complete(client, town, _only_task(client, town, "report_progress"), report)
    completion = {
        "completion_summary": "12个村垃圾分类设施全部建成。",
        "evidence": [{"name": "验收.pdf"}],
    }
    _complete(client, town, _only_task(client, town, "apply_completion"), completion)
    _complete(
        client,
        staff,
        _only_task(client, staff, "verify"),
        {"decision": "approve", "closure_note": "同意销号"},
    )

    detail = client.get(f"/api/v1/instances/{instance_id}", headers=town).get_json()
    assert detail["status"] == "completed"
    people = {event["actor"] for event in detail["history"] if event.get("actor")}
    assert {"staff", "deputy", "town_liaison"} <= people
    closed = client.get("/api/v1/items?closed=true", headers=staff).get_json()["items"]
    assert [(i["title"], i["status"], i["lead_unit"]) for i in closed] == [
        ("城关镇人居环境整治", "已销号", "城关镇")
    ]
    diagram = client.get(f"/api/v1/instances/{instance_id}/diagram", headers=town).get_json()
    assert "verify" in diagram["completed"] and diagram["current"] == []
    assert diagram["xml"].lstrip().startswith("<?xml")
