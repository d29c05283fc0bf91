"""Documents (issue 8): every kind rendered from scenario data by the process step that issues
it, read back with python-docx; templates versioned with their process; the API's visibility;
one document laid out by LibreOffice to catch layout breakage."""

import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import DefinitionError, Engine, NotFound
from engine.documents import date_cn
from engine.models import User
from tests.builders import bpmn, flow, user_task
from tests.county import PROCESSES, load_county, token
from tests.documents_support import (
    documents_of,
    docx_tables,
    docx_text,
    play,
    play_evaluation,
    unit_name,
)
from webui import create_app


@pytest.fixture
def county(engine: Engine) -> Engine:
    load_county(engine)
    return engine


def display_name(engine: Engine, username: str) -> str:
    with engine.read_session() as session:
        return session.scalar(select(User.display_name).where(User.username == username)) or ""


# ------------------------------------------------------------ every kind
def test_supervision_order_is_issued_with_the_item(county: Engine, db_url: str) -> None:
    instance_id = play(county, db_url, "supervision_item", "立项通过、按期办结并销号")
    docs = county.documents(instance_id, "staff")
    assert [d["kind"] for d in docs] == ["督办单"]
    assert docs[0]["number"] == "县指办督〔2026〕1号"
    data = county.instance(instance_id, "staff")["data"]
    text = docx_text(county.document(docs[0]["id"], "staff")[1])
    assert "督办通知单" in text and "县指办督〔2026〕1号" in text
    assert data["title"] in text and data["content"] in text
    assert f"{unit_name(county, 'nyncj')}：" in text  # 主送 the lead unit, by name
    assert "财政局、自然资源局" in text  # cooperating units, by name
    assert date_cn(data["deadline"]) == "2027年3月31日" and "2027年3月31日" in text
    assert "2026年12月1日" in text  # 成文日期: the day it was approved
    history = county.instance(instance_id, "staff")["history"]
    rendered = [e for e in history if e["kind"] == "document_rendered"]
    assert [e["detail"]["number"] for e in rendered] == ["县指办督〔2026〕1号"]
    assert rendered[0]["actor"] == "deputy"  # rendered in the approval's command


def test_urge_order_on_overdue_numbers_each_urging(county: Engine, db_url: str) -> None:
    instance_id = play(
        county, db_url, "supervision_item", "超期红灯督办升级，再次超期转问题通报整改"
    )
    docs = [d for d in county.documents(instance_id, "staff") if d["kind"] == "催办单"]
    assert [re.sub(r"〔\d{4}〕", "〔年〕", d["number"]) for d in docs] == [
        "县指办催〔年〕1号",
        "县指办催〔年〕2号",
    ]
    data = county.instance(instance_id, "staff")["data"]
    order = county.documents(instance_id, "staff")[0]
    text = docx_text(county.document(docs[0]["id"], "staff")[1])
    assert "催办通知单" in text and data["title"] in text
    assert order["number"] in text  # the 督办单 it chases
    assert "已超过办结时限" in text


def test_meeting_notice_and_minutes(county: Engine, db_url: str) -> None:
    instance_id = play(
        county,
        db_url,
        "director_meeting",
        "工作人员发起，各专班汇报，议题和纪要一次通过，2项决定事项转督办事项",
    )
    data = county.instance(instance_id, "staff")["data"]
    docs = documents_of(county, instance_id)
    assert set(docs) == {"会议通知", data["doc_kind"]}

    notice = docx_text(docs["会议通知"])
    assert f"关于召开{data['meeting_title']}的通知" in notice
    assert data["location"] in notice and "县指办会〔2026〕1号" in notice
    for topic in data["agenda"]:
        assert topic["title"] in notice

    minutes = docs[data["doc_kind"]]
    text = docx_text(minutes)
    assert data["doc_title"] in text
    for line in data["doc_body"].splitlines():
        assert line.strip() in text
    rows = next(t for t in docx_tables(minutes) if t[0][:3] == ["序号", "事项内容", "责任单位"])
    assert [r[1:4] for r in rows[1:]] == [
        [d["content"], unit_name(county, d["unit"]), date_cn(d["deadline"])]
        for d in data["decision_items"]
    ]
    assert display_name(county, data["attendees"][0]) in text


def test_topical_meeting_brief_uses_the_brief_template(county: Engine, db_url: str) -> None:
    instance_id = play(
        county,
        db_url,
        "topical_meeting",
        "县领导交办，选定单位汇报，一次通过，决定事项转督办事项并报请县指挥部",
    )
    data = county.instance(instance_id, "staff")["data"]
    assert data["doc_kind"] == "工作简报"
    docs = county.documents(instance_id, "staff")
    brief = next(d for d in docs if d["kind"] == "工作简报")
    assert brief["number"] == "县指办纪〔2026〕1号"  # none typed in the form: the next one
    text = docx_text(county.document(brief["id"], "staff")[1])
    lines = text.splitlines()
    assert lines[:2] == ["工作简报", "县指办纪〔2026〕1号"]  # the brief's masthead, not a 纪要's
    assert data["doc_title"] in lines and data["doc_body"] in lines
    assert "会议决定事项" not in text


def test_problem_notice_and_acceptance_opinion(county: Engine, db_url: str) -> None:
    instance_id = play(county, db_url, "problem_rectification", "审定通过，整改落实并验收销号")
    data = county.instance(instance_id, "staff")["data"]
    docs = documents_of(county, instance_id)
    assert set(docs) == {"问题通报", "整改验收意见"}

    notice = docx_text(docs["问题通报"])
    assert "关于农业农村局有关问题的通报" in notice and "县指办通报〔2026〕1号" in notice
    assert data["notice"] in notice
    tables = docx_tables(docs["问题通报"])
    assert [r[1] for r in tables[0][1:]] == [p["description"] for p in data["problem_list"]]
    assert [r[2] for r in tables[1][1:]] == [
        r["responsible_person"] for r in data["responsibility_list"]
    ]
    assert [r[3] for r in tables[2][1:]] == [date_cn(t["deadline"]) for t in data["task_list"]]

    opinion = docx_text(docs["整改验收意见"])
    assert "农业农村局问题整改验收意见" in opinion and data["problem"] in opinion
    assert "现场核查，全部整改到位。" in opinion


def test_information_brief(county: Engine, db_url: str) -> None:
    instance_id = play(county, db_url, "information_brief", "审核同意后发布归档并通知全县")
    text = docx_text(documents_of(county, instance_id)["工作简报"])
    assert "城关镇推行“三联”机制加快农房风貌提升" in text
    assert "2026年第12期" in text and "已完成改造412户" in text
    assert f"来稿单位：{unit_name(county, 'cgz')}" in text


def test_evaluation_results_bulletin(county: Engine, db_url: str) -> None:
    instance_id, data = play_evaluation(county, db_url)
    content = documents_of(county, instance_id)["考核结果通报"]
    assert data["results_title"] in docx_text(content)
    table = docx_tables(content)[0]
    assert table[0] == ["名次", "单位", "综合得分", "考核等次", "处理意见"]
    assert [r[:4] for r in table[1:]] == [
        [str(r["rank"]), r["unit_name"], str(r["total_score"]), r["grade"]] for r in data["results"]
    ]


# ------------------------------------------------------------- templates
def _bundle(folder: Path, template_text: str) -> Path:
    """A one-step process that renders `notice.docx` after its user task."""
    from docx import Document as new_docx

    folder.mkdir(parents=True, exist_ok=True)
    document = new_docx()
    document.add_paragraph(template_text)
    (folder / "templates").mkdir(exist_ok=True)
    document.save(folder / "templates" / "notice.docx")
    service = (
        '<bpmn:serviceTask id="render" name="生成通知"><bpmn:extensionElements>'
        '<spiffworkflow:serviceTaskOperator id="render_document" resultVariable="doc">'
        "<spiffworkflow:parameters>"
        '<spiffworkflow:parameter id="kind" type="any" value="\'通知\'"/>'
        '<spiffworkflow:parameter id="template" type="any" value="\'templates/notice.docx\'"/>'
        '<spiffworkflow:parameter id="title" type="any" value="\'关于\' + topic + \'的通知\'"/>'
        '<spiffworkflow:parameter id="number_prefix" type="any" value="\'测试\'"/>'
        "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>"
        "</bpmn:extensionElements><bpmn:incoming>f2</bpmn:incoming>"
        "<bpmn:outgoing>f3</bpmn:outgoing></bpmn:serviceTask>"
    )
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("fill", "填写", "f1", "f2", assignee="initiator")
        + service
        + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "fill")
        + flow("f2", "fill", "render")
        + flow("f3", "render", "end")
    )
    (folder / "notice.bpmn").write_text(bpmn("notice", body), encoding="utf-8")
    return folder


def test_template_is_versioned_with_its_process(engine: Engine, tmp_path: Path) -> None:
    engine.add_user("clerk", "pw12", roles=["指挥办工作人员"])
    first = engine.deploy(_bundle(tmp_path / "v1", "第一版：{{ topic }}，{{ date_cn }}"))
    old = engine.start("notice", {"topic": "防汛"}, user="clerk")
    second = engine.deploy(_bundle(tmp_path / "v2", "第二版：{{ topic|unit }}，{{ doc_number }}"))
    assert [r.version for r in first] == [1] and [r.version for r in second] == [2]
    assert engine.deploy(tmp_path / "v2")[0].created is False  # same files: no new version

    new = engine.start("notice", {"topic": "抗旱"}, user="clerk")
    for started in (old, new):
        task = next(t for t in engine.tasks("clerk")["items"] if t["instance_id"] == started["id"])
        engine.complete(task["id"], {}, user="clerk")
    old_doc, new_doc = (engine.documents(i["id"], "clerk")[0] for i in (old, new))
    assert (
        docx_text(engine.document(old_doc["id"], "clerk")[1]).strip()
        == "第一版：防汛，2026年12月1日"
    )
    assert (
        docx_text(engine.document(new_doc["id"], "clerk")[1]).strip()
        == "第二版：抗旱，测试〔2026〕2号"
    )
    assert (
        new_doc["title"] == "关于抗旱的通知"
        and new_doc["filename"] == "测试〔2026〕2号 关于抗旱的通知.docx"
    )


def test_missing_or_broken_template_is_refused_at_deploy(engine: Engine, tmp_path: Path) -> None:
    folder = _bundle(tmp_path / "b", "x")
    (folder / "templates" / "notice.docx").unlink()
    with pytest.raises(DefinitionError) as missing:
        engine.deploy(folder)
    assert (
        "templates/notice.docx 不存在" in str(missing.value) and missing.value.element == "render"
    )
    (folder / "templates" / "notice.docx").write_bytes(b"not a zip")
    with pytest.raises(DefinitionError) as broken:
        engine.deploy(folder)
    assert "不是有效的 Word" in str(broken.value)


def test_unknown_document_is_not_found(county: Engine) -> None:
    with pytest.raises(NotFound):
        county.document(999, "staff")


# ------------------------------------------------------------------- API
def test_api_lists_and_downloads_only_for_those_who_may_view(county: Engine, db_url: str) -> None:
    instance_id = play(county, db_url, "supervision_item", "立项通过、按期办结并销号")
    client = create_app({"TESTING": True, "SECRET_KEY": "t"}, engine=county).test_client()
    liaison = token(client, "unit_liaison")

    listed = client.get(f"/api/v1/instances/{instance_id}/documents", headers=liaison)
    assert listed.status_code == 200
    (doc,) = listed.get_json()["items"]
    assert doc["kind"] == "督办单" and set(doc) >= {"id", "kind", "title", "created_at"}
    download = client.get(f"/api/v1/documents/{doc['id']}", headers=liaison)
    assert download.status_code == 200
    assert download.mimetype.endswith("wordprocessingml.document")
    assert "filename*=UTF-8''" in download.headers["Content-Disposition"]
    assert "高标准农田建设" in docx_text(download.data)

    other_unit = token(client, "town_liaison")
    for path in (f"/instances/{instance_id}/documents", f"/documents/{doc['id']}"):
        refused = client.get(f"/api/v1{path}", headers=other_unit)
        assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert client.get("/api/v1/documents/999", headers=token(client, "staff")).status_code == 404
    assert client.get(f"/api/v1/documents/{doc['id']}").status_code == 401


# ----------------------------------------------------------------- layout
def test_bulletin_lays_out_on_the_expected_pages(
    county: Engine, db_url: str, tmp_path: Path
) -> None:
    instance_id = play(county, db_url, "monthly_bulletin", "手动编发，主任审签同意后印发全县")
    source = tmp_path / "bulletin.docx"
    source.write_bytes(documents_of(county, instance_id)["月度通报"])
    subprocess.run(
        [
            "soffice",
            "--headless",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = (tmp_path / "bulletin.pdf").read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == 1  # 红头, title, body, 落款, the (empty) figures table and 版记 on one A4 page
    assert (PROCESSES / "templates" / "monthly_bulletin.docx").exists()
