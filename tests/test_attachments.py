"""Attachments (附件, 佐证材料): uploaded into an open task through the API or the task page,
named in the submitted form by id, downloaded intact by people who may view the instance, and
refused — in Chinese, with nothing stored — when too large, of the wrong type, or forged."""

import html as html_lib
import io
import re
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from engine import Engine, InvalidData
from engine.models import Attachment, Event
from tests.browser import open_page, serving, sign_in
from tests.county import TOWN_ITEM, token
from webui import create_app

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    return county_engine


@pytest.fixture
def app(engine: Engine):
    return create_app(
        {"TESTING": True, "SECRET_KEY": "files", "WTF_CSRF_ENABLED": False}, engine=engine
    )


@pytest.fixture
def client(app):
    return app.test_client()


def _task(engine: Engine, user: str, name: str) -> dict:
    found = [t for t in engine.tasks(user)["items"] if t["name"] == name]
    assert len(found) == 1, found
    return found[0]


def _do(engine: Engine, user: str, name: str, data: dict) -> None:
    task = _task(engine, user, name)
    if task["assignee"] is None:
        engine.claim(task["id"], user)
    engine.complete(task["id"], data, user=user)


@pytest.fixture
def completion_task(engine: Engine) -> dict:
    """A 督办事项 for 城关镇, driven up to its 办结申请 (the town liaison's task)."""
    engine.start("supervision_item", {"title": "城关镇人居环境整治"}, user="staff")
    _do(
        engine,
        "staff",
        "draft",
        TOWN_ITEM,
    )
    _do(engine, "deputy", "approve", {"decision": "approve"})
    ack = {"acknowledged": True, "contact_person": "周小红", "contact_phone": "0771-5550001"}
    _do(engine, "town_liaison", "acknowledge", ack)
    _do(engine, "town_liaison", "plan", {"plan": "分两批建设，2月底完成第一批6个村。"})
    report = {"progress": 100, "done": "12个村全部建成", "next_action": "complete"}
    _do(engine, "town_liaison", "report_progress", report)
    task = _task(engine, "town_liaison", "apply_completion")
    if task["assignee"] is None:
        engine.claim(task["id"], "town_liaison")
    return task


def _upload(client, task_id: str, name: str, content: bytes, auth: dict):
    return client.post(
        f"/api/v1/tasks/{task_id}/attachments",
        data={"file": (io.BytesIO(content), name)},
        headers=auth,
        content_type="multipart/form-data",
    )


def _stored(engine: Engine) -> int:
    with engine.read_session() as session:
        return session.scalar(select(func.count()).select_from(Attachment)) or 0


def _sign_in(client, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": "demo"})
    assert response.status_code == 302, response.get_data(as_text=True)


# ------------------------------------------------------------------------------ API
def test_an_uploaded_file_completes_the_completion_request_and_comes_back_intact(
    client, engine: Engine, completion_task: dict
) -> None:
    town = token(client, "town_liaison")
    uploaded = _upload(client, completion_task["id"], "验收单（第一批）.pdf", PDF, town)
    assert uploaded.status_code == 201, uploaded.get_json()
    body = uploaded.get_json()
    assert (body["name"], body["size"], body["content_type"]) == (
        "验收单（第一批）.pdf",
        len(PDF),
        "application/pdf",
    )

    evidence = [{"name": body["name"], "id": body["id"], "size": body["size"]}]
    done = client.post(
        f"/api/v1/tasks/{completion_task['id']}/complete",
        json={"data": {"completion_summary": "12个村垃圾分类设施全部建成。", "evidence": evidence}},
        headers=town,
    )
    assert done.status_code == 200, done.get_json()

    # The office verifying the item downloads the very bytes the town uploaded.
    staff = token(client, "staff")
    download = client.get(body["url"], headers=staff)
    assert download.status_code == 200
    assert download.data == PDF
    assert download.mimetype == "application/pdf"
    disposition = download.headers["Content-Disposition"]
    assert unquote(disposition.split("UTF-8''", 1)[1]) == "验收单（第一批）.pdf"
    verify = _task(engine, "staff", "verify")
    assert engine.task(verify["id"], "staff")["data"]["evidence"] == evidence
    with engine.read_session() as session:
        added = session.scalars(select(Event).where(Event.kind == "attachment_added")).all()
    assert [e.detail["name"] for e in added] == ["验收单（第一批）.pdf"]


def test_another_units_person_may_not_download_and_strangers_must_sign_in(
    client, completion_task: dict
) -> None:
    town = token(client, "town_liaison")
    url = _upload(client, completion_task["id"], "照片.jpg", b"\xff\xd8\xff\xe0jpeg", town)
    url = url.get_json()["url"]
    refused = client.get(url, headers=token(client, "unit_liaison"))
    assert refused.status_code == 403 and "无权" in refused.get_json()["message"]
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous.get_json()["message"] == "请先登录"
    assert client.get(url, headers=town).data == b"\xff\xd8\xff\xe0jpeg"


def test_only_someone_who_may_act_on_the_task_uploads(
    client, engine: Engine, completion_task: dict
) -> None:
    refused = _upload(client, completion_task["id"], "a.pdf", PDF, token(client, "unit_liaison"))
    assert refused.status_code == 403 and "办理人" in refused.get_json()["message"]
    assert _stored(engine) == 0


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("病毒.exe", b"MZ...", "不支持的文件类型"),
        ("说明.html", b"<script>", "不支持的文件类型"),
        ("空白.pdf", b"", "是空的"),
    ],
)
def test_wrong_files_are_refused_in_chinese_and_nothing_is_stored(
    client, engine: Engine, completion_task: dict, name: str, content: bytes, says: str
) -> None:
    refused = _upload(client, completion_task["id"], name, content, token(client, "town_liaison"))
    assert refused.status_code == 422
    assert says in refused.get_json()["message"]
    assert _stored(engine) == 0


def test_a_too_large_file_is_refused_in_chinese_and_nothing_is_stored(
    client, engine: Engine, completion_task: dict
) -> None:
    engine.attachment_limit = 1024  # the real limit (15 MB) works the same, only slower
    refused = _upload(
        client, completion_task["id"], "扫描件.pdf", b"x" * 1025, token(client, "town_liaison")
    )
    assert refused.status_code == 422
    assert "超过" in refused.get_json()["message"] and "MB" in refused.get_json()["message"]
    assert _stored(engine) == 0


def test_a_file_name_is_stripped_of_folders_and_odd_characters(
    engine: Engine, completion_task: dict
) -> None:
    kept = engine.add_attachment(
        completion_task["id"], '..\\..\\C:/tmp/报告<1>"终".docx', None, b"PK", "town_liaison"
    )
    assert kept["name"] == "报告_1_终_.docx"


def test_form_data_naming_another_instances_upload_is_refused(
    engine: Engine, completion_task: dict
) -> None:
    # An upload into the item's own task is fine; one into another instance is not.
    other = engine.start("supervision_item", {"title": "另一事项"}, user="staff")
    draft = [t for t in engine.tasks("staff")["items"] if t["instance_id"] == other["id"]][0]
    foreign = engine.add_attachment(draft["id"], "别处.pdf", None, PDF, "staff")
    for forged in (foreign["id"], 999_999):
        with pytest.raises(InvalidData) as refused:
            engine.complete(
                completion_task["id"],
                {
                    "completion_summary": "12个村垃圾分类设施全部建成。",
                    "evidence": [{"name": "验收.pdf", "id": forged}],
                },
                user="town_liaison",
            )
        assert refused.value.errors == {"evidence": "附件不存在或不属于本流程，请重新上传"}
    assert _task(engine, "town_liaison", "apply_completion")["id"] == completion_task["id"]


# ------------------------------------------------------------------------------ pages
def test_the_page_form_uploads_keeps_files_across_a_validation_error_and_links_them(
    client, engine: Engine, completion_task: dict
) -> None:
    _sign_in(client, "town_liaison")
    page = f"/tasks/{completion_task['id']}"
    assert 'enctype="multipart/form-data"' in client.get(page).get_data(as_text=True)

    # The summary is too short: the page comes back, the uploaded file is kept on it.
    response = client.post(
        page,
        data={"completion_summary": "短", "evidence": (io.BytesIO(PDF), "验收.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    ref = re.search(r'name="evidence\.ref" value="([^"]+)"', html)
    assert ref is not None
    link = re.search(r'href="(/api/v1/attachments/\d+)"[^>]*>验收.pdf<', html)
    assert link is not None
    assert client.get(link.group(1)).data == PDF

    # Submitting again with the file kept (ticked) completes the step with that upload.
    done = client.post(
        page,
        data={
            "completion_summary": "12个村垃圾分类设施全部建成。",
            "evidence.keep": "验收.pdf",
            "evidence.ref": html_lib.unescape(ref.group(1)),
        },
        content_type="multipart/form-data",
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    assert _stored(engine) == 1

    # The office's 审核 page and the instance page link the file.
    client.post("/logout")
    _sign_in(client, "staff")
    verify = _task(engine, "staff", "verify")
    assert link.group(1) in client.get(f"/tasks/{verify['id']}").get_data(as_text=True)
    shown = client.get(f"/instances/{completion_task['instance_id']}").get_data(as_text=True)
    assert link.group(1) in shown


def test_a_refused_upload_on_the_page_is_named_at_its_field(
    client, engine: Engine, completion_task: dict
) -> None:
    _sign_in(client, "town_liaison")
    response = client.post(
        f"/tasks/{completion_task['id']}",
        data={
            "completion_summary": "12个村垃圾分类设施全部建成。",
            "evidence": (io.BytesIO(b"MZ"), "工具.exe"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "不支持的文件类型“工具.exe”" in response.get_data(as_text=True)
    assert _stored(engine) == 0
    assert _task(engine, "town_liaison", "apply_completion")["state"] == "open"


# ------------------------------------------------------------------------------ a real browser
def test_a_browser_uploads_evidence_that_survives_a_validation_error(
    browser, engine: Engine, completion_task: dict, tmp_path
) -> None:
    from playwright.sync_api import expect

    scan = tmp_path / "验收单.pdf"
    scan.write_bytes(PDF)
    with serving(engine, "files") as base_url, open_page(browser, base_url) as page:
        sign_in(page, "town_liaison", then=f"/tasks/{completion_task['id']}")
        page.goto(f"/tasks/{completion_task['id']}")
        page.get_by_label("办结情况").fill("短")
        page.locator("#f-evidence").set_input_files(str(scan))
        page.get_by_role("button", name="提交").click()
        expect(page.locator("a[download]", has_text="验收单.pdf")).to_be_visible()
        page.get_by_label("办结情况").fill("12个村垃圾分类设施全部建成。")
        page.get_by_role("button", name="提交").click()
        expect(page.locator(".flash.ok")).to_contain_text("已提交")
    verify = _task(engine, "staff", "verify")
    (evidence,) = engine.task(verify["id"], "staff")["data"]["evidence"]
    assert engine.attachment(evidence["id"], "staff") == ("验收单.pdf", "application/pdf", PDF)
