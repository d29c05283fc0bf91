"""The pages through Flask's test client: sign-in required, refusals as friendly Chinese pages
(never a stack trace), server-side validation with per-field errors and the typed values kept,
drafts saved, restored and dropped on completion, and the vendor files."""

import json
import re
from pathlib import Path

import pytest
from flask import url_for

from engine import Engine
from tests.builders import bpmn, flow, user_task
from webui import create_app

ROOT = Path(__file__).resolve().parents[1]

FORM = {
    "title": "填报",
    "type": "object",
    "required": ["summary", "progress", "items"],
    "properties": {
        "summary": {"title": "情况", "type": "string", "minLength": 4},
        "progress": {"title": "进度", "type": "integer", "minimum": 0, "maximum": 100},
        "due": {"title": "时限", "type": "string", "format": "date"},
        "unit": {"title": "牵头单位", "type": "string", "format": "unit"},
        "urgent": {"title": "紧急", "type": "boolean"},
        "items": {
            "title": "事项",
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "title": "事项",
                "required": ["content"],
                "properties": {"content": {"title": "内容", "type": "string", "minLength": 2}},
            },
        },
    },
}
APPROVAL = {
    "title": "审批",
    "type": "object",
    "required": ["decision"],
    "properties": {
        "decision": {
            "title": "审批意见",
            "type": "string",
            "oneOf": [{"const": "approve", "title": "同意"}, {"const": "return", "title": "退回"}],
        },
        "reason": {"title": "退回原因", "type": "string"},
    },
    "if": {"properties": {"decision": {"const": "return"}}, "required": ["decision"]},
    "then": {"required": ["reason"], "properties": {"reason": {"minLength": 1}}},
}


@pytest.fixture
def app(engine: Engine, deploy):
    engine.add_unit("农业农村局", code="nyncj")
    engine.add_user("clerk", "pw12", name="王晓燕", roles=["办事员"], unit="nyncj")
    engine.add_user("boss", "pw12", name="张建国", roles=["领导"])
    engine.add_user("outsider", "pw12", name="路人", roles=["路人"])
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("fill", "填报", "f1", "f2", form="fill.json")
        + user_task("approve", "审批", "f2", "f3", form="approve.json")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "fill")
        + flow("f2", "fill", "approve")
        + flow("f3", "approve", "end")
    )
    lanes = {"办事员": ["start", "fill"], "领导": ["approve"]}
    deploy(
        {
            "report.bpmn": bpmn("report", body, lanes, name="进度填报"),
            "fill.json": json.dumps(FORM, ensure_ascii=False),
            "approve.json": json.dumps(APPROVAL, ensure_ascii=False),
        }
    )
    return create_app(
        {"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False}, engine=engine
    )


def signed_in(app, username: str):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": "pw12"})
    assert response.status_code == 302
    return client


def started(client) -> str:
    """Start the process in the page and answer the id of the first step it opened."""
    response = client.post("/start/report", data={"title": "本周填报"})
    assert response.status_code == 302
    match = re.search(r"/tasks/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


VALID = {
    "summary": "本周按计划推进",
    "progress": "40",
    "due": "2026-12-31",
    "unit": "nyncj",
    "items.0.content": "完成设计",
}


def test_pages_need_sign_in(app) -> None:
    client = app.test_client()
    for path in ("/inbox", "/start", "/ledger", "/dashboard", "/messages", "/evaluation"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_header_shows_who_is_signed_in(app) -> None:
    page = signed_in(app, "clerk").get("/inbox").get_data(as_text=True)
    assert "王晓燕" in page and "农业农村局" in page and "办事员" in page
    assert "领导驾驶舱" not in page  # only for roles that see everything


def test_starting_opens_the_first_step_with_its_form(app) -> None:
    client = signed_in(app, "clerk")
    task_id = started(client)
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert '<label for="f-summary" class="required">情况</label>' in page
    assert 'name="items.0.content"' in page  # one empty row of the repeatable list
    assert '<option value="nyncj">农业农村局</option>' in page  # the unit picker


def test_a_validation_error_is_shown_at_its_field_and_keeps_what_was_typed(app) -> None:
    client = signed_in(app, "clerk")
    task_id = started(client)
    typed = {**VALID, "progress": "150", "summary": "短", "urgent": "1"}
    response = client.post(f"/tasks/{task_id}", data=typed)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'id="f-progress-error"[^>]*>“进度”不能大于 100<', page)
    assert re.search(r'id="f-summary-error"[^>]*>“情况”至少需要 4 个字<', page)
    assert 'value="150"' in page and ">短</textarea>" not in page and 'value="短"' in page
    assert 'value="完成设计"' in page
    assert re.search(r'name="urgent" value="1"\s+checked', page)
    # nothing happened: the step is still open
    assert "填报" in client.get("/inbox").get_data(as_text=True)


def test_an_empty_list_row_is_ignored_and_a_required_list_says_so(app) -> None:
    client = signed_in(app, "clerk")
    task_id = started(client)
    data = {k: v for k, v in VALID.items() if not k.startswith("items")}
    response = client.post(f"/tasks/{task_id}", data={**data, "items.0.content": ""})
    assert response.status_code == 422
    assert "“事项”至少需要 1 项" in response.get_data(as_text=True)


def test_completing_moves_on_and_the_approver_sees_the_context(app, engine: Engine) -> None:
    clerk = signed_in(app, "clerk")
    task_id = started(clerk)
    response = clerk.post(f"/tasks/{task_id}", data={**VALID, "_opinion": "请审批"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/inbox")
    boss = signed_in(app, "boss")
    inbox = boss.get("/inbox").get_data(as_text=True)
    approve_id = re.search(r"/tasks/([0-9a-f-]{36})", inbox).group(1)
    page = boss.get(f"/tasks/{approve_id}").get_data(as_text=True)
    assert "本周按计划推进" in page and "请审批" in page  # earlier data and opinions
    assert 'name="decision" value="approve"' in page and ">同意</button>" in page
    # 退回 without a reason is refused in place; the 退回 operation sends it back to the clerk
    refused = boss.post(f"/tasks/{approve_id}", data={"decision": "return"})
    assert refused.status_code == 422 and "请填写“退回原因”" in refused.get_data(as_text=True)
    assert "退回到" in page  # the 退回 dialog offers the previous step
    empty = boss.post(f"/tasks/{approve_id}/return", data={"reason": " "}, follow_redirects=True)
    assert "请填写退回原因" in empty.get_data(as_text=True)
    back = boss.post(f"/tasks/{approve_id}/return", data={"reason": "补充数据"})
    assert back.status_code == 302
    clerk_inbox = clerk.get("/inbox").get_data(as_text=True)
    assert "被退回" in clerk_inbox


def test_a_draft_is_restored_and_dropped_on_completion(app, engine: Engine) -> None:
    client = signed_in(app, "clerk")
    task_id = started(client)
    saved = client.post(
        f"/tasks/{task_id}/draft",
        data={"summary": "写了一半的情况", "_opinion": "稍后再交"},
        headers={"X-Requested-With": "fetch"},
    )
    assert saved.status_code == 200 and saved.get_json()["data"] == {
        "summary": "写了一半的情况",
        "urgent": False,
        "items": [],
    }
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "已恢复您" in page and 'value="写了一半的情况"' in page and "稍后再交" in page
    # nobody else sees or saves my draft
    other = signed_in(app, "outsider")
    assert other.post(f"/tasks/{task_id}/draft", data={"summary": "x"}).status_code == 403
    assert client.post(f"/tasks/{task_id}", data=VALID).status_code == 302
    assert engine.task_draft(task_id, "clerk") is None


def test_refusals_are_friendly_chinese_pages(app) -> None:
    clerk = signed_in(app, "clerk")
    task_id = started(clerk)
    outsider = signed_in(app, "outsider")
    for response, status, words in (
        (outsider.get(f"/tasks/{task_id}"), 403, "无权"),
        (outsider.post(f"/tasks/{task_id}", data=VALID), 403, "无权"),
        (outsider.post("/start/report", data={"title": "x"}), 403, "无权发起"),
        (outsider.get("/dashboard"), 403, "领导驾驶舱"),
        (outsider.get("/tasks/no-such-task"), 404, "任务不存在"),
        (outsider.get("/instances/999999"), 404, "不存在"),
        (outsider.post(f"/tasks/{task_id}/claim"), 403, "不是该任务的办理人"),
    ):
        page = response.get_data(as_text=True)
        assert response.status_code == status, (status, page[:300])
        assert words in page and "Traceback" not in page and '<html lang="zh-CN">' in page


def test_an_operation_with_missing_input_comes_back_as_a_message(app, engine: Engine) -> None:
    engine.add_user("clerk2", "pw12", name="李晓明", roles=["办事员"], unit="nyncj")
    client = signed_in(app, "clerk")
    task_id = started(client)
    response = client.post(f"/tasks/{task_id}/transfer", data={"to": ""}, follow_redirects=True)
    assert response.status_code == 200 and "请选择人员" in response.get_data(as_text=True)
    # the leader does not hold 填报 (办事员's step): refused, with the reason on the page
    response = client.post(f"/tasks/{task_id}/transfer", data={"to": "boss"}, follow_redirects=True)
    assert "张建国不能办理“填报”" in response.get_data(as_text=True)
    response = client.post(
        f"/tasks/{task_id}/transfer", data={"to": "clerk2", "opinion": "请同事办理"}
    )
    assert response.status_code == 302
    assert "填报" in signed_in(app, "clerk2").get("/inbox").get_data(as_text=True)


def test_messages_are_listed_and_marked_read(app) -> None:
    clerk = signed_in(app, "clerk")
    task_id = started(clerk)
    clerk.post(f"/tasks/{task_id}", data=VALID)
    boss = signed_in(app, "boss")
    page = boss.get("/messages").get_data(as_text=True)
    assert 'class="badge"' in page and "未读" in page
    boss.post("/messages/read")
    assert 'class="badge"' not in boss.get("/messages").get_data(as_text=True)


def test_vendor_files_are_served_from_node_modules_only_when_listed(app) -> None:
    client = app.test_client()
    response = client.get("/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js")
    assert response.status_code == 200
    assert "immutable" in response.headers["Cache-Control"]
    response.close()
    with app.test_request_context():
        url = url_for("vendor.asset", package="bpmn-js", path="bpmn-viewer.production.min.js")
    installed = json.loads((ROOT / "node_modules/bpmn-js/package.json").read_text())["version"]
    assert url.endswith(f"?v={installed}")  # a new version is a new URL: immutable is safe
    assert client.get("/vendor/left-pad/index.js").status_code == 404
    assert client.get("/vendor/bpmn-js/../package.json").status_code == 404
    assert client.get("/vendor/bpmn-js/%2e%2e/%2e%2e/pyproject.toml").status_code == 404


def test_a_copy_shows_in_the_cc_box_until_read(app) -> None:
    clerk = signed_in(app, "clerk")
    task_id = started(clerk)
    assert clerk.post(f"/tasks/{task_id}/cc", data={"users": ["boss"]}).status_code == 302
    boss = signed_in(app, "boss")
    box = boss.get("/inbox?box=cc").get_data(as_text=True)
    assert "本周填报" in box and "未阅" in box
    cc_id = re.search(r"/inbox/cc/(\d+)/read", box).group(1)
    assert boss.post(f"/inbox/cc/{cc_id}/read").status_code == 302
    assert "未阅" not in boss.get("/inbox?box=cc").get_data(as_text=True)


def test_a_completed_step_shows_what_was_submitted_and_can_be_withdrawn(app) -> None:
    clerk = signed_in(app, "clerk")
    task_id = started(clerk)
    clerk.post(f"/tasks/{task_id}", data=VALID)
    page = clerk.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "填写内容" in page and "本周按计划推进" in page and "完成设计" in page
    assert ">撤回</button>" in page
    assert clerk.post(f"/tasks/{task_id}/withdraw").status_code == 302
    inbox = clerk.get("/inbox").get_data(as_text=True)
    assert "填报" in inbox
    assert "审批" not in signed_in(app, "boss").get("/inbox").get_data(as_text=True)


def test_the_inbox_orders_by_due_or_by_waiting_time(app, engine: Engine, clock) -> None:
    client = signed_in(app, "clerk")
    first = started(client)
    clock.advance(hours=2)
    client.post("/start/report", data={"title": "第二次填报"})
    due_first = client.get("/inbox").get_data(as_text=True)
    waited = client.get("/inbox?sort=waited").get_data(as_text=True)
    assert waited.index(first) < waited.index("第二次填报")
    assert "2小时" in waited  # how long the first one has waited
    assert client.get("/inbox?sort=nonsense").status_code == 200
    assert first in due_first


def test_the_ledger_exports_what_it_shows(app) -> None:
    client = signed_in(app, "clerk")
    page = client.get("/ledger?light=red&status=办理中").get_data(as_text=True)
    link = re.search(r'href="(/api/v1/items\?[^"]+)"', page).group(1).replace("&amp;", "&")
    assert "light=red" in link and "format=xlsx" in link and "status=" in link
    response = client.get(link)
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")


def test_the_initiator_urges_the_next_step_from_the_instance_page(app, engine: Engine) -> None:
    clerk = signed_in(app, "clerk")
    task_id = started(clerk)
    clerk.post(f"/tasks/{task_id}", data=VALID)
    instance_id = engine.task(task_id)["instance_id"]
    page = clerk.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "当前环节" in page and "办理记录" in page and "发起流程" in page
    urge = re.search(r'action="(/tasks/[0-9a-f-]{36}/urge)"', page).group(1)
    response = clerk.post(urge, data={"back": f"/instances/{instance_id}"}, follow_redirects=True)
    assert response.status_code == 200 and "已催办" in response.get_data(as_text=True)
    assert "已催办 1 次" in response.get_data(as_text=True)
    boss_messages = signed_in(app, "boss").get("/messages").get_data(as_text=True)
    assert "催办" in boss_messages


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_redirects_after_an_action_stay_on_this_site(app, target: str) -> None:
    client = signed_in(app, "clerk")
    response = client.post("/messages/read", data={"next": target})
    assert response.status_code == 302 and response.headers["Location"].endswith("/messages")


def test_the_page_and_the_api_share_the_same_draft(app) -> None:
    client = signed_in(app, "clerk")
    task_id = started(client)
    token = client.post("/api/v1/auth/token", json={"username": "clerk", "password": "pw12"})
    auth = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert client.get(f"/api/v1/tasks/{task_id}/draft", headers=auth).status_code == 404
    saved = client.put(
        f"/api/v1/tasks/{task_id}/draft", json={"data": {"summary": "接口保存"}}, headers=auth
    )
    assert saved.status_code == 200
    assert 'value="接口保存"' in client.get(f"/tasks/{task_id}").get_data(as_text=True)
    client.post(f"/tasks/{task_id}/draft", data={"summary": "页面保存"})
    draft = client.get(f"/api/v1/tasks/{task_id}/draft", headers=auth).get_json()
    assert draft["data"]["summary"] == "页面保存"
    deleted = client.delete(f"/api/v1/tasks/{task_id}/draft", headers=auth).get_json()
    assert deleted == {"deleted": 1}
    bad = client.put(f"/api/v1/tasks/{task_id}/draft", json={"data": [1]}, headers=auth)
    assert bad.status_code == 422
