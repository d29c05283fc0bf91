"""The process designer in a real browser (Debian's Chromium, Playwright) against the real app
on loopback: a designer creates a process, edits a step's name and due date in the modeler,
sees a check failure pointed at the diagram, fixes it, deploys twice, and migrates a running
instance from the old version to the new one."""

from collections.abc import Iterator

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from engine import Engine
from tests.browser import ROOT, open_page, serving, shot, sign_in


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    engine = Engine(f"sqlite:///{tmp_path_factory.mktemp('designer') / 'duban.db'}")
    engine.create_schema()
    county = yaml.safe_load((ROOT / "processes" / "county.yaml").read_text(encoding="utf-8"))
    engine.load_directory(county, "demo")
    engine.deploy(ROOT / "processes", by="admin")
    with serving(engine, "designer-tests") as url:
        yield engine, url
    engine.close()


@pytest.fixture
def page(browser: Browser, served: tuple[Engine, str]) -> Iterator[Page]:
    with open_page(browser, served[1], height=900, timeout=20000) as opened:
        sign_in(opened, "designer", then="/designer")
        expect(opened.locator("h1")).to_have_text("流程设计")
        yield opened


def select_element(page: Page, element_id: str, at: tuple[float, float] = (0.5, 0.2)) -> None:
    """Click an element at a fraction of its box (a lane takes clicks on its edge only)."""
    page.evaluate("window.scrollTo(0, 0)")  # the sticky toolbar must not cover the diagram
    hit = page.locator(f'.djs-element[data-element-id="{element_id}"] > .djs-hit').first
    box = hit.bounding_box()
    assert box is not None
    hit.click(force=True, position={"x": box["width"] * at[0], "y": box["height"] * at[1]})
    expect(page.locator("#props")).to_contain_text(element_id)


def set_property(page: Page, label: str, value: str) -> None:
    field = page.locator("#props").get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")  # the panel applies a field when it changes


def check(page: Page, outcome: str) -> None:
    page.get_by_role("button", name="检查").click()
    expect(page.locator("#designer-status")).to_contain_text(outcome)


def open_modeler(page: Page, key: str) -> None:
    page.goto(f"/designer/{key}")
    expect(page.locator("#designer")).to_have_attribute("data-ready", "true")


def test_design_check_deploy_and_migrate(page: Page, served: tuple[Engine, str]) -> None:
    engine, _url = served
    page.get_by_label("流程标识（英文字母、数字、下划线）").fill("leave_request")
    page.get_by_label("流程名称").fill("请假申请")
    page.get_by_role("button", name="新建草稿").click()
    expect(page.locator("#designer")).to_have_attribute("data-ready", "true")
    palette = page.locator(".djs-palette")
    expect(palette.get_by_role("button", name="开始事件", exact=True)).to_be_visible()  # in Chinese
    expect(palette.get_by_role("button", name="任务", exact=True)).to_be_visible()

    # change the step's name and due date in the properties panel, save, check, deploy
    select_element(page, "fill")
    set_property(page, "名称", "填写请假单")
    set_property(page, "办理时限（工作日）", "5")
    page.locator("#props").get_by_label("新提醒：超过几个工作日未办").fill("4")
    page.get_by_role("button", name="添加超时催办").click()
    expect(page.locator("#props")).to_contain_text("workdays_after(4)")
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator("#designer-status")).to_have_text("草稿已保存")
    saved = engine.draft("leave_request", "designer")["files"]["leave_request.bpmn"]
    assert 'name="填写请假单"' in saved and 'name="dueInWorkdays" value="5"' in saved
    assert "workdays_after(4)" in saved and 'serviceTaskOperator id="urge"' in saved
    check(page, "检查通过")
    page.get_by_role("button", name="部署").click()
    expect(page.locator("#designer-status")).to_have_text("已部署为第 1 版")
    old = engine.start("leave_request", {}, user="staff", title="旧版本上的申请")
    assert old["version"] == 1

    # break it: a lane naming a role nobody has → the check fails and marks the lane
    open_modeler(page, "leave_request")
    select_element(page, "fill")
    set_property(page, "名称", "填写请假申请单")
    select_element(page, "lane_staff", at=(0.005, 0.6))
    set_property(page, "角色（泳道名称）", "不存在的角色")
    check(page, "检查未通过")
    expect(page.locator("#problems")).to_contain_text("不存在的角色")
    expect(page.locator('.djs-element.duban-problem[data-element-id="lane_staff"]')).to_have_count(
        1
    )
    expect(page.get_by_role("button", name="部署")).to_be_disabled()
    shot(page, "designer-check-failed")

    # fix it from the problem list, check again, deploy version 2
    page.locator("#problems").get_by_role("button").first.click()
    expect(page.locator("#props")).to_contain_text("lane_staff")
    set_property(page, "角色（泳道名称）", "指挥办工作人员")
    check(page, "检查通过")
    expect(page.locator(".djs-element.duban-problem")).to_have_count(0)
    expect(page.locator("#problems")).to_contain_text("与第 1 版相比")
    expect(page.locator("#problems .changes")).to_contain_text("填写请假申请单")
    page.get_by_role("button", name="部署").click()
    expect(page.locator("#designer-status")).to_have_text("已部署为第 2 版")

    new = engine.start("leave_request", {}, user="staff", title="新版本上的申请")
    assert new["version"] == 2
    assert engine.instance(old["id"])["version"] == 1  # old instances keep theirs

    # the list shows both versions, who deployed them and what runs on each
    page.goto("/designer")
    versions = page.locator("section", has=page.locator("#proc-leave_request")).locator("tbody")
    expect(versions.locator("tr")).to_have_count(2)
    expect(versions.locator("tr").first).to_contain_text("designer")

    # the diff marks the renamed step on both diagrams
    page.goto("/designer/leave_request/diff?old=1&new=2")
    expect(page.locator("#diagram-new")).to_have_attribute("data-ready", "true")
    expect(
        page.locator("#diagram-new .djs-element.diff-changed[data-element-id='fill']")
    ).to_have_count(1)
    expect(page.locator("table")).to_contain_text("名称")
    shot(page, "designer-diff", full_page=True)

    # migrate the old instance: it is listed as movable, then moves, and its step is renamed
    page.goto("/designer/leave_request/migrate")
    expect(page.locator("main")).to_contain_text("可以迁移")
    page.get_by_label("全选可迁移的实例").check()
    expect(page.get_by_label(f"迁移实例 {old['id']}")).to_be_checked()
    page.get_by_label("迁移原因").fill("步骤改名")
    page.get_by_role("button", name="迁移选中的实例").click()
    expect(page.locator(".flash.ok")).to_contain_text("已迁移 1 个实例")
    moved = engine.instance(old["id"])
    assert moved["version"] == 2
    assert [t["title"] for t in moved["tasks"] if t["state"] == "open"] == ["填写请假申请单"]
    expect(page.locator("main")).to_contain_text("没有运行在旧版本上的实例")


def test_forms_preview_live_and_other_people_are_refused(
    page: Page, served: tuple[Engine, str]
) -> None:
    engine, _url = served
    page.goto("/designer/new_form_demo")  # unknown process: refused with a page, not a crash
    expect(page.locator("main")).to_contain_text("不存在")
    page.goto("/designer")
    page.get_by_label("流程标识（英文字母、数字、下划线）").fill("form_demo")
    page.get_by_label("流程名称").fill("表单演示")
    page.get_by_role("button", name="新建草稿").click()
    expect(page.locator("#designer")).to_have_attribute("data-ready", "true")
    page.get_by_role("button", name="forms/form_demo/fill.json").click()
    editor = page.locator("#file-text")
    text = editor.input_value().replace('"title": "说明"', '"title": "请假天数"')
    editor.fill(text)
    expect(page.locator("#form-preview")).to_contain_text("请假天数")
    editor.fill("{ broken")
    expect(page.locator("#form-preview")).to_contain_text("JSON 格式错误")

    # make the step a 或签 over a list of approvers
    select_element(page, "fill")
    page.get_by_role("button", name="设为多人审批（会签/或签）").click()
    set_property(page, "审批人列表（变量）", "approvers")
    set_property(page, "单个审批人（变量）", "approver")
    page.locator("#props").get_by_label("审批方式").select_option("any")
    editor.fill(text)  # the form is valid again
    check(page, "检查通过")
    saved = engine.draft("form_demo", "designer")["files"]["form_demo.bpmn"]
    assert "<bpmn:loopDataInputRef>approvers</bpmn:loopDataInputRef>" in saved
    assert '<bpmn:property id="approvers"' in saved and 'inputDataItem id="approver"' in saved
    assert 'name="assignee" value="approver"' in saved and 'value="any"' in saved

    page.goto("/designer")  # the new process exists only as its draft: discard it
    card = page.locator("section", has=page.locator("#proc-form_demo"))
    card.get_by_role("button", name="放弃草稿").click()
    expect(page.locator(".flash.ok")).to_contain_text("已放弃流程 form_demo 的草稿")
    expect(page.locator("#proc-form_demo")).to_have_count(0)

    page.context.clear_cookies()
    page.goto("/login?next=/designer")
    page.get_by_label("用户名").fill("staff")
    page.get_by_label("密码").fill("demo")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("main")).to_contain_text("只有流程设计员或系统管理员")


def test_a_real_process_survives_the_modeler_round_trip(
    page: Page, served: tuple[Engine, str]
) -> None:
    """Open supervision_item, save it unchanged: every spiffworkflow extension (forms, scripts,
    service-task parameters, timers) survives, so its own scenarios still pass."""
    engine, _url = served
    open_modeler(page, "supervision_item")
    select_element(page, "approve")
    expect(page.locator("#props").get_by_label("表单文件")).to_have_value(
        "forms/supervision_item/approve.json"
    )
    expect(page.locator("#props").get_by_label("办理时限（工作日）")).to_have_value("2")
    shot(page, "designer-modeler", full_page=True)
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator("#designer-status")).to_have_text("草稿已保存")
    saved = engine.draft("supervision_item", "designer")["files"]["supervision_item.bpmn"]
    assert "spiffworkflow:serviceTaskOperator" in saved and "spiffworkflow:preScript" in saved
    result = engine.check_draft("supervision_item", user="designer")
    assert result["ok"], result["problems"]
    assert result["scenarios"] and all(s["ok"] for s in result["scenarios"])
    engine.discard_draft("supervision_item", user="designer")


def test_a_decision_table_is_edited_as_a_table(page: Page, served: tuple[Engine, str]) -> None:
    engine, _url = served
    open_modeler(page, "annual_evaluation")
    page.get_by_role("button", name="evaluation_grade.dmn").click()
    table = page.locator("table.dmn")
    expect(table).to_contain_text("综合得分")
    cell = table.get_by_label("规则2第2列")
    expect(cell).to_have_value("? >= 90")
    cell.fill("? >= 95")
    cell.press("Tab")
    rules = table.locator("tbody tr")
    count = rules.count()
    page.get_by_role("button", name="添加规则").click()
    expect(rules).to_have_count(count + 1)
    table.get_by_label(f"规则{count + 1}说明").fill("新规则")
    table.get_by_label(f"规则{count + 1}说明").press("Tab")
    page.get_by_role("button", name="保存草稿").click()
    expect(page.locator("#designer-status")).to_have_text("草稿已保存")
    saved = engine.draft("annual_evaluation", "designer")["files"]["evaluation_grade.dmn"]
    assert "? &gt;= 95" in saved and saved.count("<rule ") == count + 1
    assert "新规则" in saved
    engine.discard_draft("annual_evaluation", user="designer")
