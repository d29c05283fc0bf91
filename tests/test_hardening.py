"""Hardening (issue 14): formula-like texts in .xlsx exports, hostile request bodies and query
strings, attachment quotas and cleanup, bidi controls in file names, 催办 flooding, and the
`Server` header."""

import io
from typing import Any
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine import Engine, FixedClock
from engine.models import Attachment, Base, Event, HumanTask, Notification, ProcessInstance
from office import exports
from tests.browser import serving
from tests.county import TOWN_ITEM, token
from webui import create_app

PDF = b"%PDF-1.4\n" + b"0" * 1000 + b"\n%%EOF\n"


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    return county_engine


@pytest.fixture
def app(engine: Engine):
    return create_app(
        {"TESTING": True, "SECRET_KEY": "hardening", "WTF_CSRF_ENABLED": False}, engine=engine
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


def _item_at_approval(engine: Engine, **draft: Any) -> dict:
    """A 督办事项 for 城关镇 drafted by staff, waiting for the deputy's approval."""
    engine.start(
        "supervision_item", {"title": draft.get("title", TOWN_ITEM["title"])}, user="staff"
    )
    _do(engine, "staff", "draft", {**TOWN_ITEM, **draft})
    return _task(engine, "deputy", "approve")


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


# ------------------------------------------------------------------ 4. formulas in .xlsx
FORMULAS = {
    "title": '=HYPERLINK("http://evil.example/x","点击查看")',
    "source": "@SUM(1+1)*cmd|' /C calc'!A0",
    "done": "+1+cmd|' /C notepad'!A0",
}
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")


def _assert_no_formula(content: bytes) -> list[str]:
    """Every cell of every sheet: never a formula; texts that look like one are marked as text
    (quotePrefix, as Excel writes a typed apostrophe). The dangerous texts found."""
    found = []
    for sheet in load_workbook(io.BytesIO(content)).worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value.startswith(DANGEROUS_START):
                    assert cell.data_type == "s" and cell.quotePrefix, (cell.coordinate, cell.value)
                    found.append(cell.value)
    return found


def test_ledger_export_writes_formula_like_texts_as_text(client, engine: Engine) -> None:
    """A liaison's progress text and the item's title and source, typed through the real
    supervision process, come back from /api/v1/items?format=xlsx as the very same texts."""
    approve = _item_at_approval(engine, title=FORMULAS["title"], source=FORMULAS["source"])
    engine.claim(approve["id"], "deputy")
    engine.complete(approve["id"], {"decision": "approve"}, user="deputy")
    ack = {"acknowledged": True, "contact_person": "周小红", "contact_phone": "0771-5550001"}
    _do(engine, "town_liaison", "acknowledge", ack)
    _do(engine, "town_liaison", "plan", {"plan": "-分两批建设，2月底完成第一批6个村。"})
    report = {"progress": 40, "done": FORMULAS["done"], "next_action": "report"}
    _do(engine, "town_liaison", "report_progress", report)

    response = client.get("/api/v1/items?format=xlsx", headers=token(client, "staff"))
    assert response.status_code == 200
    found = _assert_no_formula(response.data)
    assert set(FORMULAS.values()) <= set(found)
    rows = list(load_workbook(io.BytesIO(response.data))["督办台账"].iter_rows(values_only=True))
    row = dict(zip(rows[1], rows[2], strict=True))
    assert (row["事项名称"], row["来源"], row["最新进展"]) == (
        FORMULAS["title"],
        FORMULAS["source"],
        FORMULAS["done"],
    )


def test_rectification_and_score_sheets_write_formula_like_texts_as_text() -> None:
    evil = ["=1+2", "+SUM(A1:A9)", "-2+3", "@cmd", "\t=1+1", "\r=1+1", '=HYPERLINK("x")']
    tasks = [{"instance_id": 1, "key": "1", "title": evil[0], "measures": evil[1]}]
    lists = {
        "problem_list": [
            {"instance_id": 1, "seq": 1, "description": evil[2], "evidence_note": evil[3]}
        ],
        "responsibility_list": [
            {"instance_id": 1, "problem_seq": 1, "responsible_person": evil[4], "duty": evil[5]}
        ],
    }
    found = _assert_no_formula(exports.rectification_workbook(tasks, lists, "2026-12-01"))
    assert sorted(found) == sorted(evil[:6])
    # control characters a workbook cannot hold (pasted from Word) are left out, not fatal
    pasted = [{"instance_id": 1, "key": "1", "title": "=整改\x0b任务\x01"}]
    content = exports.rectification_workbook(pasted, {}, "2026-12-01")
    assert _assert_no_formula(content) == ["=整改任务"]
    scores = exports.score_workbook(
        evil[6],
        ["=指标"],
        [
            {
                "unit_name": "-城关镇",
                "comment": "=A1",
                "indicator_scores": [{"indicator": "=指标", "score": 9}],
            }
        ],
        [{"rank": 1, "unit_name": "-城关镇", "remark": "@备注"}],
    )
    found = _assert_no_formula(scores)
    assert {"=指标", "-城关镇", "=A1", "@备注", evil[6]} <= set(found)
    # numbers stay numbers: a negative score is not a text
    sheet = load_workbook(io.BytesIO(exports.score_workbook("t", [], [{"total_score": -1.5}], [])))
    assert -1.5 in [c.value for row in sheet["考核评分表"].iter_rows() for c in row]


# ------------------------------------------------------------------ 5. hostile inputs
BAD_VALUES: dict[str, str] = {
    "nul": '"督办\\u0000事项"',
    "lone_surrogate": '"\\ud800事项"',
    "nan": "NaN",
    "infinity": "Infinity",
    "minus_infinity": "-Infinity",
    "float_overflow": "1e400",
    "deep_nesting": "[" * 50_000 + "]" * 50_000,
    "moderate_nesting": "[" * 200 + "]" * 200,
    "nul_in_key": '{"a\\u0000": "x"}',
    "oversize": '"' + "字" * 400_000 + '"',  # 1.2 MB of UTF-8
}
BODY_ROUTES = {
    "auth_token": ("/api/v1/auth/token", '{"username": @, "password": "demo"}', None),
    "start": (
        "/api/v1/instances",
        '{"process": "supervision_item", "data": {"title": @}}',
        "staff",
    ),
    "complete": (
        "/api/v1/tasks/{task}/complete",
        '{"data": {"decision": "return", "reason": @}}',
        "deputy",
    ),
    "return": ("/api/v1/tasks/{task}/return", '{"reason": @}', "deputy"),
    "urge": ("/api/v1/tasks/{task}/urge", '{"message": @}', "staff"),
    "start_title": (
        "/api/v1/instances",
        '{"process": "supervision_item", "title": "x", "data": {"note": @}}',
        "staff",
    ),
}
QUERY_ROUTES = {
    "items_q": "/api/v1/items?q={bad}",
    "items_unit": "/api/v1/items?unit={bad}&format=xlsx",
    "users_q": "/api/v1/users?q={bad}",
    "instances_process": "/api/v1/instances?process={bad}",
    "task_in_path": "/api/v1/tasks/{bad}",
}


def _snapshot(engine: Engine) -> dict[str, Any]:
    """Every table's row count, and the task and instance columns a command would change."""
    with engine.read_session() as session:
        counts = {
            t.name: session.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
            if t.name not in ("api_token", "sign_in_throttle", "worker_heartbeat")
        }
        tasks = session.execute(
            select(
                HumanTask.id, HumanTask.state, HumanTask.urge_count, HumanTask.assignee_id
            ).order_by(HumanTask.id)
        ).all()
        instances = session.execute(
            select(ProcessInstance.id, ProcessInstance.status).order_by(ProcessInstance.id)
        ).all()
    return {"counts": counts, "tasks": tasks, "instances": instances}


def _refused(response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    assert response.is_json, response.get_data()[:300]
    assert _has_chinese(response.get_json()["message"]), response.get_json()


@pytest.mark.parametrize("bad", list(BAD_VALUES))
def test_hostile_json_bodies_are_refused_in_chinese_and_change_nothing(
    client, engine: Engine, bad: str
) -> None:
    approve = _item_at_approval(engine)
    auth = {"staff": token(client, "staff"), "deputy": token(client, "deputy")}
    before = _snapshot(engine)
    for route, (path, template, user) in BODY_ROUTES.items():
        payload = template.replace("@", BAD_VALUES[bad]).encode("utf-8", "surrogatepass")
        response = client.post(
            path.format(task=approve["id"]),
            data=payload,
            content_type="application/json",
            headers=auth[user] if user else {},
        )
        _refused(response, 413 if bad == "oversize" else 400)
        assert _snapshot(engine) == before, route


@pytest.mark.parametrize("bad", ["%00", "a%00b", "%ED%A0%80%00"])
def test_nul_in_query_strings_and_paths_is_refused_in_chinese(
    client, engine: Engine, bad: str
) -> None:
    staff = token(client, "staff")
    before = _snapshot(engine)
    for route, path in QUERY_ROUTES.items():
        response = client.get(path.format(bad=bad), headers=staff)
        _refused(response, 400)
        assert _snapshot(engine) == before, route


def test_nul_in_a_page_form_is_refused_in_chinese(client, engine: Engine) -> None:
    approve = _item_at_approval(engine)
    client.post("/login", data={"username": "staff", "password": "demo"})
    before = _snapshot(engine)
    response = client.post(f"/tasks/{approve['id']}/urge", data={"message": "快\x00办"})
    assert response.status_code == 400 and "控制字符" in response.get_data(as_text=True)
    assert _snapshot(engine) == before


def test_good_json_still_works_and_ordinary_bodies_fit(client, engine: Engine) -> None:
    staff = token(client, "staff")
    data = {"title": "正常事项", "note": "x" * 200_000, "nested": [[[{"a": [1, 2.5, -3]}]]]}
    started = client.post(
        "/api/v1/instances", json={"process": "supervision_item", "data": data}, headers=staff
    )
    assert started.status_code == 201, started.get_json()


def test_nan_is_never_stored_and_never_answered(client, engine: Engine) -> None:
    staff = token(client, "staff")
    response = client.post(
        "/api/v1/instances",
        data=b'{"process": "supervision_item", "data": {"title": "x", "n": NaN}}',
        content_type="application/json",
        headers=staff,
    )
    _refused(response, 400)
    with engine.read_session() as session:
        assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0


# ------------------------------------------------------------------ 6. attachments
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


def test_unsubmitted_uploads_per_task_and_person_have_a_quota(client, engine: Engine) -> None:
    engine.attachment_quota_files, engine.attachment_quota_bytes = 3, 3500
    engine.start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")
    draft = _task(engine, "staff", "draft")
    staff = token(client, "staff")
    for n in range(3):
        assert _upload(client, draft["id"], f"材料{n}.pdf", PDF, staff).status_code == 201
    refused = _upload(client, draft["id"], "材料4.pdf", PDF, staff)
    assert refused.status_code == 413 and "3 个" in refused.get_json()["message"]
    assert _stored(engine) == 3

    engine.attachment_quota_files = 20
    too_big = _upload(client, draft["id"], "大文件.pdf", PDF * 2, staff)
    assert too_big.status_code == 413 and "MB" in too_big.get_json()["message"]
    assert _stored(engine) == 3


def test_the_default_quota_refuses_the_eleventh_large_orphan(engine: Engine) -> None:
    assert (engine.attachment_quota_files, engine.attachment_quota_bytes) == (20, 60 * 1024 * 1024)
    engine.start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")
    draft = _task(engine, "staff", "draft")
    big = b"%PDF" + b"0" * (14 * 1024 * 1024)
    for n in range(4):
        engine.add_attachment(draft["id"], f"扫描{n}.pdf", None, big, "staff")
    with pytest.raises(Exception) as refused:
        engine.add_attachment(draft["id"], "扫描5.pdf", None, big, "staff")
    assert getattr(refused.value, "status", None) == 413
    assert "60 MB" in refused.value.message
    assert _stored(engine) == 4


def test_unused_uploads_are_removed_after_some_days(engine: Engine, clock: FixedClock) -> None:
    engine.start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")
    draft = _task(engine, "staff", "draft")
    unused = engine.add_attachment(draft["id"], "草稿附件.pdf", None, PDF, "staff")
    # the draft form names no file: once submitted, the upload is never referenced
    _do(engine, "staff", "draft", TOWN_ITEM)
    approve = _task(engine, "deputy", "approve")
    pending = engine.add_attachment(approve["id"], "审批中.pdf", None, PDF, "deputy")
    assert engine.remove_unused_attachments(days=7) == 0  # too young

    clock.advance(days=8)
    assert engine.remove_unused_attachments(days=7) == 1
    with engine.read_session() as session:
        left = set(session.scalars(select(Attachment.id)))
        removed = session.scalars(select(Event).where(Event.kind == "attachment_removed")).all()
    assert left == {pending["id"]}  # its task is still open: the deputy may still submit it
    assert [e.detail["name"] for e in removed] == ["草稿附件.pdf"]
    assert unused["id"] not in left


def test_the_worker_removes_unused_uploads(engine: Engine, clock: FixedClock, monkeypatch) -> None:
    from click.testing import CliRunner

    from webui import cli

    engine.start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")
    draft = _task(engine, "staff", "draft")
    engine.add_attachment(draft["id"], "草稿附件.pdf", None, PDF, "staff")
    _do(engine, "staff", "draft", TOWN_ITEM)
    clock.advance(days=30)
    monkeypatch.setattr(cli, "_engine", lambda now=None: engine)
    result = CliRunner().invoke(cli.cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert _stored(engine) == 0
    assert "附件" in result.output


def test_bidi_controls_are_stripped_from_file_names(client, engine: Engine) -> None:
    engine.start("supervision_item", {"title": TOWN_ITEM["title"]}, user="staff")
    draft = _task(engine, "staff", "draft")
    staff = token(client, "staff")
    name = "发票\u202egpj\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f.pdf"
    uploaded = _upload(client, draft["id"], name, PDF, staff)
    assert uploaded.status_code == 201, uploaded.get_json()
    assert uploaded.get_json()["name"] == "发票gpj.pdf"
    download = client.get(uploaded.get_json()["url"], headers=staff)
    assert unquote(download.headers["Content-Disposition"].split("UTF-8''", 1)[1]) == "发票gpj.pdf"


def test_a_huge_attachment_id_in_form_data_is_refused_in_chinese(client, engine: Engine) -> None:
    approve = _item_at_approval(engine)
    engine.claim(approve["id"], "deputy")
    engine.complete(approve["id"], {"decision": "approve"}, user="deputy")
    ack = {"acknowledged": True, "contact_person": "周小红", "contact_phone": "0771-5550001"}
    _do(engine, "town_liaison", "acknowledge", ack)
    _do(engine, "town_liaison", "plan", {"plan": "分两批建设，2月底完成第一批6个村。"})
    report = {"progress": 100, "done": "12个村全部建成", "next_action": "complete"}
    _do(engine, "town_liaison", "report_progress", report)
    task = _task(engine, "town_liaison", "apply_completion")
    engine.claim(task["id"], "town_liaison")
    evidence = [{"name": "验收单.pdf", "id": 10**30, "size": 1}]
    response = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": {"completion_summary": "12个村全部建成。", "evidence": evidence}},
        headers=token(client, "town_liaison"),
    )
    assert response.status_code == 422, response.get_json()
    assert "附件不存在" in response.get_json()["message"]


# ------------------------------------------------------------------ 6. 催办 flooding
def test_urging_the_same_task_again_within_ten_minutes_is_refused(
    client, engine: Engine, clock: FixedClock
) -> None:
    approve = _item_at_approval(engine)
    staff = token(client, "staff")

    def notifications() -> int:
        with engine.read_session() as session:
            return session.scalar(select(func.count()).select_from(Notification)) or 0

    first = client.post(
        f"/api/v1/tasks/{approve['id']}/urge", json={"message": "请尽快审批"}, headers=staff
    )
    assert first.status_code == 200, first.get_json()
    sent = notifications()
    clock.advance(minutes=3)
    for _ in range(30):
        again = client.post(
            f"/api/v1/tasks/{approve['id']}/urge", json={"message": "请尽快审批"}, headers=staff
        )
        assert again.status_code == 429
        assert again.get_json()["message"] == "请勿频繁催办，7 分钟后可再次催办"
        assert again.headers["Retry-After"] == "420"
    assert notifications() == sent
    with engine.read_session() as session:
        assert session.get(HumanTask, approve["id"]).urge_count == 1

    # another person may urge the same task; the same person again after ten minutes
    admin = client.post(f"/api/v1/tasks/{approve['id']}/urge", headers=token(client, "admin"))
    assert admin.status_code == 200, admin.get_json()
    clock.advance(minutes=7)
    later = client.post(f"/api/v1/tasks/{approve['id']}/urge", headers=staff)
    assert later.status_code == 200, later.get_json()


# ------------------------------------------------------------------ 6. Server header
def test_the_server_header_names_no_software_or_version(client, engine: Engine) -> None:
    import urllib.request

    for path in ("/health", "/login", "/api/v1/nowhere"):
        assert client.get(path).headers.get("Server") == "duban"
    with (
        serving(engine, "hardening") as base,
        urllib.request.urlopen(f"{base}/health") as response,  # noqa: S310 - loopback
    ):
        servers = response.headers.get_all("Server")
    assert servers == ["duban"]
