"""Spreadsheets (issue 8): the ledger with the user's filters, the rectification lists and the
evaluation score sheets, opened again with openpyxl."""

from io import BytesIO

import pytest
from openpyxl import load_workbook

from engine import Engine, NotFound
from office import Office
from tests.county import load_county, token
from tests.documents_support import play, play_evaluation
from webui import create_app


@pytest.fixture
def county(engine: Engine) -> Engine:
    load_county(engine)
    return engine


def sheet_rows(content: bytes, title: str) -> list[list[object]]:
    sheet = load_workbook(BytesIO(content))[title]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_ledger_export_has_exactly_the_filtered_rows(county: Engine, db_url: str) -> None:
    play(county, db_url, "supervision_item", "立项通过、按期办结并销号")
    play(county, db_url, "supervision_item", "超期红灯督办升级，再次超期转问题通报整改")
    play(county, db_url, "problem_rectification", "审定通过，整改落实并验收销号")
    everything = county.items("staff", per_page=500)["items"]
    assert {i["kind"] for i in everything} == {"督办事项", "整改任务"}

    filters = {"kind": "督办事项", "closed": False}
    content = Office(county).export_items("staff", **filters)
    rows = sheet_rows(content, "督办台账")
    assert "筛选条件：类别：督办事项；是否办结：未办结" in rows[0][0]
    assert rows[1][:4] == ["编号", "事项名称", "类别", "来源"]
    wanted = county.items("staff", **filters, per_page=500)["items"]
    assert [r[0] for r in rows[2:]] == [i["id"] for i in wanted] and wanted
    first = dict(zip(rows[1], rows[2], strict=True))
    assert first["事项名称"] == wanted[0]["title"]
    assert first["牵头单位"] == wanted[0]["lead_unit"] == "农业农村局"
    assert first["灯色"] == {"red": "红灯", "yellow": "黄灯", "green": "绿灯"}[wanted[0]["light"]]
    assert first["办结时限"] == wanted[0]["deadline"][:16].replace("T", " ")

    closed = sheet_rows(Office(county).export_items("staff", closed=True), "督办台账")
    assert {r[0] for r in closed[2:]} == {i["id"] for i in everything if i["closed_at"] is not None}


def test_rectification_lists(county: Engine, db_url: str) -> None:
    instance_id = play(county, db_url, "problem_rectification", "审定通过，整改落实并验收销号")
    content = Office(county).export_rectifications("staff")
    assert load_workbook(BytesIO(content)).sheetnames == ["任务清单", "问题清单", "责任清单"]
    tasks = sheet_rows(content, "任务清单")
    header = tasks[1]
    listed = [dict(zip(header, row, strict=True)) for row in tasks[2:]]
    assert [(t["任务序号"], t["整改任务"], t["整改措施"]) for t in listed] == [
        ("1", "倒排工期追回进度", "增派两支施工队"),
        ("2", "建成灌排设施", None),  # no measures given: an empty cell
    ]
    assert {t["责任单位"] for t in listed} == {"农业农村局"}
    assert {t["状态"] for t in listed} == {"已销号"}
    problems = sheet_rows(content, "问题清单")
    assert problems[1] == ["通报编号", "问题序号", "问题描述", "佐证与出处"]
    assert problems[2:] == [
        [instance_id, 1, "高标准农田项目进度滞后30%", "专项督导记录第3页"],
        [instance_id, 2, "部分地块灌排设施未建成", None],
    ]
    duties = sheet_rows(content, "责任清单")
    assert [r[2:4] for r in duties[2:]] == [["农业农村局", "孙立军"], ["农业农村局", "赵丽娟"]]
    # the filters narrow all three lists alike
    empty = Office(county).export_rectifications("staff", closed=False)
    assert sheet_rows(empty, "任务清单")[2:] == [] and sheet_rows(empty, "问题清单")[2:] == []


def test_evaluation_score_sheet(county: Engine, db_url: str) -> None:
    instance_id, data = play_evaluation(county, db_url)
    content = Office(county).export_scores(instance_id, "staff")
    scores = sheet_rows(content, "考核评分表")
    assert scores[0][0] == data["plan_title"]
    header = scores[1]
    assert header[:2] == ["单位", "自评总分"]
    assert [
        name for name in header if name in ("重点任务推进", "督办事项按期办结", "问题整改落实")
    ] == [
        "重点任务推进",
        "督办事项按期办结",
        "问题整改落实",
    ]
    by_unit = {row[0]: dict(zip(header, row, strict=True)) for row in scores[2:]}
    for row in data["scores"]:
        sheet = by_unit[row["unit_name"]]
        assert sheet["综合得分"] == row["total_score"]
        for entry in row["indicator_scores"]:
            assert sheet[entry["indicator"]] == entry["score"]
    results = sheet_rows(content, "考核结果")
    assert [r[:5] for r in results[2:]] == [
        [r["rank"], r["unit_name"], r["total_score"], "是" if r["veto"] else "否", r["grade"]]
        for r in data["results"]
    ]
    with pytest.raises(NotFound):
        Office(county).export_scores(
            play(county, db_url, "information_brief", "审核同意后发布归档并通知全县"), "staff"
        )


def test_api_downloads(county: Engine, db_url: str) -> None:
    play(county, db_url, "problem_rectification", "审定通过，整改落实并验收销号")
    client = create_app({"TESTING": True, "SECRET_KEY": "t"}, engine=county).test_client()
    auth = token(client, "staff")
    ledger = client.get("/api/v1/items?format=xlsx&kind=整改任务&light=green", headers=auth)
    assert ledger.status_code == 200 and ledger.mimetype.endswith("spreadsheetml.sheet")
    assert len(sheet_rows(ledger.data, "督办台账")) == 2 + 2
    lists = client.get("/api/v1/rectifications.xlsx?closed=true", headers=auth)
    assert lists.status_code == 200 and len(sheet_rows(lists.data, "任务清单")) == 2 + 2
    bad = client.get("/api/v1/rectifications.xlsx?light=blue", headers=auth)
    assert bad.status_code in (400, 422) and bad.get_json()["errors"]["light"]
    report = client.get("/api/v1/reports/monthly?period=2026-11", headers=auth).get_json()
    assert report["period"] == "2026年11月"
    missing = client.get("/api/v1/reports/monthly", headers=auth)
    assert missing.status_code in (400, 422) and "period" in missing.get_json()["errors"]
